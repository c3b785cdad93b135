//! The durable job runner: workers claim jobs under a lease, keep the lease alive while the
//! handler works, and record the outcome — done (with its writes), retry later, or dead.

mod backoff;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{watch, Notify};
use tokio::task::JoinSet;
use tracing::Instrument;

pub use backoff::Backoff;

use crate::clock::Clock;
use crate::metrics::Metrics;
use crate::store::{ClaimedJob, Dialect, Millis, Store, StoreError, Write};

/// What a handler made of one attempt.
#[derive(Debug)]
pub enum JobResult {
    /// Finished; the writes are committed together with the job's completion.
    Done(Vec<Write>),
    /// Not now (rate limit, a forge asking to come back later): run again after this long,
    /// without spending an attempt.
    RetryAfter { after: Duration, reason: String },
    /// This attempt failed; retried with backoff until attempts run out.
    Failed(String),
}

/// How often the runner looks for queue heads concurrent transactions left unmarked.
const HEAD_REPAIR_INTERVAL: Duration = Duration::from_secs(30);

pub trait JobHandler: Send + Sync + 'static {
    fn run(&self, job: &ClaimedJob) -> impl Future<Output = JobResult> + Send;
}

#[derive(Debug, Clone)]
pub struct RunnerOptions {
    pub workers: usize,
    pub lease: Duration,
    /// How often idle workers look for work that other replicas queued or that became due.
    pub poll: Duration,
    pub backoff: Backoff,
    /// Identifies this process's leases; unique per process.
    pub owner: String,
    /// An attempt still running after this is stopped and counts as failed: a forge or git
    /// host that accepts and never answers must not hold a worker (and its lease) forever.
    pub job_timeout: Duration,
}

impl Default for RunnerOptions {
    fn default() -> Self {
        RunnerOptions {
            workers: 4,
            lease: Duration::from_secs(60),
            poll: Duration::from_millis(500),
            backoff: Backoff::default(),
            owner: format!("{}-{}", std::process::id(), fastrand::u64(..)),
            job_timeout: Duration::from_secs(10 * 60),
        }
    }
}

pub struct Runner<H> {
    pub store: Store,
    pub handler: Arc<H>,
    pub clock: Arc<dyn Clock>,
    pub metrics: Metrics,
    pub options: RunnerOptions,
    /// Poked (`notify_one`) when new work is stored in this process, so idle workers need not
    /// wait to poll. A worker that claims a job pokes it again, waking the next: the wake-ups
    /// follow the work, where waking every worker on each batch would send most of them to
    /// claim nothing.
    pub wake: Arc<Notify>,
}

