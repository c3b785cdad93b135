//! The durable job queue and runner, on SQLite and PostgreSQL.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Backend, TestDb};
use hotfix_lane::clock::{Clock, ManualClock, SystemClock};
use hotfix_lane::jobs::{Backoff, JobHandler, JobResult, Runner, RunnerOptions};
use hotfix_lane::metrics::Metrics;
use hotfix_lane::store::{
    AuditEntry, ClaimedJob, DeliveryWriter, NewDelivery, NewJob, Store, StoreOutcome, Write, MAX_LEASE_EXPIRIES,
};
use tokio::sync::{watch, Notify};

fn job(key: &str, seq: usize) -> NewJob {
    NewJob {
        kind: "test".into(),
        ordering_key: key.into(),
        payload: serde_json::json!({ "key": key, "seq": seq }),
        delivery_id: None,
        max_attempts: 3,
        run_at: 0,
    }
}

fn runner<H: JobHandler>(store: Store, handler: Arc<H>, clock: Arc<dyn Clock>, owner: &str) -> Runner<H> {
    Runner {
        store,
        handler,
        clock,
        metrics: Metrics::default(),
        options: RunnerOptions {
            workers: 4,
            lease: Duration::from_secs(30),
            poll: Duration::from_millis(10),
            backoff: Backoff { base: Duration::from_secs(10), cap: Duration::from_secs(60) },
            owner: owner.into(),
            job_timeout: Duration::from_secs(60),
        },
        wake: Arc::new(Notify::new()),
    }
}

/// Records what ran, and fails the test if two jobs of one key ever overlap.
#[derive(Default)]
struct Recorder {
    ran: Mutex<Vec<(String, u64)>>,
    in_flight: Mutex<HashMap<String, bool>>,
    runs_per_job: Mutex<HashMap<i64, u32>>,
}

impl JobHandler for Recorder {
    async fn run(&self, job: &ClaimedJob) -> JobResult {
        let key = job.payload["key"].as_str().unwrap().to_string();
        let busy = self.in_flight.lock().unwrap().insert(key.clone(), true).unwrap_or(false);
        assert!(!busy, "two jobs of {key} ran at once");
        *self.runs_per_job.lock().unwrap().entry(job.id).or_default() += 1;
        tokio::time::sleep(Duration::from_millis(fastrand::u64(0..3))).await;
        self.ran.lock().unwrap().push((key.clone(), job.payload["seq"].as_u64().unwrap()));
        self.in_flight.lock().unwrap().insert(key, false);
        JobResult::Done(vec![])
    }
}

async fn run_until_drained<H: JobHandler>(runners: Vec<Runner<H>>, store: &Store, expected_done: i64) {
    let (stop, stopped) = watch::channel(false);
    let tasks: Vec<_> = runners.into_iter().map(|r| tokio::spawn(r.run(stopped.clone()))).collect();
    common::eventually("all jobs done", || async { store.job_counts().await.unwrap().done == expected_done }).await;
    stop.send(true).unwrap();
    for t in tasks {
        t.await.unwrap();
    }
}

async fn jobs_of_one_key_run_in_order_one_at_a_time(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    for seq in 0..30 {
        store.enqueue(&job(&format!("pr:{}", seq % 3), seq), 0).await.unwrap();
    }
    let recorder = Arc::new(Recorder::default());
    run_until_drained(vec![runner(store.clone(), recorder.clone(), Arc::new(SystemClock), "a")], &store, 30).await;
    let ran = recorder.ran.lock().unwrap().clone();
    assert_eq!(ran.len(), 30);
    for key in ["pr:0", "pr:1", "pr:2"] {
        let seqs: Vec<u64> = ran.iter().filter(|(k, _)| k == key).map(|(_, s)| *s).collect();
        let mut sorted = seqs.clone();
        sorted.sort();
        assert_eq!(seqs, sorted, "{key} ran out of order");
    }
}

