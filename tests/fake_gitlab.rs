//! The fake GitLab itself, over real HTTP: the shapes, errors and traps the lane's GitLab
//! client is written against, checked before any client relies on them.

mod common;

use base64::Engine;
use common::fake_gitlab::{FakeGitLab, OpenMr, BOT, DEVELOPER, MAINTAINER, REPORTER};
use reqwest::header::HeaderMap;
use serde_json::{json, Value};

const PROJECT: u64 = 42;
const PATH: &str = "acme/platform/payments";
const ENCODED: &str = "acme%2Fplatform%2Fpayments";

/// A client of the fake's API with a token.
struct Api {
    client: reqwest::Client,
    root: String,
    token: String,
}

struct Answer {
    status: u16,
    headers: HeaderMap,
    body: Value,
}

impl Api {
    fn new(fake: &FakeGitLab) -> Api {
        Api { client: reqwest::Client::new(), root: fake.api(), token: "glpat-test".into() }
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Answer {
        let req = if self.token.is_empty() { req } else { req.header("PRIVATE-TOKEN", &self.token) };
        let resp = req.send().await.expect("request sent");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Answer { status, headers, body }
    }

    async fn get(&self, path: &str) -> Answer {
        self.send(self.client.get(format!("{}{path}", self.root))).await
    }

    async fn head(&self, path: &str) -> Answer {
        self.send(self.client.head(format!("{}{path}", self.root))).await
    }

    async fn post(&self, path: &str, body: Value) -> Answer {
        self.send(self.client.post(format!("{}{path}", self.root)).json(&body)).await
    }

    async fn post_form(&self, path: &str, form: &str) -> Answer {
        let req = self.client.post(format!("{}{path}", self.root));
        self.send(req.header("content-type", "application/x-www-form-urlencoded").body(form.to_string())).await
    }

    async fn put(&self, path: &str, body: Value) -> Answer {
        self.send(self.client.put(format!("{}{path}", self.root)).json(&body)).await
    }
}

fn header(a: &Answer, name: &str) -> String {
    a.headers.get(name).map(|v| v.to_str().unwrap().to_string()).unwrap_or_default()
}

async fn payments() -> (FakeGitLab, Api) {
    let fake = FakeGitLab::start().await;
    fake.add_project(PROJECT, PATH, "main");
    let api = Api::new(&fake);
    (fake, api)
}

fn mr_by(author: &str) -> OpenMr {
    OpenMr { author: author.into(), title: "Fix the outage".into(), ..OpenMr::default() }
}

#[tokio::test]
async fn a_project_is_found_by_id_and_by_its_encoded_path() {
    let (fake, mut api) = payments().await;
    let by_id = api.get("/projects/42").await;
    assert_eq!(by_id.status, 200);
    assert_eq!(by_id.body["path_with_namespace"], PATH);
    assert_eq!(by_id.body["default_branch"], "main");
    assert_eq!(by_id.body["merge_method"], "merge");
    assert_eq!(by_id.body["web_url"], format!("{}/{PATH}", fake.url));
    let by_path = api.get(&format!("/projects/{ENCODED}")).await;
    assert_eq!(by_path.body["id"], 42);
    // Everything under a project takes either form.
    fake.set_file(PROJECT, "main", "README.md", "hello\n");
    assert_eq!(api.get(&format!("/projects/{ENCODED}/repository/files/README.md?ref=main")).await.status, 200);

    let missing = api.get("/projects/acme%2Fnope").await;
    assert_eq!((missing.status, missing.body.clone()), (404, json!({ "message": "404 Project Not Found" })));
    assert_eq!(api.get("/no/such/route").await.body, json!({ "message": "404 Not found" }));

    let me = api.get("/user").await;
    assert_eq!(me.body["username"], BOT);
    let alice = fake.user("alice");
    let found = api.get("/users?username=alice").await;
    assert_eq!(
        found.body,
        json!([{ "id": alice, "username": "alice", "name": "alice", "state": "active", "locked": false, "avatar_url": null, "web_url": format!("{}/alice", fake.url) }])
    );
    assert_eq!(api.get("/users?username=nobody").await.body, json!([]));
    assert_eq!(fake.user("alice"), alice, "a user keeps its id");

    api.token = String::new();
    let anonymous = api.get("/projects/42").await;
    assert_eq!((anonymous.status, anonymous.body), (401, json!({ "message": "401 Unauthorized" })));
    let tokens: Vec<String> = fake.calls().into_iter().map(|c| c.token).collect();
    assert_eq!(tokens.first().map(String::as_str), Some("glpat-test"));
    assert_eq!(tokens.last().map(String::as_str), Some(""));
    assert_eq!(fake.count("GET", "/projects/"), 5);
    assert!(fake.take_calls().len() >= 8);
    assert_eq!(fake.call_count(), 0);
}

#[tokio::test]
async fn files_answer_get_and_head_and_keep_their_blob_id_while_unchanged() {
    let (fake, api) = payments().await;
    let file = format!("/projects/{PROJECT}/repository/files/.gitlab%2Fhotfix-lane.toml?ref=main");
    let absent = api.get(&file).await;
    assert_eq!((absent.status, absent.body), (404, json!({ "message": "404 File Not Found" })));
    assert_eq!(api.head(&file).await.status, 404);

    let first = fake.set_file(PROJECT, "main", ".gitlab/hotfix-lane.toml", "hello\n");
    let got = api.get(&file).await;
    assert_eq!(got.status, 200);
    assert_eq!(got.body["file_path"], ".gitlab/hotfix-lane.toml");
    assert_eq!(got.body["file_name"], "hotfix-lane.toml");
    assert_eq!(got.body["encoding"], "base64");
    assert_eq!(got.body["ref"], "main");
    assert_eq!(got.body["size"], 6);
    let content = base64::engine::general_purpose::STANDARD.decode(got.body["content"].as_str().unwrap()).unwrap();
    assert_eq!(content, b"hello\n");
    // `git hash-object` of "hello\n".
    assert_eq!(got.body["blob_id"], "ce013625030ba8dba906f756967f9e9ca394464a");
    assert_eq!(got.body["commit_id"], first.as_str());
    assert_eq!(got.body["last_commit_id"], first.as_str());

    let head = api.head(&file).await;
    assert_eq!(head.status, 200);
    assert_eq!(head.body, Value::Null, "HEAD has no body");
    assert_eq!(header(&head, "x-gitlab-blob-id"), "ce013625030ba8dba906f756967f9e9ca394464a");
    assert_eq!(header(&head, "x-gitlab-commit-id"), first);
    assert_eq!(header(&head, "x-gitlab-file-path"), ".gitlab/hotfix-lane.toml");
    assert_eq!(header(&head, "x-gitlab-ref"), "main");
    assert_eq!(header(&head, "x-gitlab-size"), "6");

    // The same content committed again keeps its blob id; new content gets a new one.
    let second = fake.set_file(PROJECT, "main", ".gitlab/hotfix-lane.toml", "hello\n");
    let again = api.head(&file).await;
    assert_eq!(header(&again, "x-gitlab-blob-id"), "ce013625030ba8dba906f756967f9e9ca394464a");
    assert_eq!(header(&again, "x-gitlab-commit-id"), second);
    assert_ne!(first, second);
    fake.set_file(PROJECT, "main", ".gitlab/hotfix-lane.toml", "changed\n");
    assert_ne!(header(&api.head(&file).await, "x-gitlab-blob-id"), "ce013625030ba8dba906f756967f9e9ca394464a");
    // Other branches have their own files.
    let other = api.get(&format!("/projects/{PROJECT}/repository/files/.gitlab%2Fhotfix-lane.toml?ref=stable")).await;
    assert_eq!(other.status, 404);
}

#[tokio::test]
async fn a_second_open_merge_request_for_the_same_branches_conflicts() {
    let (fake, api) = payments().await;
    fake.set_file(PROJECT, "hotfix-lane/backport/7-to-stable", "fix.txt", "fix\n");
    fake.set_file(PROJECT, "stable", "README.md", "stable\n");
    let alice = fake.user("alice");
    let form = format!(
        "source_branch=hotfix-lane%2Fbackport%2F7-to-stable&target_branch=stable&title=Backport+%217&labels=backport,hotfix&reviewer_ids[]={alice}&remove_source_branch=true"
    );
    let created = api.post_form(&format!("/projects/{ENCODED}/merge_requests"), &form).await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.body["iid"], 1);
    assert_eq!(created.body["title"], "Backport !7");
    assert_eq!(created.body["labels"], json!(["backport", "hotfix"]));
    assert_eq!(created.body["reviewers"][0]["username"], "alice");
    assert_eq!(created.body["state"], "opened");
    assert_eq!(created.body["draft"], false);
    assert_eq!(created.body["author"]["username"], BOT);
    assert_eq!(created.body["web_url"], format!("{}/{PATH}/-/merge_requests/1", fake.url));
    assert_eq!(created.body["sha"], fake.branch_head(PROJECT, "hotfix-lane/backport/7-to-stable").unwrap().as_str());

