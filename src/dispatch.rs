//! Runs claimed jobs: a stored delivery goes through the lane, and what the lane decides comes
//! back as writes for the runner to commit with the job.

use std::sync::Arc;

use crate::jobs::{JobHandler, JobResult};
use crate::lane::event::Envelope;
use crate::lane::track::{self, PullFacts};
use crate::store::{ClaimedJob, Store, Write, DELIVERY_JOB};

pub struct Dispatch {
    pub store: Store,
}

impl Dispatch {
    pub fn new(store: Store) -> Arc<Self> {
        Arc::new(Dispatch { store })
    }

    async fn delivery(&self, job: &ClaimedJob) -> JobResult {
        let Some(id) = job.delivery_id else {
            return JobResult::Failed("delivery job without a delivery".into());
        };
        let stored = match self.store.delivery_envelope(id).await {
            Ok(Some(stored)) => stored,
            Ok(None) => return JobResult::Failed(format!("delivery {id} is not stored")),
            Err(err) => return JobResult::Failed(err.to_string()),
        };
        let envelope: Envelope = match serde_json::from_str(&stored) {
            Ok(e) => e,
            Err(err) => {
                return JobResult::Failed(format!("stored delivery {id} does not parse: {err}"))
            }
        };
        let (Some(repo), Some((number, _))) = (&envelope.repo, track::subject(&envelope)) else {
            return JobResult::Done(vec![]);
        };
        let forge = envelope.forge.as_str();
        let (repo_id, number) = (repo.id as i64, number as i64);
        let prior = match self.store.lane_state(forge, repo_id, number).await {
            Ok(state) => state.and_then(|s| serde_json::from_value::<PullFacts>(s).ok()),
            Err(err) => return JobResult::Failed(err.to_string()),
        };
        let writes = track::observe(prior, &envelope)
            .map(|facts| Write::LaneState {
                forge: forge.to_string(),
                repo_id,
                number,
                state: serde_json::to_value(facts).expect("facts serialize"),
            })
            .into_iter()
            .collect();
        JobResult::Done(writes)
    }
}

impl JobHandler for Dispatch {
    async fn run(&self, job: &ClaimedJob) -> JobResult {
        match job.kind.as_str() {
            DELIVERY_JOB => self.delivery(job).await,
            other => JobResult::Failed(format!("no handler for job kind `{other}`")),
        }
    }
}