async fn two_runners_on_one_database_run_each_job_exactly_once(backend: Backend) {
    let db = TestDb::new(backend).await;
    // Separate pools, as two `serve` processes would have.
    let (store_a, store_b) = (db.store().await, db.store().await);
    for seq in 0..200 {
        store_a.enqueue(&job(&format!("pr:{}", seq % 40), seq), 0).await.unwrap();
    }
    let recorder = Arc::new(Recorder::default());
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    run_until_drained(
        vec![
            runner(store_a.clone(), recorder.clone(), clock.clone(), "replica-a"),
            runner(store_b, recorder.clone(), clock, "replica-b"),
        ],
        &store_a,
        200,
    )
    .await;
    let runs = recorder.runs_per_job.lock().unwrap();
    assert_eq!(runs.len(), 200);
    assert!(runs.values().all(|&n| n == 1), "a job ran more than once: {runs:?}");
}

/// Fails every attempt, or asks to come back later, as told.
struct Scripted {
    results: Mutex<Vec<JobResult>>,
    attempts: Mutex<Vec<i64>>,
}

impl JobHandler for Scripted {
    async fn run(&self, job: &ClaimedJob) -> JobResult {
        self.attempts.lock().unwrap().push(job.attempts);
        let mut results = self.results.lock().unwrap();
        if results.is_empty() {
            JobResult::Failed("still broken".into())
        } else {
            results.remove(0)
        }
    }
}

fn scripted(results: Vec<JobResult>) -> Arc<Scripted> {
    Arc::new(Scripted { results: Mutex::new(results), attempts: Mutex::new(vec![]) })
}

async fn failures_back_off_then_die_and_can_be_requeued(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let clock = Arc::new(ManualClock::new(1_000_000));
    store.enqueue(&job("pr:1", 0), clock.now_ms()).await.unwrap();
    store.enqueue(&job("pr:1", 1), clock.now_ms()).await.unwrap();
    let handler = scripted(vec![]);
    let r = runner(store.clone(), handler.clone(), clock.clone(), "a");

    assert!(r.step().await.unwrap(), "first attempt runs");
    assert!(!r.step().await.unwrap(), "not due yet, and the next job of the key waits behind it");
    clock.advance(4_999);
    assert!(!r.step().await.unwrap(), "backoff after attempt 1 is at least 5 s (base 10 s, half jittered)");
    clock.advance(5_001);
    assert!(r.step().await.unwrap(), "second attempt after at most 10 s");
    clock.advance(20_000);
    assert!(r.step().await.unwrap(), "third and last attempt after at most 20 s");
    assert_eq!(*handler.attempts.lock().unwrap(), vec![1, 2, 3]);

    let dead = store.jobs_in_state("dead").await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].last_error.as_deref(), Some("still broken"));
    assert!(r.step().await.unwrap(), "a dead job no longer holds back its key");
    assert_eq!(handler.attempts.lock().unwrap().len(), 4);

    assert!(store.requeue_dead(dead[0].id, clock.now_ms()).await.unwrap());
    assert!(!store.requeue_dead(dead[0].id, clock.now_ms()).await.unwrap(), "only dead jobs are requeued");
    assert_eq!(store.jobs_in_state("queued").await.unwrap().iter().find(|j| j.id == dead[0].id).unwrap().attempts, 0);
}

async fn retry_after_is_honoured_without_spending_an_attempt(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let clock = Arc::new(ManualClock::new(1_000_000));
    store.enqueue(&job("pr:1", 0), clock.now_ms()).await.unwrap();
    let handler = scripted(vec![
        JobResult::RetryAfter { after: Duration::from_secs(60), reason: "rate limited".into() },
        JobResult::Done(vec![]),
    ]);
    let r = runner(store.clone(), handler.clone(), clock.clone(), "a");
    assert!(r.step().await.unwrap());
    clock.advance(59_000);
    assert!(!r.step().await.unwrap(), "not before the time the handler asked for");
    clock.advance(1_000);
    assert!(r.step().await.unwrap());
    assert_eq!(*handler.attempts.lock().unwrap(), vec![1, 1], "the deferral spent no attempt");
    assert_eq!(store.job_counts().await.unwrap().done, 1);
}