    let body =
        json!({ "source_branch": "hotfix-lane/backport/7-to-stable", "target_branch": "stable", "title": "again" });
    let again = api.post(&format!("/projects/{PROJECT}/merge_requests"), body).await;
    assert_eq!(again.status, 409);
    assert_eq!(
        again.body,
        json!({ "message": ["Another open merge request already exists for this source branch: !1"] })
    );

    let found = api
        .get(&format!("/projects/{PROJECT}/merge_requests?source_branch=hotfix-lane/backport/7-to-stable&state=opened"))
        .await;
    assert_eq!(found.body.as_array().unwrap().len(), 1);
    assert_eq!(found.body[0]["labels"], json!(["backport", "hotfix"]), "lists carry label names");
    assert_eq!(header(&found, "x-total"), "1");

    let draft = json!({ "source_branch": "stable", "target_branch": "main", "title": "Draft: later" });
    let draft = api.post(&format!("/projects/{PROJECT}/merge_requests"), draft).await;
    assert_eq!((draft.status, draft.body["draft"].clone()), (201, json!(true)));
}

#[tokio::test]
async fn merging_answers_as_gitlab_does_until_it_merges_the_pinned_head() {
    let (fake, api) = payments().await;
    let iid = fake.open_mr(PROJECT, mr_by("alice"));
    let head = fake.mr(PROJECT, iid).sha;
    let merge = format!("/projects/{PROJECT}/merge_requests/{iid}/merge");

    let stale = api.put(&merge, json!({ "sha": "0000000000000000000000000000000000000000" })).await;
    assert_eq!(stale.status, 409);
    assert_eq!(stale.body, json!({ "message": format!("SHA does not match HEAD of source branch: {head}") }));

    // Mergeability still being computed: 405, for the knob's count, then while `checking`.
    fake.merge_405(PROJECT, 1);
    let computing = api.put(&merge, json!({ "sha": head })).await;
    assert_eq!((computing.status, computing.body), (405, json!({ "message": "405 Method Not Allowed" })));
    fake.edit_mr(PROJECT, iid, |mr| mr.detailed_merge_status = "checking".into());
    assert_eq!(
        api.get(&format!("/projects/{PROJECT}/merge_requests/{iid}")).await.body["detailed_merge_status"],
        "checking"
    );
    assert_eq!(api.put(&merge, json!({ "sha": head })).await.status, 405);
    fake.edit_mr(PROJECT, iid, |mr| mr.detailed_merge_status = "mergeable".into());

    // "Pipelines must succeed" with a failed head pipeline.
    fake.project(PROJECT, |p| p.only_allow_merge_if_pipeline_succeeds = true);
    let ref_ = format!("refs/merge-requests/{iid}/head");
    let failed = fake.create_pipeline(PROJECT, &head, &ref_, "merge_request_event", "pending", &[("smoke", "failed")]);
    let shown = api.get(&format!("/projects/{PROJECT}/merge_requests/{iid}")).await.body;
    assert_eq!(shown["head_pipeline"]["id"], failed);
    assert_eq!(shown["head_pipeline"]["status"], "failed");
    assert_eq!(shown["detailed_merge_status"], "ci_must_pass");
    assert_eq!(api.put(&merge, json!({ "sha": head })).await.status, 405);

    fake.merge_422(PROJECT, "Branch cannot be merged");
    let passed = fake.create_pipeline(PROJECT, &head, &ref_, "merge_request_event", "pending", &[("smoke", "success")]);
    assert_eq!(fake.head_pipeline(PROJECT, iid), Some(passed), "a newer pipeline on the head is the head pipeline");
    let refused = api.put(&merge, json!({ "sha": head })).await;
    assert_eq!((refused.status, refused.body), (422, json!({ "message": "Branch cannot be merged" })));

    let merged = api.put(&merge, json!({ "sha": head, "squash": true })).await;
    assert_eq!(merged.status, 200, "{}", merged.body);
    assert_eq!(merged.body["state"], "merged");
    assert_eq!(merged.body["merged_by"]["username"], BOT);
    assert!(merged.body["merge_commit_sha"].is_string());
    assert!(merged.body["squash_commit_sha"].is_string());
    let merges = fake.merges();
    assert_eq!(merges.len(), 1);
    assert_eq!((merges[0].iid, merges[0].sha.as_deref(), merges[0].squash), (iid, Some(head.as_str()), true));
    assert_eq!((merges[0].by.as_str(), merges[0].method.as_str()), (BOT, "merge"));
    assert_eq!(api.put(&merge, json!({})).await.status, 405, "a merged MR cannot merge again");

    // A merge whose answer is lost: it happened all the same.
    let other = fake.open_mr(PROJECT, mr_by("bob"));
    fake.merge_then_500(PROJECT, 1);
    let lost = api.put(&format!("/projects/{PROJECT}/merge_requests/{other}/merge"), json!({})).await;
    assert_eq!(lost.status, 500);
    assert_eq!(fake.mr(PROJECT, other).state, "merged");
    assert_eq!(fake.merges().len(), 2);
    // Drafts cannot merge.
    let draft = fake.open_mr(PROJECT, OpenMr { title: "Draft: wip".into(), ..mr_by("bob") });
    assert_eq!(api.put(&format!("/projects/{PROJECT}/merge_requests/{draft}/merge"), json!({})).await.status, 405);
}

