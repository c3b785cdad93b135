//! Prometheus metrics, served as text on `GET /metrics`.

use std::sync::atomic::AtomicU64;
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

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HotfixLabels {
    forge: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MergeLabels {
    forge: String,
    lane: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WaitLabel {
    wait: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VersionLabel {
    version: String,
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
    hotfixes: Family<HotfixLabels, Counter>,
    merges: Family<MergeLabels, Counter>,
    hotfix_reverts: Family<ForgeLabel, Counter>,
    time_to_patch_seconds: Histogram,
    time_to_deploy_seconds: Histogram,
    postmortem_completion_seconds: Histogram,
    postmortem_reminders: Family<KindLabel, Counter>,
    postmortems: Family<StateLabel, Gauge>,
    hotfixes_waiting: Family<WaitLabel, Gauge>,
    oldest_waiting_seconds: Gauge<f64, AtomicU64>,
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

fn time_to_patch_histogram() -> Histogram {
    // 1 min … ~17 h: a smoke run takes minutes, a hard fix most of a shift
    Histogram::new(exponential_buckets(60.0, 2.0, 11))
}

fn time_to_deploy_histogram() -> Histogram {
    // 1 min … ~34 h: a deploy pipeline, or a merge that waits for the next day's window
    Histogram::new(exponential_buckets(60.0, 2.0, 12))
}

fn postmortem_histogram() -> Histogram {
    // 1 h … ~42 days: the target is a week, the tail is what needs chasing
    Histogram::new(exponential_buckets(3600.0, 2.0, 11))
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
        let hotfixes = Family::<HotfixLabels, Counter>::default();
        registry.register(
            "hotfixes",
            "Hotfixes that left the lane: outcome=merged, or abandoned (closed unmerged)",
            hotfixes.clone(),
        );
        let merges = Family::<MergeLabels, Counter>::default();
        registry.register(
            "merges",
            "Merged changes by lane (hotfix or normal); hotfix over all is the rework rate",
            merges.clone(),
        );
        let hotfix_reverts = Family::<ForgeLabel, Counter>::default();
        registry.register("hotfix_reverts", "Merged hotfixes reverted or rolled back", hotfix_reverts.clone());
        let time_to_patch_seconds = time_to_patch_histogram();
        registry.register(
            "time_to_patch_seconds",
            "From lane entry to the first green smoke result on the head commit",
            time_to_patch_seconds.clone(),
        );
        let time_to_deploy_seconds = time_to_deploy_histogram();
        registry.register(
            "time_to_deploy_seconds",
            "From the hotfix merge to its production deployment",
            time_to_deploy_seconds.clone(),
        );
        let postmortem_completion_seconds = postmortem_histogram();
        registry.register(
            "postmortem_completion_seconds",
            "From the hotfix merge to its postmortem closing",
            postmortem_completion_seconds.clone(),
        );
        let postmortem_reminders = Family::<KindLabel, Counter>::default();
        registry.register(
            "postmortem_reminders",
            "Postmortem reminders posted: kind=due, or overdue",
            postmortem_reminders.clone(),
        );
        let postmortems = Family::<StateLabel, Gauge>::default();
        registry.register(
            "postmortems",
            "Postmortems of merged hotfixes not closed yet: state=pending, or overdue (past the deadline)",
            postmortems.clone(),
        );
        let hotfixes_waiting = Family::<WaitLabel, Gauge>::default();
        registry.register(
            "hotfixes_waiting",
            "Open hotfixes in the lane by what they wait for: authorization, smoke, postmortem, merge",
            hotfixes_waiting.clone(),
        );
        let oldest_waiting_seconds = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "hotfix_oldest_waiting_seconds",
            "Age of the oldest open hotfix in the lane (0 when none)",
            oldest_waiting_seconds.clone(),
        );
        // A constant 1 whose label says which version runs; joins and `count by (version)` find
        // replicas left on an old build.
        let build_info = Family::<VersionLabel, Gauge>::default();
        build_info.get_or_create(&VersionLabel { version: env!("CARGO_PKG_VERSION").into() }).set(1);
        registry.register("build_info", "The running build: a constant 1 labelled with its version", build_info);
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
            hotfixes,
            merges,
            hotfix_reverts,
            time_to_patch_seconds,
            time_to_deploy_seconds,
            postmortem_completion_seconds,
            postmortem_reminders,
            postmortems,
            hotfixes_waiting,
            oldest_waiting_seconds,
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

const FORGES: &[&str] = &["github", "gitlab"];
const HOTFIX_OUTCOMES: &[&str] = &["merged", "abandoned"];
const REMINDER_KINDS: &[&str] = &["due", "overdue"];
/// What an open hotfix waits for; `lanes_waiting` sets every one, so a state that empties shows 0.
const WAITS: &[&str] = &["authorization", "smoke", "postmortem", "merge"];

/// `value` if it is one of `known`, else `other`: label values come from fixed lists only, as in
/// `event_label`.
fn fixed_label(value: &str, known: &[&'static str]) -> &'static str {
    known.iter().copied().find(|k| *k == value).unwrap_or("other")
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

    /// A hotfix left the lane: `outcome` is `merged`, or `abandoned` (closed unmerged).
    pub fn hotfix_outcome(&self, forge: &str, outcome: &str) {
        let labels = HotfixLabels {
            forge: fixed_label(forge, FORGES).into(),
            outcome: fixed_label(outcome, HOTFIX_OUTCOMES).into(),
        };
        self.0.hotfixes.get_or_create(&labels).inc();
    }

    /// Every merge the lane sees, hotfix or not: the denominator of the rework rate.
    pub fn change_merged(&self, forge: &str, hotfix: bool) {
        let lane = if hotfix { "hotfix" } else { "normal" };
        let labels = MergeLabels { forge: fixed_label(forge, FORGES).into(), lane: lane.into() };
        self.0.merges.get_or_create(&labels).inc();
    }

    pub fn hotfix_reverted(&self, forge: &str) {
        self.0.hotfix_reverts.get_or_create(&ForgeLabel { forge: fixed_label(forge, FORGES).into() }).inc();
    }

    /// Lane entry → first green smoke result on the head commit.
    pub fn time_to_patch(&self, d: Duration) {
        self.0.time_to_patch_seconds.observe(d.as_secs_f64());
    }

    /// Hotfix merge → production deployment.
    pub fn time_to_deploy(&self, d: Duration) {
        self.0.time_to_deploy_seconds.observe(d.as_secs_f64());
    }

    /// Hotfix merge → postmortem closed.
    pub fn postmortem_completed(&self, d: Duration) {
        self.0.postmortem_completion_seconds.observe(d.as_secs_f64());
    }

    /// `kind` is `due` or `overdue`.
    pub fn postmortem_reminder(&self, kind: &str) {
        self.0.postmortem_reminders.get_or_create(&KindLabel { kind: fixed_label(kind, REMINDER_KINDS).into() }).inc();
    }

    /// Set by the periodic sweep from the store, so every replica reports the same numbers.
    pub fn postmortems(&self, pending: usize, overdue: usize) {
        for (state, n) in [("pending", pending), ("overdue", overdue)] {
            self.0.postmortems.get_or_create(&StateLabel { state: state.into() }).set(n as i64);
        }
    }

    /// Open hotfixes by what they wait for, and the age of the oldest (`None`: none open). Every
    /// reason is set on each call, so one that empties drops to 0 instead of keeping its last
    /// value; a reason outside the fixed list is counted as `other`.
    pub fn lanes_waiting(&self, waiting: &[(&str, usize)], oldest: Option<Duration>) {
        let mut other = 0;
        let mut counts = [0usize; WAITS.len()];
        for (wait, n) in waiting {
            match WAITS.iter().position(|w| w == wait) {
                Some(i) => counts[i] += n,
                None => other += n,
            }
        }
        for (wait, n) in WAITS.iter().zip(counts) {
            self.0.hotfixes_waiting.get_or_create(&WaitLabel { wait: (*wait).into() }).set(n as i64);
        }
        let other_label = WaitLabel { wait: "other".into() };
        if other > 0 {
            self.0.hotfixes_waiting.get_or_create(&other_label).set(other as i64);
        } else if let Some(gauge) = self.0.hotfixes_waiting.get(&other_label) {
            gauge.set(0);
        }
        self.0.oldest_waiting_seconds.set(oldest.map_or(0.0, |d| d.as_secs_f64()));
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
    use std::time::Duration;

    use super::{event_label, Metrics};

    /// The sample line for `series` (name and labels as rendered), or a panic showing the render.
    fn sample(rendered: &str, series: &str) -> f64 {
        rendered
            .lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
            .unwrap_or_else(|| panic!("no series {series} in:\n{rendered}"))
            .parse()
            .unwrap()
    }

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

    #[test]
    fn hotfix_figures_render_with_their_names_and_fixed_labels() {
        let m = Metrics::default();
        m.hotfix_outcome("github", "merged");
        m.hotfix_outcome("gitlab", "abandoned");
        m.change_merged("github", true);
        m.change_merged("github", false);
        m.change_merged("github", false);
        m.hotfix_reverted("gitlab");
        m.time_to_patch(Duration::from_secs(90));
        m.time_to_deploy(Duration::from_secs(600));
        m.postmortem_completed(Duration::from_secs(2 * 86_400));
        m.postmortem_reminder("due");
        m.postmortem_reminder("overdue");
        m.postmortems(3, 1);
        let out = m.render(None, 0);

        assert_eq!(sample(&out, r#"hotfix_lane_hotfixes_total{forge="github",outcome="merged"}"#), 1.0);
        assert_eq!(sample(&out, r#"hotfix_lane_hotfixes_total{forge="gitlab",outcome="abandoned"}"#), 1.0);
        assert_eq!(sample(&out, r#"hotfix_lane_merges_total{forge="github",lane="hotfix"}"#), 1.0);
        assert_eq!(sample(&out, r#"hotfix_lane_merges_total{forge="github",lane="normal"}"#), 2.0);
        assert_eq!(sample(&out, r#"hotfix_lane_hotfix_reverts_total{forge="gitlab"}"#), 1.0);
        assert_eq!(sample(&out, "hotfix_lane_time_to_patch_seconds_count"), 1.0);
        assert_eq!(sample(&out, r#"hotfix_lane_time_to_patch_seconds_bucket{le="60.0"}"#), 0.0);
        assert_eq!(sample(&out, r#"hotfix_lane_time_to_patch_seconds_bucket{le="120.0"}"#), 1.0);
        assert_eq!(sample(&out, "hotfix_lane_time_to_deploy_seconds_sum"), 600.0);
        assert_eq!(sample(&out, "hotfix_lane_postmortem_completion_seconds_count"), 1.0);
        assert_eq!(sample(&out, r#"hotfix_lane_postmortem_reminders_total{kind="due"}"#), 1.0);
        assert_eq!(sample(&out, r#"hotfix_lane_postmortem_reminders_total{kind="overdue"}"#), 1.0);
        assert_eq!(sample(&out, r#"hotfix_lane_postmortems{state="pending"}"#), 3.0);
        assert_eq!(sample(&out, r#"hotfix_lane_postmortems{state="overdue"}"#), 1.0);
        let version = format!(r#"hotfix_lane_build_info{{version="{}"}}"#, env!("CARGO_PKG_VERSION"));
        assert_eq!(sample(&out, &version), 1.0);
        // The encoder adds `_total` itself: a doubled suffix would mean a name registered with it.
        assert!(!out.contains("_total_total"), "{out}");
    }

    #[test]
    fn histogram_buckets_reach_the_documented_tops() {
        let m = Metrics::default();
        m.time_to_patch(Duration::from_secs(1));
        m.time_to_deploy(Duration::from_secs(1));
        m.postmortem_completed(Duration::from_secs(1));
        let out = m.render(None, 0);
        // 60 s · 2^10 ≈ 17 h; 60 s · 2^11 ≈ 34 h; 1 h · 2^10 ≈ 42 d.
        for top in [
            r#"hotfix_lane_time_to_patch_seconds_bucket{le="61440.0"}"#,
            r#"hotfix_lane_time_to_deploy_seconds_bucket{le="122880.0"}"#,
            r#"hotfix_lane_postmortem_completion_seconds_bucket{le="3686400.0"}"#,
        ] {
            assert_eq!(sample(&out, top), 1.0);
        }
        assert!(!out.contains(r#"hotfix_lane_time_to_patch_seconds_bucket{le="122880.0"}"#), "{out}");
    }

    #[test]
    fn label_values_outside_the_fixed_lists_become_other() {
        let m = Metrics::default();
        m.hotfix_outcome("bitbucket", "rolled-back-by-alice");
        m.change_merged("acme/shop", true);
        m.hotfix_reverted("gitea");
        m.postmortem_reminder("someday");
        let out = m.render(None, 0);
        assert_eq!(sample(&out, r#"hotfix_lane_hotfixes_total{forge="other",outcome="other"}"#), 1.0);
        assert_eq!(sample(&out, r#"hotfix_lane_merges_total{forge="other",lane="hotfix"}"#), 1.0);
        assert_eq!(sample(&out, r#"hotfix_lane_hotfix_reverts_total{forge="other"}"#), 1.0);
        assert_eq!(sample(&out, r#"hotfix_lane_postmortem_reminders_total{kind="other"}"#), 1.0);
        for leaked in ["bitbucket", "alice", "acme", "gitea", "someday"] {
            assert!(!out.contains(leaked), "{leaked} became a label value:\n{out}");
        }
    }

    #[test]
    fn every_wait_reason_is_set_and_one_that_empties_drops_to_zero() {
        let m = Metrics::default();
        m.lanes_waiting(&[("smoke", 2), ("merge", 1), ("smoke", 1), ("coffee", 4)], Some(Duration::from_secs(5400)));
        let out = m.render(None, 0);
        assert_eq!(sample(&out, r#"hotfix_lane_hotfixes_waiting{wait="authorization"}"#), 0.0);
        assert_eq!(sample(&out, r#"hotfix_lane_hotfixes_waiting{wait="smoke"}"#), 3.0);
        assert_eq!(sample(&out, r#"hotfix_lane_hotfixes_waiting{wait="postmortem"}"#), 0.0);
        assert_eq!(sample(&out, r#"hotfix_lane_hotfixes_waiting{wait="merge"}"#), 1.0);
        assert_eq!(sample(&out, r#"hotfix_lane_hotfixes_waiting{wait="other"}"#), 4.0);
        assert_eq!(sample(&out, "hotfix_lane_hotfix_oldest_waiting_seconds"), 5400.0);

        m.lanes_waiting(&[("authorization", 1)], Some(Duration::from_millis(1500)));
        let out = m.render(None, 0);
        assert_eq!(sample(&out, r#"hotfix_lane_hotfixes_waiting{wait="authorization"}"#), 1.0);
        assert_eq!(sample(&out, r#"hotfix_lane_hotfixes_waiting{wait="smoke"}"#), 0.0);
        assert_eq!(sample(&out, r#"hotfix_lane_hotfixes_waiting{wait="merge"}"#), 0.0);
        assert_eq!(sample(&out, r#"hotfix_lane_hotfixes_waiting{wait="other"}"#), 0.0);
        assert_eq!(sample(&out, "hotfix_lane_hotfix_oldest_waiting_seconds"), 1.5);

        m.lanes_waiting(&[], None);
        let out = m.render(None, 0);
        assert_eq!(sample(&out, r#"hotfix_lane_hotfixes_waiting{wait="authorization"}"#), 0.0);
        assert_eq!(sample(&out, "hotfix_lane_hotfix_oldest_waiting_seconds"), 0.0);
    }
}