async fn a_lost_lease_is_reclaimed_and_its_writes_never_land(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let t0 = 1_000_000;
    store.enqueue(&job("pr:1", 0), t0).await.unwrap();
    let first = store.claim("crashed", t0, t0 + 1_000).await.unwrap().expect("claimed");
    assert!(store.claim("other", t0 + 500, t0 + 1_500).await.unwrap().is_none(), "leased");
    let second = store.claim("other", t0 + 2_000, t0 + 3_000).await.unwrap().expect("reclaimed after expiry");
    assert_eq!((second.id, second.attempts), (first.id, 1), "the attempt its dead worker lost, run again");

    let audit = |actor: &str| {
        Write::Audit(AuditEntry {
            at: t0,
            forge: "github".into(),
            repo: "o/r".into(),
            number: Some(1),
            actor: actor.into(),
            action: "test".into(),
            sha: None,
            detail: String::new(),
        })
    };
    assert!(!store.complete(&first, &[audit("stale")], t0 + 2_100).await.unwrap());
    assert!(store.complete(&second, &[audit("owner")], t0 + 2_200).await.unwrap());
    let entries = store.audit(Some("o/r"), None).await.unwrap();
    assert_eq!(entries.iter().map(|e| e.actor.as_str()).collect::<Vec<_>>(), vec!["owner"]);
}

/// Two jobs decided on the same stored facts (a slow one, then a quick one that wrote first):
/// the slow one's write is refused whole — its audit entry too — and it is run again on the
/// newer facts, instead of overwriting them.
async fn a_job_that_decided_on_stale_facts_cannot_overwrite_newer_ones(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let state = |read: Option<i64>, n: i64| Write::LaneState {
        forge: "github".into(),
        repo_id: 1,
        number: 2,
        state: serde_json::json!({ "n": n }),
        read,
    };
    let note = |actor: &str| {
        Write::Audit(AuditEntry {
            at: 1,
            forge: "github".into(),
            repo: "o/r".into(),
            number: Some(2),
            actor: actor.into(),
            action: "test".into(),
            sha: None,
            detail: String::new(),
        })
    };
    let mut claimed = Vec::new();
    for seq in 0..4 {
        store.enqueue(&job(&format!("pr:{seq}"), seq), 0).await.unwrap();
        claimed.push(store.claim("w", 0, 60_000).await.unwrap().expect("claimed"));
    }
    // Both read "nothing stored yet": the first to commit wins.
    assert!(store.complete(&claimed[0], &[state(None, 1), note("first")], 1).await.unwrap());
    let stale = store.complete(&claimed[1], &[note("second"), state(None, 2)], 2).await;
    assert!(matches!(stale, Err(hotfix_lane::store::StoreError::Stale(_))), "{stale:?}");
    let (stored, version) = store.versioned_lane_state("github", 1, 2).await.unwrap().unwrap();
    assert_eq!((stored["n"].as_i64(), version), (Some(1), 1));
    // Both read version 1: again only the first lands.
    assert!(store.complete(&claimed[2], &[state(Some(1), 3)], 3).await.unwrap());
    assert!(store.complete(&claimed[3], &[state(Some(1), 4)], 4).await.is_err());
    let (stored, version) = store.versioned_lane_state("github", 1, 2).await.unwrap().unwrap();
    assert_eq!((stored["n"].as_i64(), version), (Some(3), 2));
    let actors: Vec<String> = store.audit(Some("o/r"), None).await.unwrap().into_iter().map(|e| e.actor).collect();
    assert_eq!(actors, ["first"], "the refused job's audit entry did not land either");
}