#[tokio::test]
async fn auto_merge_waits_for_the_head_pipeline_then_merges_the_pinned_head() {
    let (fake, api) = payments().await;
    fake.project(PROJECT, |p| p.only_allow_merge_if_pipeline_succeeds = true);
    let iid = fake.open_mr(PROJECT, mr_by("alice"));
    let head = fake.mr(PROJECT, iid).sha;
    let ref_ = format!("refs/merge-requests/{iid}/head");
    let pipeline = fake.create_pipeline(PROJECT, &head, &ref_, "merge_request_event", "pending", &[]);
    let job = fake.add_job(PROJECT, pipeline, "smoke", "running", false, "alice");
    let merge = format!("/projects/{PROJECT}/merge_requests/{iid}/merge");
    assert_eq!(api.put(&merge, json!({ "sha": head })).await.status, 405, "still running, no auto-merge asked");
    let set = api.put(&merge, json!({ "sha": head, "auto_merge": true })).await;
    assert_eq!(set.status, 200, "{}", set.body);
    assert_eq!(
        (set.body["state"].clone(), set.body["merge_when_pipeline_succeeds"].clone()),
        (json!("opened"), json!(true))
    );
    assert_eq!((set.body["merged_by"].clone(), set.body["merge_user"]["username"].clone()), (Value::Null, json!(BOT)));
    assert!(fake.merges().is_empty());
    fake.set_job_status(PROJECT, pipeline, job, "success");
    let merges = fake.merges();
    assert_eq!(merges.len(), 1);
    assert!(merges[0].auto_merge);
    assert_eq!(merges[0].sha.as_deref(), Some(head.as_str()));
    assert_eq!(fake.mr(PROJECT, iid).state, "merged");
}

