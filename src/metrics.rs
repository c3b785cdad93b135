//! Prometheus metrics, served as text on `GET /metrics`.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::forge::github::payload::EVENTS;
use crate::forge::gitlab::payload::KINDS as GITLAB_KINDS;
use crate::store::JobCounts;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DeliveryLabels {
    forge: String,
    event: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ForgeLabel {
    forge: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabel {
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: String,
}

struct Inner {
    registry: Registry,
    deliveries: Family<DeliveryLabels, Counter>,
    ingress_seconds: Family<ForgeLabel, Histogram>,
    jobs: Family<StateLabel, Gauge>,
    job_attempts: Family<KindLabel, Counter>,
    job_failures: Family<KindLabel, Counter>,
    jobs_dead: Family<KindLabel, Counter>,
    grants: Family<OutcomeLabel, Counter>,
    authorization_seconds: Histogram,
    time_to_merge_seconds: Histogram,
    backport_lead_seconds: Family<StageLabel, Histogram>,
    backports_unmerged: Family<StaleLabel, Gauge>,
    body_bytes: Gauge,
    connections: Gauge,
    connections_refused: Counter,
    workers_busy: Gauge,
    job_timeouts: Family<KindLabel, Counter>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StaleLabel {
    stale: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StageLabel {
    stage: String,
}

fn backport_lead_histogram() -> Histogram {
    // 1 min … ~23 days: backports wait on reviews
    Histogram::new(exponential_buckets(60.0, 2.0, 16))
}

fn lead_time_histogram() -> Histogram {
    // 1 s … ~9 h
    Histogram::new(exponential_buckets(1.0, 2.0, 16))
}

/// Cheap to clone; all clones feed the same registry.
#[derive(Clone)]
pub struct Metrics(Arc<Inner>);

fn latency_histogram() -> Histogram {
    // 0.25 ms … ~4 s
    Histogram::new(exponential_buckets(0.000_25, 2.0, 15))
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("hotfix_lane");
        let deliveries = Family::<DeliveryLabels, Counter>::default();
        registry.register("deliveries", "Webhook deliveries by forge, event and outcome", deliveries.clone());
        let ingress_seconds =
            Family::<ForgeLabel, Histogram>::new_with_constructor(latency_histogram as fn() -> Histogram);
        registry.register("ingress_seconds", "Time from request to acknowledgement", ingress_seconds.clone());
        let jobs = Family::<StateLabel, Gauge>::default();
        registry.register("jobs", "Jobs in the queue by state (queue depth is state=\"queued\")", jobs.clone());
        let job_attempts = Family::<KindLabel, Counter>::default();
        registry.register("job_attempts", "Job attempts started", job_attempts.clone());
        let job_failures = Family::<KindLabel, Counter>::default();
        registry.register("job_failures", "Job attempts that failed", job_failures.clone());
        let jobs_dead = Family::<KindLabel, Counter>::default();
        registry.register("jobs_dead", "Jobs that used up their attempts", jobs_dead.clone());
        let grants = Family::<OutcomeLabel, Counter>::default();
        registry.register("grants", "Grant decisions: created, refused, revoked, voided, cleared", grants.clone());
        let authorization_seconds = lead_time_histogram();
        registry.register(
            "authorization_seconds",
            "From the lane label to a responder's grant",
            authorization_seconds.clone(),
        );
        let time_to_merge_seconds = lead_time_histogram();
        registry.register("time_to_merge_seconds", "From the lane label to the merge", time_to_merge_seconds.clone());
        let backport_lead_seconds =
            Family::<StageLabel, Histogram>::new_with_constructor(backport_lead_histogram as fn() -> Histogram);
        registry.register(
            "backport_lead_seconds",
            "From the hotfix merge to its backport pull request opening (stage=opened) and merging (stage=merged)",
            backport_lead_seconds.clone(),
        );
        let backports_unmerged = Family::<StaleLabel, Gauge>::default();
        registry.register(
            "backports_unmerged",
            "Backport pull requests not merged yet; stale=\"true\" for those open longer than backport.stale_after",
            backports_unmerged.clone(),
        );
        let body_bytes = Gauge::default();
        registry.register(
            "ingress_body_bytes",
            "Bytes of webhook body buffers held now, out of the server-wide body budget",
            body_bytes.clone(),
        );
        let connections = Gauge::default();
        registry.register("connections", "HTTP connections open now", connections.clone());
        let connections_refused = Counter::default();
        registry.register(
            "connections_refused",
            "HTTP connections answered 503 and closed because the connection cap was reached",
            connections_refused.clone(),
        );
        let workers_busy = Gauge::default();
        registry.register("workers_busy", "Job workers of this process running a job now", workers_busy.clone());
        let job_timeouts = Family::<KindLabel, Counter>::default();
        registry.register(
            "job_timeouts",
            "Job attempts stopped at the job deadline (a forge or git that does not answer)",
            job_timeouts.clone(),
        );
        Metrics(Arc::new(Inner {
            registry,
            deliveries,
            ingress_seconds,
            jobs,
            job_attempts,
            job_failures,
            jobs_dead,
            grants,
            authorization_seconds,
            time_to_merge_seconds,
            backport_lead_seconds,
            backports_unmerged,
            body_bytes,
            connections,
            connections_refused,
            workers_busy,
            job_timeouts,
        }))
    }
}

/// The `event` label: a name the lane knows for `forge` (GitHub's event names, GitLab's
/// `object_kind`s), from an authenticated delivery; anything else is `other`, so that no sender
/// can add series (each one is kept, and scraped, forever).
fn event_label(forge: &str, event: Option<&str>) -> &'static str {
    let known = if forge == "gitlab" { GITLAB_KINDS } else { EVENTS };
    event.and_then(|e| known.iter().copied().find(|k| *k == e)).unwrap_or("other")
}

impl Metrics {
    /// `event` is `None` for a request refused before it was authenticated.
    pub fn delivery(&self, forge: &str, event: Option<&str>, outcome: &str, elapsed: Duration) {
        let labels =
            DeliveryLabels { forge: forge.into(), event: event_label(forge, event).into(), outcome: outcome.into() };
        self.0.deliveries.get_or_create(&labels).inc();
        self.0.ingress_seconds.get_or_create(&ForgeLabel { forge: forge.into() }).observe(elapsed.as_secs_f64());
    }

    pub fn grant(&self, outcome: &str) {
        self.0.grants.get_or_create(&OutcomeLabel { outcome: outcome.into() }).inc();
    }

    pub fn authorization_latency(&self, elapsed: Duration) {
        self.0.authorization_seconds.observe(elapsed.as_secs_f64());
    }

    pub fn time_to_merge(&self, elapsed: Duration) {
        self.0.time_to_merge_seconds.observe(elapsed.as_secs_f64());
    }

    pub fn backport_lead_time(&self, stage: &str, elapsed: Duration) {
        self.0.backport_lead_seconds.get_or_create(&StageLabel { stage: stage.into() }).observe(elapsed.as_secs_f64());
    }

    pub fn backports_unmerged(&self, fresh: usize, stale: usize) {
        for (label, count) in [("false", fresh), ("true", stale)] {
            self.0.backports_unmerged.get_or_create(&StaleLabel { stale: label.into() }).set(count as i64);
        }
    }

    pub fn job_attempt(&self, kind: &str) {
        self.0.job_attempts.get_or_create(&KindLabel { kind: kind.into() }).inc();
    }

    pub fn job_failure(&self, kind: &str) {
        self.0.job_failures.get_or_create(&KindLabel { kind: kind.into() }).inc();
    }

    pub fn job_dead(&self, kind: &str) {
        self.0.jobs_dead.get_or_create(&KindLabel { kind: kind.into() }).inc();
    }

    pub fn job_timeout(&self, kind: &str) {
        self.0.job_timeouts.get_or_create(&KindLabel { kind: kind.into() }).inc();
    }

    /// A worker took a job (`+1`) or finished one (`-1`).
    pub fn worker_busy(&self, delta: i64) {
        self.0.workers_busy.inc_by(delta);
    }

    /// A connection opened (`+1`) or closed (`-1`).
    pub fn connection(&self, delta: i64) {
        self.0.connections.inc_by(delta);
    }

    pub fn connection_refused(&self) {
        self.0.connections_refused.inc();
    }

    /// Renders the registry, with the queue gauges refreshed from `counts` (read from the
    /// database at scrape time, so they agree across replicas) and the body budget's use.
    pub fn render(&self, counts: Option<JobCounts>, body_bytes: usize) -> String {
        self.0.body_bytes.set(body_bytes as i64);
        if let Some(c) = counts {
            for (state, n) in [("queued", c.queued), ("running", c.running), ("done", c.done), ("dead", c.dead)] {
                self.0.jobs.get_or_create(&StateLabel { state: state.into() }).set(n);
            }
        }
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.0.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::event_label;

    #[test]
    fn each_forge_keeps_its_own_event_names_and_nothing_else() {
        assert_eq!(event_label("github", Some("pull_request")), "pull_request");
        assert_eq!(event_label("gitlab", Some("merge_request")), "merge_request");
        assert_eq!(event_label("gitlab", Some("pipeline")), "pipeline");
        // A name of the other forge, or one made up, adds no series.
        assert_eq!(event_label("gitlab", Some("pull_request")), "other");
        assert_eq!(event_label("github", Some("merge_request")), "other");
        assert_eq!(event_label("gitlab", Some("build")), "other");
        assert_eq!(event_label("gitlab", None), "other");
    }
}