impl<H: JobHandler> Runner<H> {
    /// Runs the workers until `shutdown` turns true; jobs in flight are finished first, then
    /// any lease still held is released.
    pub async fn run(self, shutdown: watch::Receiver<bool>) {
        let this = Arc::new(self);
        let mut workers = JoinSet::new();
        {
            let (this, shutdown) = (this.clone(), shutdown.clone());
            workers.spawn(async move { this.maintain(shutdown).await });
        }
        for _ in 0..this.options.workers.max(1) {
            let (this, shutdown) = (this.clone(), shutdown.clone());
            workers.spawn(async move { this.work(shutdown).await });
        }
        while workers.join_next().await.is_some() {}
        let now = this.clock.now_ms();
        match this.store.release_leases(&this.options.owner, now).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(released = n, "released job leases"),
            Err(err) => tracing::warn!(error = %err, "could not release job leases"),
        }
    }

    async fn work(&self, mut shutdown: watch::Receiver<bool>) {
        while !*shutdown.borrow() {
            match self.step().await {
                Ok(true) => continue,
                Ok(false) => {}
                Err(err) => tracing::warn!(error = %err, "job store unavailable; retrying"),
            }
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(self.options.poll) => {}
                _ = shutdown.changed() => {}
            }
        }
    }

    /// The queue's housekeeping, on a timer rather than on every claim, so that its cost does
    /// not grow with the claim rate: bury jobs whose last attempt's lease ran out (their
    /// process died), and — on PostgreSQL, where concurrent transactions can leave one —
    /// promote stranded queue heads.
    async fn maintain(&self, mut shutdown: watch::Receiver<bool>) {
        let bury_every = (self.options.lease / 4).clamp(Duration::from_millis(50), Duration::from_secs(5));
        let mut last_repair = tokio::time::Instant::now();
        loop {
            tokio::select! {
                _ = tokio::time::sleep(bury_every) => {}
                _ = shutdown.wait_for(|stop| *stop) => return,
            }
            match self.store.bury_expired(self.clock.now_ms()).await {
                Ok(buried) => (0..buried).for_each(|_| self.metrics.job_dead("unknown")),
                Err(err) => tracing::warn!(error = %err, "burying expired jobs failed"),
            }
            if self.store.dialect() == Dialect::Postgres && last_repair.elapsed() >= HEAD_REPAIR_INTERVAL {
                last_repair = tokio::time::Instant::now();
                match self.store.repair_heads().await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(repaired = n, "promoted stranded queue heads"),
                    Err(err) => tracing::warn!(error = %err, "queue head repair failed"),
                }
            }
        }
    }

    /// Claims and runs one job; false when there was nothing to do.
    pub async fn step(&self) -> crate::store::Result<bool> {
        let now = self.clock.now_ms();
        let Some(job) = self.store.claim(&self.options.owner, now, now + ms(self.options.lease)).await? else {
            return Ok(false);
        };
        self.wake.notify_one();
        let span = tracing::info_span!("job", id = job.id, kind = %job.kind, attempt = job.attempts);
        self.process(job).instrument(span).await?;
        Ok(true)
    }

    async fn process(&self, job: ClaimedJob) -> crate::store::Result<()> {
        self.metrics.job_attempt(&job.kind);
        self.metrics.worker_busy(1);
        let result = match tokio::time::timeout(self.options.job_timeout, self.run_leased(&job)).await {
            Ok(Some(result)) => result,
            Ok(None) => {
                self.metrics.worker_busy(-1);
                tracing::warn!("lease lost while running; stopped, another worker owns this job now");
                return Ok(());
            }
            Err(_) => {
                self.metrics.job_timeout(&job.kind);
                JobResult::Failed(format!("stopped at the job deadline of {:?}", self.options.job_timeout))
            }
        };
        self.metrics.worker_busy(-1);
        let now = self.clock.now_ms();
        match result {
            JobResult::Done(writes) => match self.store.complete(&job, &writes, now).await {
                Ok(true) => {}
                Ok(false) => tracing::warn!("lease lost before completion; another worker owns this job now"),
                // Decided on facts another job has changed since: decided again on the new ones.
                Err(StoreError::Stale(reason)) => {
                    tracing::info!(%reason, "job decided on stale facts; running it again");
                    self.store.defer(&job, now, &reason, now).await?;
                }
                Err(err) => return Err(err),
            },
            JobResult::RetryAfter { after, reason } => {
                tracing::info!(%reason, after_ms = ms(after), "job deferred");
                self.store.defer(&job, now + ms(after), &reason, now).await?;
            }
            JobResult::Failed(error) => {
                self.metrics.job_failure(&job.kind);
                let delay = self.options.backoff.delay(job.attempts, fastrand::f64());
                if self.store.fail(&job, &error, now + ms(delay), now).await? {
                    self.metrics.job_dead(&job.kind);
                    tracing::error!(%error, "job is dead after its last attempt");
                } else {
                    tracing::warn!(%error, retry_in_ms = ms(delay), "job attempt failed");
                }
            }
        }
        Ok(())
    }

    /// Runs the handler while renewing the lease at a third of its length; `None` when the
    /// lease was lost to another worker, which has the job now.
    async fn run_leased(&self, job: &ClaimedJob) -> Option<JobResult> {
        let run = self.handler.run(job);
        tokio::pin!(run);
        let mut renew = tokio::time::interval(self.options.lease / 3);
        renew.tick().await;
        loop {
            tokio::select! {
                result = &mut run => return Some(result),
                _ = renew.tick() => {
                    let until = self.clock.now_ms() + ms(self.options.lease);
                    match self.store.extend_lease(job, until).await {
                        Ok(true) => {}
                        // This worker stalled past its lease and another took the job over:
                        // the run stops here, so that it reports and writes nothing more on the
                        // forge behind the new owner's back.
                        Ok(false) => return None,
                        Err(err) => tracing::warn!(error = %err, "could not extend job lease"),
                    }
                }
            }
        }
    }
}

fn ms(d: Duration) -> Millis {
    d.as_millis() as Millis
}