#[tokio::test]
async fn merge_trains_take_cars_and_refuse_direct_merges_when_enforced() {
    let (fake, api) = payments().await;
    let iid = fake.open_mr(PROJECT, mr_by("alice"));
    fake.project(PROJECT, |p| (p.merge_trains_enabled, p.merge_train_enforced) = (true, true));
    let refused = api.put(&format!("/projects/{PROJECT}/merge_requests/{iid}/merge"), json!({})).await;
    assert_eq!(
        (refused.status, refused.body),
        (405, json!({ "message": "Merge requests must be merged through the merge train" }))
    );
    let head = fake.mr(PROJECT, iid).sha;
    let added =
        api.post(&format!("/projects/{PROJECT}/merge_trains/merge_requests/{iid}"), json!({ "sha": head })).await;
    assert_eq!(added.status, 201, "{}", added.body);
    assert_eq!(added.body[0]["merge_request"]["iid"], iid);
    assert_eq!(added.body[0]["pipeline"]["ref"], format!("refs/merge-requests/{iid}/train"));
    assert_eq!(fake.train_adds()[0].sha.as_deref(), Some(head.as_str()));
    let cars = api.get(&format!("/projects/{PROJECT}/merge_trains/main?scope=active")).await;
    assert_eq!(cars.body.as_array().unwrap().len(), 1);
    assert_eq!(cars.body[0]["target_branch"], "main");
    let car = api.get(&format!("/projects/{PROJECT}/merge_trains/merge_requests/{iid}")).await;
    assert_eq!(car.body["status"], "fresh");
    assert_eq!(api.get(&format!("/projects/{PROJECT}/merge_trains?scope=complete")).await.body, json!([]));
    // A train's pipeline is no head pipeline of the MR.
    assert_eq!(fake.head_pipeline(PROJECT, iid), None);
}

#[tokio::test]
async fn commit_statuses_land_in_the_named_the_newest_or_a_new_external_pipeline() {
    let (fake, api) = payments().await;
    let iid = fake.open_mr(PROJECT, mr_by("alice"));
    let head = fake.mr(PROJECT, iid).sha;
    let ref_ = format!("refs/merge-requests/{iid}/head");
    let older = fake.create_pipeline(PROJECT, &head, &ref_, "merge_request_event", "running", &[("build", "running")]);
    let newer = fake.create_pipeline(PROJECT, &head, &ref_, "merge_request_event", "running", &[("smoke", "success")]);
    let statuses = format!("/projects/{PROJECT}/statuses/{head}");

    let pinned = api
        .post(&statuses, json!({ "state": "failed", "name": "hotfix-lane/postmortem", "description": "no postmortem", "pipeline_id": older }))
        .await;
    assert_eq!(pinned.status, 201, "{}", pinned.body);
    assert_eq!(pinned.body["pipeline_id"], older);
    assert_eq!(pinned.body["status"], "failed");
    assert_eq!(pinned.body["author"]["username"], BOT);
    assert_eq!(fake.pipeline(PROJECT, older).unwrap().status, "running", "the build still runs");

    let newest = api.post(&statuses, json!({ "state": "success", "context": "hotfix-lane/lane" })).await;
    assert_eq!(newest.body["pipeline_id"], newer);
    assert_eq!(newest.body["name"], "hotfix-lane/lane");

    let unnamed = api.post(&statuses, json!({ "state": "pending" })).await;
    assert_eq!(unnamed.body["name"], "default");
    let twice = api.post(&statuses, json!({ "state": "pending" })).await;
    assert_eq!(
        (twice.status, twice.body),
        (400, json!({ "message": "Cannot transition status via :enqueue from :pending" }))
    );

    // A commit without a pipeline: the status makes one, `source: external`.
    let pushed = fake.push_head(PROJECT, iid, "alice", None);
    let lone =
        api.post(&format!("/projects/{PROJECT}/statuses/{pushed}"), json!({ "state": "running", "name": "ext" })).await;
    assert_eq!(lone.status, 201);
    let made = fake.pipeline(PROJECT, lone.body["pipeline_id"].as_u64().unwrap()).unwrap();
    assert_eq!(
        (made.source.as_str(), made.sha.as_str(), made.status.as_str()),
        ("external", pushed.as_str(), "running")
    );
    assert!(fake.statuses().last().unwrap().new_pipeline);

    // A pipeline of another commit is refused.
    let wrong = api
        .post(&format!("/projects/{PROJECT}/statuses/{pushed}"), json!({ "state": "success", "pipeline_id": newer }))
        .await;
    assert_eq!(wrong.status, 400);
    assert!(wrong.body["message"].as_str().unwrap().starts_with("400 Bad request"));
    assert_eq!(api.post(&statuses, json!({ "state": "bogus" })).await.status, 400);
    let unknown =
        api.post(&format!("/projects/{PROJECT}/statuses/{}", "f".repeat(40)), json!({ "state": "success" })).await;
    assert_eq!((unknown.status, unknown.body), (404, json!({ "message": "404 Commit Not Found" })));

    // The commit's statuses list CI jobs too, newest first.
    let listed = api.get(&format!("/projects/{PROJECT}/repository/commits/{head}/statuses?all=true")).await;
    let names: Vec<&str> = listed.body.as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["default", "hotfix-lane/lane", "hotfix-lane/postmortem", "smoke", "build"]);
    let smoke = &listed.body[3];
    assert_eq!((smoke["status"].clone(), smoke["allow_failure"].clone()), (json!("success"), json!(false)));
    assert_eq!(smoke["author"]["username"], BOT);
    let by_name = api.get(&format!("/projects/{PROJECT}/repository/commits/{head}/statuses?name=smoke")).await;
    assert_eq!(by_name.body.as_array().unwrap().len(), 1);

    // Another user's status of the same name is a new job; the old one is retried.
    fake.add_token("glpat-alice", "alice");
    let alice = Api { token: "glpat-alice".into(), ..Api::new(&fake) };
    let retry = alice.post(&statuses, json!({ "state": "success", "name": "default" })).await;
    assert_eq!(retry.body["author"]["username"], "alice");
    let latest = api.get(&format!("/projects/{PROJECT}/repository/commits/{head}/statuses?name=default")).await;
    assert_eq!(latest.body.as_array().unwrap().len(), 1);
    assert_eq!(latest.body[0]["status"], "success");
    let all = api.get(&format!("/projects/{PROJECT}/repository/commits/{head}/statuses?name=default&all=true")).await;
    assert_eq!(all.body.as_array().unwrap().len(), 2);
    assert_eq!(fake.status(PROJECT, &head, "default").unwrap().by, "alice");

    // Jobs of a pipeline are CI jobs only; the commit knows its last pipeline.
    let jobs = api.get(&format!("/projects/{PROJECT}/pipelines/{newer}/jobs")).await;
    let jobs: Vec<&str> = jobs.body.as_array().unwrap().iter().map(|j| j["name"].as_str().unwrap()).collect();
    assert_eq!(jobs, ["smoke"]);
    let commit = api.get(&format!("/projects/{PROJECT}/repository/commits/{head}")).await;
    assert_eq!(commit.body["last_pipeline"]["id"], newer);
    let pipelines = api.get(&format!("/projects/{PROJECT}/pipelines?sha={head}")).await;
    assert_eq!(pipelines.body[0]["id"], newer, "newest first");
    let mrs = api.get(&format!("/projects/{PROJECT}/repository/commits/{head}/merge_requests")).await;
    assert_eq!(mrs.body[0]["iid"], iid, "an MR that contains the commit");
}

