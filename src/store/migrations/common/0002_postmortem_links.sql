-- Which issue each pull request names as its postmortem, so that an event on the issue
-- re-evaluates the pull requests that depend on it.
CREATE TABLE postmortem_links (
    forge        TEXT   NOT NULL,
    repo_id      BIGINT NOT NULL,
    repo         TEXT   NOT NULL,
    number       BIGINT NOT NULL,
    issue_repo   TEXT   NOT NULL,
    issue_number BIGINT NOT NULL,
    PRIMARY KEY (forge, repo_id, number)
);
CREATE INDEX postmortem_links_issue ON postmortem_links (forge, issue_repo, issue_number);