async fn shutdown_releases_leases(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    store.enqueue(&job("pr:1", 0), 0).await.unwrap();
    let claimed = store.claim("leaving", 10, 60_000).await.unwrap().unwrap();
    assert_eq!(store.release_leases("leaving", 20).await.unwrap(), 1);
    let again = store.claim("staying", 30, 60_000).await.unwrap().expect("claimable at once");
    assert_eq!((again.id, again.attempts), (claimed.id, 1), "the interrupted attempt is not counted");
}

async fn a_job_that_keeps_killing_its_process_is_buried(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    store.enqueue(&NewJob { max_attempts: 2, ..job("pr:1", 0) }, 0).await.unwrap();
    // The first run, then one re-run per lease that ran out, up to the limit.
    for run in 0..=MAX_LEASE_EXPIRIES {
        let at = 10 + 20 * run;
        store.claim(&format!("p{run}"), at, at + 10).await.unwrap().expect("claimed");
    }
    let after = 10 + 20 * (MAX_LEASE_EXPIRIES + 1);
    assert!(store.claim("last", after, after + 10).await.unwrap().is_none(), "no run after the limit");
    assert_eq!(store.bury_expired(after).await.unwrap(), 1);
    let dead = store.jobs_in_state("dead").await.unwrap();
    assert_eq!(dead.len(), 1);
    assert!(dead[0].last_error.as_deref().unwrap().contains("ran out 10 times"), "{dead:?}");
}

/// Replicas killed under a job (a deploy, OOM kills, a node lost) more often than it has
/// attempts: each re-run takes the place of the one its dead worker lost, so the job still
/// runs to the end instead of being buried as failed, and its attempts count only real runs.
async fn a_job_whose_workers_are_killed_more_often_than_its_attempts_still_finishes(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    store.enqueue(&NewJob { max_attempts: 2, ..job("pr:1", 0) }, 0).await.unwrap();
    for killed in 0..4 {
        let at = 10 + 20 * killed;
        let run = store.claim(&format!("killed-{killed}"), at, at + 10).await.unwrap().expect("claimed");
        assert_eq!(run.attempts, 1, "a lost run is no failed attempt");
    }
    assert_eq!(store.bury_expired(1_000).await.unwrap(), 0, "not buried for its workers' deaths");
    let last = store.claim("survivor", 1_000, 2_000).await.unwrap().expect("run again");
    assert_eq!((last.attempts, last.max_attempts), (1, 2));
    assert!(store.complete(&last, &[], 1_500).await.unwrap());
    assert_eq!(store.job_counts().await.unwrap().done, 1);
    assert!(store.jobs_in_state("dead").await.unwrap().is_empty());
}

/// Works until stopped, counting its steps.
#[derive(Default)]
struct Endless {
    steps: std::sync::atomic::AtomicU64,
}

impl JobHandler for Endless {
    async fn run(&self, _: &ClaimedJob) -> JobResult {
        loop {
            tokio::time::sleep(Duration::from_millis(10)).await;
            self.steps.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }
}

/// A worker that stalled past its lease (a pause, a starved machine) while another took the
/// job over stops at its next renewal: it must not go on acting on the forge beside the new
/// owner, and it leaves the job to it.
async fn a_worker_that_lost_its_lease_stops_working_on_the_job(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    store.enqueue(&job("pr:1", 0), 0).await.unwrap();
    let clock = Arc::new(ManualClock::new(1_000_000));
    let handler = Arc::new(Endless::default());
    let mut stalled = runner(store.clone(), handler.clone(), clock.clone(), "stalled");
    stalled.options.lease = Duration::from_millis(300);
    let step = tokio::spawn(async move { stalled.step().await });
    let steps = || handler.steps.load(std::sync::atomic::Ordering::SeqCst);
    common::eventually("the job runs", || async { steps() > 0 }).await;
    // Seen from later on, the lease has run out: another worker takes the job over.
    let later = clock.now_ms() + 10_000;
    let taken = store.claim("other", later, later + 60_000).await.unwrap().expect("taken over");
    let stepped = tokio::time::timeout(Duration::from_secs(5), step).await.expect("the stalled worker stops");
    assert!(stepped.unwrap().unwrap(), "it had claimed a job");
    let stopped_at = steps();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(steps(), stopped_at, "no more work once the lease was lost");
    assert_eq!(store.job_counts().await.unwrap().running, 1, "the job is still the new owner's");
    assert!(store.complete(&taken, &[], later + 1).await.unwrap(), "and the new owner completes it");
}

async fn the_audit_log_is_append_only(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    drop(store);
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&db.url).await.unwrap();
    sqlx::query(
        "INSERT INTO audit_log (at, forge, repo, actor, action, detail) VALUES (1, 'github', 'o/r', 'a', 'x', '')",
    )
    .execute(&pool)
    .await
    .unwrap();
    let update = sqlx::query("UPDATE audit_log SET actor = 'b'").execute(&pool).await;
    assert!(update.unwrap_err().to_string().contains("append-only"));
    let delete = sqlx::query("DELETE FROM audit_log").execute(&pool).await;
    assert!(delete.unwrap_err().to_string().contains("append-only"));
}