#[tokio::test]
async fn label_changes_are_recorded_as_label_events_with_their_actor() {
    let (fake, api) = payments().await;
    let iid = fake.open_mr(PROJECT, mr_by("alice"));
    assert!(fake.add_label(PROJECT, iid, "hotfix", "alice"));
    assert!(!fake.add_label(PROJECT, iid, "hotfix", "alice"), "a label is added once");
    let mr = format!("/projects/{PROJECT}/merge_requests/{iid}");
    let edited = api.put(&mr, json!({ "add_labels": "backport,lane", "remove_labels": "hotfix" })).await;
    assert_eq!(edited.body["labels"], json!(["backport", "lane"]));
    let events = api.get(&format!("{mr}/resource_label_events")).await.body;
    let seen: Vec<(String, String, String)> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            assert_eq!(e["resource_type"], "MergeRequest");
            let s = |v: &Value| v.as_str().unwrap().to_string();
            (s(&e["user"]["username"]), s(&e["label"]["name"]), s(&e["action"]))
        })
        .collect();
    let expected = [
        ("alice", "hotfix", "add"),
        ("project_42_bot_hotfix", "backport", "add"),
        (BOT, "lane", "add"),
        (BOT, "hotfix", "remove"),
    ];
    let expected: Vec<(String, String, String)> =
        expected.iter().map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string())).collect();
    assert_eq!(seen, expected);
    assert_eq!(api.get(&format!("{mr}/resource_label_events")).await.body[0]["label"]["id"], events[0]["label"]["id"]);
}

#[tokio::test]
async fn members_are_inherited_from_ancestor_groups() {
    let (fake, api) = payments().await;
    fake.add_group_member("acme", "alice", DEVELOPER);
    fake.add_group_member("acme/platform", "bob", MAINTAINER);
    fake.add_group_member("acme/platform", "alice", REPORTER);
    fake.add_member(PROJECT, "carol", REPORTER);
    let (alice, bob, carol, mallory) = (fake.user("alice"), fake.user("bob"), fake.user("carol"), fake.user("mallory"));
    let level = |a: Answer| (a.status, a.body["access_level"].as_u64());
    assert_eq!(level(api.get(&format!("/projects/{PROJECT}/members/all/{alice}")).await), (200, Some(30)));
    assert_eq!(level(api.get(&format!("/projects/{ENCODED}/members/all/{bob}")).await), (200, Some(40)));
    assert_eq!(level(api.get(&format!("/projects/{PROJECT}/members/all/{carol}")).await), (200, Some(20)));
    let nobody = api.get(&format!("/projects/{PROJECT}/members/all/{mallory}")).await;
    assert_eq!((nobody.status, nobody.body), (404, json!({ "message": "404 Not found" })));
    assert_eq!(level(api.get(&format!("/groups/acme%2Fplatform/members/all/{alice}")).await), (200, Some(30)));
    assert_eq!(api.get(&format!("/groups/acme/members/all/{bob}")).await.status, 404, "members do not flow up");
    let group = fake.add_group("acme/platform");
    assert_eq!(level(api.get(&format!("/groups/{group}/members/all/{bob}")).await), (200, Some(40)));
    assert_eq!(api.get(&format!("/projects/{PROJECT}/members/all/{bob}")).await.body["username"], "bob");

    fake.protect_branch(PROJECT, "main", MAINTAINER, MAINTAINER);
    let protected = api.get(&format!("/projects/{PROJECT}/protected_branches/main")).await.body;
    assert_eq!(protected["merge_access_levels"][0]["access_level"], 40);
    assert_eq!(api.get(&format!("/projects/{PROJECT}/protected_branches/stable")).await.status, 404);
}

