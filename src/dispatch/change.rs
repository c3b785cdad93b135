//! One change's inputs through [`lane::step`](crate::lane::step): observe what a step needs,
//! run it again with the answer, apply what it decided, feed the forge's answers back in.
//! The only loop between the lane's decisions and the forge; the server's jobs and the Action
//! both drive a change through it.

use std::collections::VecDeque;

use super::apply::apply;
use super::observe::recorded_labeler;
use super::policies::Loaded;
use super::responders::Responders;
use super::written::Written;
use super::StepError;
use crate::forge::{Forge, ForgeError};
use crate::lane::audit::Audit;
use crate::lane::effect::Effect;
use crate::lane::job::Job;
use crate::lane::policy;
use crate::lane::step::{self, Answer, Ctx, Input, Need, Observed};
use crate::lane::track::PullFacts;
use crate::store::Millis;

/// Steps one input may take before the loop is called off: each observation is asked for
/// once, so a step that keeps asking is a bug, not a slow forge.
const MAX_OBSERVATIONS: usize = 32;

/// How long after a failed evaluation the change is looked at again.
const RETRY_AFTER_LAPSE_MS: Millis = 30_000;

/// Drives inputs about change `number` through the lane.
pub(crate) struct Change<'a, F> {
    pub forge: &'a F,
    pub ctx: Ctx<'a>,
    pub number: u64,
    pub loaded: &'a Loaded,
    /// Remembered refusals (the server's); `None` asks the forge every time.
    pub responders: Option<&'a Responders>,
    /// Reports written lately (the server's), so a retry does not post them again.
    pub written: Option<&'a Written>,
    /// Which effects are carried out: all of them on the server; the Action only merges.
    pub applies: fn(&Effect) -> bool,
}

/// What the lane decided about a change in one job.
#[derive(Debug, Default)]
pub(crate) struct Decided {
    /// The facts to store; `None` when nothing changed.
    pub facts: Option<PullFacts>,
    pub audit: Vec<Audit>,
    /// Jobs to queue, each with when it is to run.
    pub jobs: Vec<(Job, Millis)>,
}

impl<F: Forge> Change<'_, F> {
    /// Runs `input` and every answer it leads to. `seed` holds what the caller observed
    /// already (the change it just read). When the forge fails part-way, what the input took
    /// away — a grant's lapse, a revoke — is kept, with a look at the change queued behind it.
    pub async fn run(&self, prior: Option<PullFacts>, input: Input, seed: Observed) -> Result<Decided, StepError> {
        let mut first_seen = seed.clone();
        match self.drive(prior.clone(), input.clone(), seed, &mut first_seen).await {
            Ok(decided) => Ok(decided),
            Err(err) => match step::withdrawn(prior.as_ref(), &input, &first_seen, &self.ctx) {
                Some(kept) => {
                    tracing::warn!(repo = %self.ctx.repo.full_name, number = self.number, error = %err,
                        "evaluation failed after authority was withdrawn; that is kept and the change is looked at again");
                    let facts = kept.facts.clone();
                    let reconcile = facts.as_ref().map(|f| {
                        let subject = crate::lane::job::Subject {
                            forge: self.ctx.conventions.forge,
                            repo: self.ctx.repo.clone(),
                            number: f.number,
                            installation_id: f.installation_id,
                        };
                        (Job::Reconcile(subject), self.ctx.now + RETRY_AFTER_LAPSE_MS)
                    });
                    Ok(Decided { facts, audit: kept.audit, jobs: reconcile.into_iter().collect() })
                }
                None => Err(err),
            },
        }
    }

    async fn drive(
        &self,
        prior: Option<PullFacts>,
        input: Input,
        seed: Observed,
        first_seen: &mut Observed,
    ) -> Result<Decided, StepError> {
        let mut decided = Decided::default();
        let mut facts = prior;
        let mut inputs = VecDeque::from([input]);
        let mut seed = Some(seed);
        let mut first = true;
        while let Some(input) = inputs.pop_front() {
            let mut seen = seed.take().unwrap_or_default();
            let mut asked = 0;
            let step = loop {
                match step::step(facts.as_ref(), &input, &seen, &self.ctx) {
                    Ok(step) => break step,
                    Err(need) if asked < MAX_OBSERVATIONS && !seen.has(&need) => {
                        let answer = self.observe(&need).await?;
                        seen.record(need, answer);
                        if first {
                            *first_seen = seen.clone();
                        }
                        asked += 1;
                    }
                    Err(need) => {
                        return Err(StepError::Invalid(format!("the lane kept asking for {need:?}")));
                    }
                }
            };
            first = false;
            if step.facts.is_some() {
                facts = step.facts;
            }
            decided.audit.extend(step.audit);
            for effect in step.effects {
                if let Effect::Enqueue(job) = effect {
                    decided.jobs.push((job, self.ctx.now));
                } else if (self.applies)(&effect) {
                    if let Some(answer) =
                        apply(self.forge, self.written, &self.ctx.repo.full_name, self.number, effect).await?
                    {
                        inputs.push_back(answer);
                    }
                }
            }
        }
        decided.facts = facts;
        Ok(decided)
    }

    /// Asks the forge what `need` names.
    async fn observe(&self, need: &Need) -> Result<Answer, StepError> {
        let (forge, repo, policy) = (self.forge, self.ctx.repo.full_name.as_str(), self.ctx.policy);
        Ok(match need {
            Need::Responder(login) => Answer::Responder(match self.responders {
                Some(cache) => cache.check(forge, repo, login, self.loaded, self.ctx.now).await?,
                None => forge.is_responder(repo, login, &policy.responders).await?,
            }),
            Need::Labeler => Answer::Labeler(recorded_labeler(forge, repo, self.number, policy).await?),
            Need::HeadAuthor(sha) => Answer::HeadAuthor(forge.commit_author(repo, sha).await?),
            Need::Issue { repo: issue_repo, number } => Answer::Issue(forge.issue(issue_repo, *number).await?),
            Need::Checks(sha) => Answer::Checks(forge.commit_checks(repo, sha).await?),
            Need::Change => Answer::Change(forge.pull(repo, self.number).await?),
            Need::ChangedFiles => Answer::ChangedFiles(forge.changed_files(repo, self.number).await?),
            Need::File { path, sha } => Answer::File(forge.file(repo, path, sha).await?.map(|f| f.text)),
            Need::Template(path) => {
                Answer::File(forge.file(repo, path, &self.ctx.repo.default_branch).await?.map(|f| f.text))
            }
            Need::Approvers(sha) => Answer::Approvers(approvers(forge, repo, self.number, sha).await?),
        })
    }
}

/// Who approved commit `sha` and may: an approval counts, as in branch protection, only from
/// someone with write access.
async fn approvers<F: Forge>(forge: &F, repo: &str, number: u64, sha: &str) -> Result<Vec<String>, ForgeError> {
    let writers = policy::Responders { min_permission: Some(policy::Permission::Write), ..Default::default() };
    let mut out = Vec::new();
    for login in forge.approvals(repo, number, sha).await? {
        if forge.is_responder(repo, &login, &writers).await? {
            out.push(login);
        }
    }
    Ok(out)
}

/// Applies every effect: the server.
pub(crate) fn everything(_: &Effect) -> bool {
    true
}