async fn finished_work_is_pruned_and_dead_work_kept(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let (writer, _task) = DeliveryWriter::spawn(store.clone(), 1, Arc::new(Notify::new()));
    for (id, received_at) in [("old-done", 0), ("old-dead", 0), ("recent", 500)] {
        let delivery = NewDelivery {
            forge: "github",
            delivery_id: id.into(),
            event: "push".into(),
            envelope: "{}".into(),
            ordering_key: id.into(),
            received_at,
        };
        assert_eq!(writer.store(delivery).await.unwrap(), StoreOutcome::Stored);
    }
    let done = store.claim("w", 10, 1_000).await.unwrap().unwrap();
    assert!(store.complete(&done, &[], 20).await.unwrap());
    let dead = store.claim("w", 30, 1_000).await.unwrap().unwrap();
    assert!(store.fail(&dead, "broken", 40, 40).await.unwrap());

    assert_eq!(store.prune(100).await.unwrap(), (1, 1), "the old finished job and its delivery go");
    assert_eq!(store.delivery_count().await.unwrap(), 2);
    assert!(store.delivery_by_forge_id("github", "old-dead").await.unwrap().is_some(), "kept for its dead job");
    assert_eq!(store.jobs_in_state("dead").await.unwrap().len(), 1);
}

async fn a_stranded_queue_head_is_repaired(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    store.enqueue(&job("pr:1", 0), 0).await.unwrap();
    store.enqueue(&job("pr:1", 1), 0).await.unwrap();
    sqlx::any::install_default_drivers();
    let raw = sqlx::AnyPool::connect(&db.url).await.unwrap();
    // What a race between two replicas could leave behind: nobody marked as head.
    sqlx::query("UPDATE jobs SET head = 0").execute(&raw).await.unwrap();
    assert!(store.claim("w", 1, 1_000).await.unwrap().is_none(), "claims consider heads only");
    assert_eq!(store.repair_heads().await.unwrap(), 1, "only the oldest of the key is promoted");
    let first = store.claim("w", 2, 1_000).await.unwrap().expect("claimable after repair");
    assert_eq!(first.payload["seq"], 0);
    assert!(store.complete(&first, &[], 3).await.unwrap());
    let second = store.claim("w", 4, 1_000).await.unwrap().expect("completion promotes the next");
    assert_eq!(second.payload["seq"], 1);
}

async fn the_same_delivery_twice_in_one_batch_is_stored_once(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let (writer, _task) = DeliveryWriter::spawn(store.clone(), 3, Arc::new(Notify::new()));
    let delivery = NewDelivery {
        forge: "github",
        delivery_id: "twice".into(),
        event: "push".into(),
        envelope: "{}".into(),
        ordering_key: "k".into(),
        received_at: 0,
    };
    let (a, b) = tokio::join!(writer.store(delivery.clone()), writer.store(delivery));
    let mut outcomes = vec![a.unwrap(), b.unwrap()];
    outcomes.sort_by_key(|o| *o == StoreOutcome::Duplicate);
    assert_eq!(outcomes, vec![StoreOutcome::Stored, StoreOutcome::Duplicate]);
    assert_eq!(store.delivery_count().await.unwrap(), 1);
    assert_eq!(store.job_counts().await.unwrap().queued, 1);
}