#[tokio::test]
async fn notes_page_through_more_than_a_hundred() {
    let (fake, api) = payments().await;
    let iid = fake.open_mr(PROJECT, mr_by("alice"));
    for n in 0..150 {
        fake.add_note(PROJECT, iid, "alice", &format!("note {n}"));
    }
    let notes = format!("/projects/{PROJECT}/merge_requests/{iid}/notes");
    let default = api.get(&notes).await;
    assert_eq!(default.body.as_array().unwrap().len(), 20, "20 a page unless asked");
    assert_eq!(default.body[0]["body"], "note 149", "newest first unless asked");
    let first = api.get(&format!("{notes}?sort=asc&order_by=created_at&per_page=100")).await;
    assert_eq!(first.body.as_array().unwrap().len(), 100);
    assert_eq!(first.body[0]["body"], "note 0");
    assert_eq!(first.body[0]["noteable_type"], "MergeRequest");
    assert_eq!(first.body[0]["noteable_iid"], iid);
    assert_eq!(first.body[0]["author"]["username"], "alice");
    assert_eq!(
        (header(&first, "x-total"), header(&first, "x-next-page"), header(&first, "x-total-pages")),
        ("150".into(), "2".into(), "2".into())
    );
    assert!(header(&first, "link").contains("page=2>; rel=\"next\""), "{}", header(&first, "link"));
    let second = api.get(&format!("{notes}?sort=asc&order_by=created_at&per_page=100&page=2")).await;
    assert_eq!(second.body.as_array().unwrap().len(), 50);
    assert_eq!(second.body[49]["body"], "note 149");
    assert_eq!(header(&second, "x-next-page"), "");
    assert!(!header(&second, "link").contains("rel=\"next\""));
    assert_eq!(api.get(&format!("{notes}?per_page=500")).await.body.as_array().unwrap().len(), 100, "at most 100");

    // What the lane writes is recorded: one note, then an edit of it.
    let written = api.post(&notes, json!({ "body": "<!-- hotfix-lane -->\nAuthorized" })).await;
    assert_eq!(written.status, 201);
    let id = written.body["id"].as_u64().unwrap();
    let edited = api.put(&format!("{notes}/{id}"), json!({ "body": "<!-- hotfix-lane -->\nMerged" })).await;
    assert_eq!(edited.body["body"], "<!-- hotfix-lane -->\nMerged");
    let writes: Vec<(u64, String)> = fake.bot_notes().into_iter().map(|n| (n.note_id, n.kind)).collect();
    assert_eq!(writes, [(id, "create".to_string()), (id, "update".to_string())]);
    let someone_elses = fake.mr(PROJECT, iid).notes[0].id;
    assert_eq!(api.put(&format!("{notes}/{someone_elses}"), json!({ "body": "x" })).await.status, 403);
}

#[tokio::test]
async fn issues_are_opened_found_moved_and_deleted() {
    let (fake, api) = payments().await;
    fake.create_issue(PROJECT, Some(50), "Postmortem: outage", &["postmortem"], "alice");
    let opened = api
        .post(&format!("/projects/{PROJECT}/issues"), json!({ "title": "Postmortem for !3", "description": "what happened", "labels": "postmortem,hotfix", "issue_type": "incident" }))
        .await;
    assert_eq!(opened.status, 201);
    assert_eq!((opened.body["iid"].clone(), opened.body["type"].clone()), (json!(51), json!("INCIDENT")));
    assert_eq!(opened.body["web_url"], format!("{}/{PATH}/-/issues/51", fake.url));
    assert_eq!(fake.issues_created().iter().map(|i| i.iid).collect::<Vec<_>>(), [51]);
    let found =
        api.get(&format!("/projects/{PROJECT}/issues?labels=postmortem&state=opened&author_username=alice")).await;
    assert_eq!(found.body.as_array().unwrap().len(), 1);
    assert_eq!(found.body[0]["iid"], 50);
    let edited = api
        .put(&format!("/projects/{PROJECT}/issues/50"), json!({ "add_labels": "done", "state_event": "close" }))
        .await;
    assert_eq!(
        (edited.body["state"].clone(), edited.body["labels"].clone()),
        (json!("closed"), json!(["postmortem", "done"]))
    );

    fake.add_project(43, "acme/platform/incidents", "main");
    fake.move_issue(PROJECT, 51, 43);
    let moved = api.get(&format!("/projects/{PROJECT}/issues/51")).await;
    assert_eq!(moved.body["state"], "closed");
    assert!(moved.body["moved_to_id"].is_u64());
    fake.delete_issue(PROJECT, 50);
    let gone = api.get(&format!("/projects/{PROJECT}/issues/50")).await;
    assert_eq!((gone.status, gone.body), (404, json!({ "message": "404 Issue Not Found" })));
}

#[tokio::test]
async fn diffs_page_and_injected_failures_answer_once() {
    let (fake, api) = payments().await;
    let iid = fake.open_mr(PROJECT, mr_by("alice"));
    let files = (0..30).map(|n| common::fake_gitlab::ChangedFile::modified(&format!("src/f{n}.rs"))).collect();
    fake.set_changed_files(PROJECT, iid, files);
    let diffs = api.get(&format!("/projects/{PROJECT}/merge_requests/{iid}/diffs?per_page=25&page=2")).await;
    assert_eq!(diffs.body.as_array().unwrap().len(), 5);
    assert_eq!(diffs.body[0]["new_path"], "src/f25.rs");
    fake.fail_once("/merge_requests/", 502);
    assert_eq!(api.get(&format!("/projects/{PROJECT}/merge_requests/{iid}")).await.status, 502);
    assert_eq!(api.get(&format!("/projects/{PROJECT}/merge_requests/{iid}")).await.status, 200);
}

/// The hooks the GitLab driver sends keep the captures' shape: every key a capture has, with
/// the fake's state written over it.
#[tokio::test]
async fn the_drivers_hooks_have_the_shape_of_real_captures() {
    use common::gitlab::{self as gl, GitLabDriver};
    let (fake, _) = payments().await;
    let iid = fake.open_mr(PROJECT, OpenMr { labels: vec!["hotfix".into()], ..mr_by("alice") });
    let mr = fake.mr(PROJECT, iid);
    let keys = |v: &Value| -> Vec<String> { v.as_object().unwrap().keys().cloned().collect() };
    let covers = |built: &Value, capture: &Value| {
        for k in keys(capture) {
            assert!(built.get(&k).is_some(), "{k} missing from {built:#}");
        }
    };

    let open = gl::mr_hook(&fake, PROJECT, &mr, "open", "alice", json!({}));
    let capture = gl::fixture("merge_request/open.json");
    covers(&open, &capture);
    covers(&open["object_attributes"], &capture["object_attributes"]);
    assert_eq!(open["object_kind"], "merge_request");
    assert_eq!(open["object_attributes"]["iid"], iid);
    assert_eq!(open["object_attributes"]["action"], "open");
    assert_eq!(open["object_attributes"]["last_commit"]["id"], mr.sha.as_str());
    assert_eq!(open["object_attributes"]["labels"][0]["title"], "hotfix");
    assert_eq!(open["user"]["username"], "alice");
    assert_eq!(open["project"]["path_with_namespace"], PATH);
    assert!(open["object_attributes"].get("oldrev").is_none());

    let note = gl::note_hook(&fake, PROJECT, &mr, 7, "/hotfix", "create", "bob");
    covers(&note, &gl::fixture("note/merge_request.json"));
    assert_eq!(
        (note["merge_request"]["iid"].clone(), note["object_attributes"]["note"].clone()),
        (json!(iid), json!("/hotfix"))
    );

    let pipeline = fake.create_pipeline(
        PROJECT,
        &mr.sha,
        &format!("refs/merge-requests/{iid}/head"),
        "merge_request_event",
        "pending",
        &[("smoke", "success")],
    );
    let hook = gl::pipeline_hook(&fake, PROJECT, pipeline, Some(iid), "alice");
    covers(&hook, &gl::fixture("pipeline/success.json"));
    assert_eq!(
        (hook["object_attributes"]["status"].clone(), hook["merge_request"]["iid"].clone()),
        (json!("success"), json!(iid))
    );
    assert_eq!(hook["builds"][0]["name"], "smoke");

    fake.create_issue(PROJECT, Some(50), "Postmortem", &["postmortem"], "alice");
    let issue = gl::issue_hook(&fake, PROJECT, 50, "open", "alice", json!({}));
    covers(&issue["object_attributes"], &gl::fixture("issue/open.json")["object_attributes"]);
    let push = gl::push_hook(&fake, PROJECT, "main", "a", "b", "alice", &[gl::POLICY]);
    covers(&push, &gl::fixture("push/push.json"));
    assert_eq!(push["commits"][0]["modified"][0], gl::POLICY);

    // The driver is a forge of the scenario language (type-checked here; the lane's GitLab
    // client is what it needs to run end to end).
    fn is_a_forge<D: common::scenario::ForgeDriver>() {}
    is_a_forge::<GitLabDriver>();
}

/// The driver starts a lane configured for the fake instance, with the policy on `main`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_driver_starts_a_lane_for_the_fake_instance() {
    use common::gitlab::{GitLabDriver, POLICY, PROJECT_PATH};
    use common::scenario::ForgeDriver;
    let driver = GitLabDriver::start(common::Backend::Sqlite, "[responders]\nusers = [\"alice\"]\n").await;
    assert_eq!(driver.repo(), PROJECT_PATH);
    let health = reqwest::get(format!("{}/metrics", driver.server_url())).await.unwrap();
    assert_eq!(health.status(), 200);
    let api = Api::new(&driver.fake);
    let policy =
        api.get(&format!("/projects/{ENCODED}/repository/files/{}?ref=main", POLICY.replace('/', "%2F"))).await;
    assert_eq!(policy.status, 200);
    assert_eq!(driver.fake.project(PROJECT, |p| p.default_branch.clone()), "main");
}