/// Deliveries taken in one order are queued in that order for each change, across the many
/// batches the writer stores them in while more keep arriving.
async fn deliveries_keep_their_order_per_change_across_batches(backend: Backend) {
    use std::future::Future;
    use std::pin::Pin;
    use std::task::Poll;
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let (writer, _task) = DeliveryWriter::spawn(store.clone(), 3, Arc::new(Notify::new()));
    const N: usize = 1500;
    type Storing = Pin<Box<dyn Future<Output = hotfix_lane::store::Result<StoreOutcome>> + Send>>;
    let mut storing: Vec<(Storing, Option<StoreOutcome>)> = (0..N)
        .map(|seq| {
            let delivery = NewDelivery {
                forge: "github",
                delivery_id: format!("d{seq}"),
                event: "push".into(),
                envelope: format!("{{\"seq\":{seq}}}"),
                // Most share one change, as a burst on one pull request does; some do not.
                ordering_key: if seq % 4 == 0 { format!("k{}", seq % 3) } else { "hot".into() },
                received_at: 0,
            };
            let writer = writer.clone();
            (Box::pin(async move { writer.store(delivery).await }) as Storing, None)
        })
        .collect();
    // The first poll of each hands its delivery to the writer: in this order, while the
    // writer is already storing the first ones.
    std::future::poll_fn(|cx| {
        for (future, done) in storing.iter_mut() {
            if let Poll::Ready(outcome) = future.as_mut().poll(cx) {
                *done = Some(outcome.unwrap());
            }
        }
        Poll::Ready(())
    })
    .await;
    for (future, done) in storing {
        let outcome = match done {
            Some(outcome) => outcome,
            None => future.await.unwrap(),
        };
        assert_eq!(outcome, StoreOutcome::Stored);
    }
    let mut seqs: std::collections::BTreeMap<String, Vec<u64>> = Default::default();
    while let Some(job) = store.claim("w", 1, 1_000_000).await.unwrap() {
        let envelope = store.delivery_envelope(job.delivery_id.unwrap()).await.unwrap().unwrap();
        let seq = serde_json::from_str::<serde_json::Value>(&envelope).unwrap()["seq"].as_u64().unwrap();
        seqs.entry(job.ordering_key.clone()).or_default().push(seq);
        assert!(store.complete(&job, &[], 2).await.unwrap());
    }
    assert_eq!(seqs.values().map(Vec::len).sum::<usize>(), N);
    for (key, seqs) in &seqs {
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{key} queued out of order: {seqs:?}");
    }
}

on_both_backends!(
    deliveries_keep_their_order_per_change_across_batches,
    a_stranded_queue_head_is_repaired,
    the_same_delivery_twice_in_one_batch_is_stored_once,
    finished_work_is_pruned_and_dead_work_kept,
    jobs_of_one_key_run_in_order_one_at_a_time,
    two_runners_on_one_database_run_each_job_exactly_once,
    failures_back_off_then_die_and_can_be_requeued,
    retry_after_is_honoured_without_spending_an_attempt,
    a_lost_lease_is_reclaimed_and_its_writes_never_land,
    a_job_that_decided_on_stale_facts_cannot_overwrite_newer_ones,
    shutdown_releases_leases,
    a_job_that_keeps_killing_its_process_is_buried,
    a_job_whose_workers_are_killed_more_often_than_its_attempts_still_finishes,
    a_worker_that_lost_its_lease_stops_working_on_the_job,
    the_audit_log_is_append_only,
);