/// People's moves through the driver change the fake as GitLab would and make the hooks GitLab
/// sends (not delivered: the lane cannot take GitLab hooks yet).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_drivers_moves_change_the_fake_and_make_gitlabs_hooks() {
    use common::gitlab::{GitLabDriver, POLICY};
    use common::scenario::{Change, ForgeDriver, Landed, NewChange, Source, State};
    let mut d = GitLabDriver::start(common::Backend::Sqlite, "").await;
    d.deliver = false;
    let last = |d: &GitLabDriver| d.sent.last().cloned().unwrap();

    let pr = d.open(NewChange::by("codertocat").body("Postmortem: #50")).await;
    assert_eq!(pr, Change(1));
    let (kind, hook) = last(&d);
    assert_eq!((kind.as_str(), hook["object_attributes"]["action"].clone()), ("Merge Request Hook", json!("open")));
    assert_eq!(hook["object_attributes"]["description"], "Postmortem: #50");
    assert_eq!(hook["user"]["username"], "codertocat");

    d.label(pr, "hotfix", "alice").await;
    let (_, hook) = last(&d);
    assert_eq!(hook["object_attributes"]["action"], "update");
    assert_eq!(hook["changes"]["labels"]["previous"], json!([]));
    assert_eq!(hook["changes"]["labels"]["current"][0]["title"], "hotfix");
    assert_eq!(hook["user"]["username"], "alice");
    let events = d.fake.mr(PROJECT, 1).label_events;
    assert_eq!(
        (events[0].label.as_str(), events[0].action.as_str(), events[0].user),
        ("hotfix", "add", d.fake.user("alice"))
    );
    d.unlabel(pr, "hotfix", "bob").await;
    assert_eq!(last(&d).1["changes"]["labels"]["current"], json!([]));
    d.label(pr, "hotfix", "alice").await;

    let old = d.head(pr);
    let new = d.push(pr, "codertocat").await;
    assert_ne!(old, new);
    let (kind, hook) = last(&d);
    assert_eq!(kind, "Merge Request Hook");
    assert_eq!(
        (hook["object_attributes"]["oldrev"].as_str(), hook["object_attributes"]["last_commit"]["id"].as_str()),
        (Some(old.as_str()), Some(new.as_str()))
    );
    let push = &d.sent[d.sent.len() - 2];
    assert_eq!(
        (push.0.as_str(), push.1["after"].as_str(), push.1["ref"].as_str()),
        ("Push Hook", Some(new.as_str()), Some("refs/heads/fix-1"))
    );

    let said = d.comment(pr, "/hotfix approve", "alice").await;
    let (kind, hook) = last(&d);
    assert_eq!((kind.as_str(), hook["object_attributes"]["id"].as_u64()), ("Note Hook", Some(said.id)));
    assert_eq!(
        (hook["merge_request"]["iid"].clone(), hook["object_attributes"]["noteable_type"].clone()),
        (json!(1), json!("MergeRequest"))
    );
    d.edit_comment(said, "/hotfix revoke", "alice").await;
    assert_eq!(last(&d).1["object_attributes"]["action"], "update");
    assert_eq!(d.fake.mr(PROJECT, 1).notes[0].body, "/hotfix revoke");
    d.edit_description(pr, "Postmortem: #51", "codertocat").await;
    assert_eq!(
        last(&d).1["changes"]["description"],
        json!({ "previous": "Postmortem: #50", "current": "Postmortem: #51" })
    );
    assert_eq!(d.description(pr), "Postmortem: #51");

    // CI reports in the MR's head pipeline; a user's status lands there too.
    d.report(&new, "smoke", State::Pending, Source::App("gitlab-ci")).await;
    d.report(&new, "smoke", State::Success, Source::App("gitlab-ci")).await;
    let (kind, hook) = last(&d);
    assert_eq!(
        (kind.as_str(), hook["object_attributes"]["status"].clone(), hook["merge_request"]["iid"].clone()),
        ("Pipeline Hook", json!("success"), json!(1))
    );
    let head_pipeline = d.fake.head_pipeline(PROJECT, 1).expect("CI made the head pipeline");
    assert_eq!(hook["object_attributes"]["id"], head_pipeline);
    assert_eq!(d.check(&new, "smoke").map(|c| c.0), Some(State::Success));
    d.report(&new, "security", State::Failure, Source::User("mallory")).await;
    assert_eq!(d.check(&new, "security").map(|c| c.0), Some(State::Failure));
    assert_eq!(d.fake.status(PROJECT, &new, "security").unwrap().pipeline_id, head_pipeline);

    d.open_issue(50, &["postmortem"], "alice").await;
    assert_eq!(last(&d).0, "Issue Hook");
    d.label_issue(50, "done", "alice").await;
    assert_eq!(last(&d).1["changes"]["labels"]["current"][1]["title"], "done");
    d.unlabel_issue(50, "done", "alice").await;
    assert_eq!(d.fake.issue(PROJECT, 50).unwrap().labels, ["postmortem"]);

    d.push_policy("[merge]\nmethod = \"squash\"\n", "alice").await;
    let (kind, hook) = last(&d);
    assert_eq!((kind.as_str(), hook["ref"].clone()), ("Push Hook", json!("refs/heads/main")));
    assert_eq!(
        d.fake.project(PROJECT, |p| p.files[&("main".to_string(), POLICY.to_string())].content.clone()),
        "[merge]\nmethod = \"squash\"\n"
    );

    d.require_merge_queue("main");
    let train = d.queue(pr).await;
    let (_, hook) = last(&d);
    assert_eq!(
        (hook["object_attributes"]["sha"].as_str(), hook["object_attributes"]["status"].as_str()),
        (Some(train.as_str()), Some("running"))
    );
    assert_eq!(hook["object_attributes"]["ref"], "refs/merge-requests/1/train");
    d.report(&train, "smoke", State::Success, Source::App("gitlab-ci")).await;
    assert_eq!(d.check(&train, "smoke").map(|c| c.0), Some(State::Success));

    // What the lane would do through the API shows as written, opened and landed.
    let api = Api::new(&d.fake);
    let note = api.post(&format!("/projects/{ENCODED}/merge_requests/1/notes"), json!({ "body": "Authorized" })).await;
    api.post(&format!("/projects/{PROJECT}/issues"), json!({ "title": "Postmortem for !1", "labels": "postmortem" }))
        .await;
    api.post(&format!("/projects/{PROJECT}/merge_trains/merge_requests/1"), json!({ "sha": new })).await;
    let written = d.written();
    assert_eq!(
        (written.len(), written[0].on, written[0].id, written[0].repo.as_str()),
        (1, 1, note.body["id"].as_u64().unwrap(), PATH)
    );
    assert_eq!(d.issues_opened()[0].labels, ["postmortem"]);
    assert_eq!(d.landed(), [Landed::Enqueued { change: pr, sha: new.clone(), front: false }]);
}
