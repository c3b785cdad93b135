//! Faults between the lane and a fake forge, the way a degraded forge and the network between
//! produce them: attached to a fake when it is built, every API call it serves goes through it.
//!
//! A seeded generator picks the calls to hurt (a share of them) and how:
//!
//! * [`Fault::ServerError`]: 502 before the call is carried out; nothing happened.
//! * [`Fault::Timeout`]: the call is carried out, and its answer held past the client's deadline.
//! * [`Fault::Reset`]: the connection is dropped before the call is carried out, with no answer.
//! * [`Fault::SecondaryLimit`]: GitHub's secondary rate limit (403, or 429, with `Retry-After: 1`);
//!   GitLab's throttle (429, `Retry-After: 1`).
//! * [`Fault::PrimaryLimit`]: the hourly limit spent: GitHub 403 with `x-ratelimit-remaining: 0`
//!   and `x-ratelimit-reset`; GitLab 429 with `RateLimit-Reset` (and no `Retry-After`).
//! * [`Fault::AppliedThenError`]: the call is carried out, then its answer is replaced by a 502
//!   (GitHub) or 500 (GitLab): the write happened, the answer was lost.
//!
//! Rate limits are answered only to writes about one change (a change, issue or commit in the
//! path), so that the next call on the same path is the refused one's retry: [`Faults::early_retries`]
//! lists the retries that came sooner than the answer allowed.
//!
//! Off unless asked for ([`Faults::off`] is what the fakes use by default). [`Faults::latency`]
//! delays every answer instead, for benchmarks that want a forge with a network in between.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::http::{Request, Response, StatusCode};
use axum::Router;
use hyper::body::Incoming;
use hyper::service::Service as _;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;

/// Which forge a fake plays: the shapes of its errors and rate limits differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    GitHub,
    GitLab,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Fault {
    ServerError,
    Timeout,
    Reset,
    SecondaryLimit,
    PrimaryLimit,
    AppliedThenError,
}

impl Fault {
    pub const ALL: [Fault; 6] = [
        Fault::ServerError,
        Fault::Timeout,
        Fault::Reset,
        Fault::SecondaryLimit,
        Fault::PrimaryLimit,
        Fault::AppliedThenError,
    ];

    pub fn is_rate_limit(self) -> bool {
        matches!(self, Fault::SecondaryLimit | Fault::PrimaryLimit)
    }

    /// Whether the fake carried the call out before the fault.
    pub fn applied(self) -> bool {
        matches!(self, Fault::Timeout | Fault::AppliedThenError)
    }
}

/// One call the fake served: when it arrived, what it was, what was done to it.
#[derive(Debug, Clone)]
pub struct Served {
    pub at: Instant,
    pub method: String,
    /// Path and query.
    pub uri: String,
    pub fault: Option<Fault>,
    /// For a rate limit: the earliest instant its answer allowed the call again.
    pub not_before: Option<Instant>,
}

impl Served {
    pub fn is_write(&self) -> bool {
        is_write(&self.method)
    }
}

struct Inner {
    /// Out of 1,000,000 calls, how many are hurt.
    share: u32,
    kinds: Vec<Fault>,
    latency: Duration,
    /// How long a [`Fault::Timeout`] holds its answer.
    hold: Duration,
    state: Mutex<State>,
}

struct State {
    rng: u64,
    paused: bool,
    served: Vec<Served>,
}

/// A fault plan and what it did; cheap to clone (one shared record).
#[derive(Clone)]
pub struct Faults {
    inner: Arc<Inner>,
}

impl Default for Faults {
    fn default() -> Faults {
        Faults::off()
    }
}

impl Faults {
    /// No faults, no delay: every call answered as the fake answers it.
    pub fn off() -> Faults {
        Faults::build(0, 0.0, Duration::ZERO)
    }

    /// A `share` (0.0–1.0) of the calls hurt, the kinds drawn evenly, from a generator seeded
    /// with `seed`.
    pub fn new(seed: u64, share: f64) -> Faults {
        Faults::build(seed, share, Duration::ZERO)
    }

    /// No faults; every answer delayed `ms` milliseconds.
    pub fn latency(ms: u64) -> Faults {
        Faults::build(0, 0.0, Duration::from_millis(ms))
    }

    fn build(seed: u64, share: f64, latency: Duration) -> Faults {
        let inner = Inner {
            share: (share.clamp(0.0, 1.0) * 1_000_000.0) as u32,
            kinds: Fault::ALL.to_vec(),
            latency,
            hold: Duration::from_secs(35),
            // A zero state would stay zero.
            state: Mutex::new(State { rng: seed ^ 0x9e37_79b9_7f4a_7c15, paused: false, served: Vec::new() }),
        };
        Faults { inner: Arc::new(inner) }
    }

    fn edit(self, f: impl FnOnce(&mut Inner)) -> Faults {
        let mut inner = Arc::try_unwrap(self.inner).unwrap_or_else(|_| panic!("configure faults before sharing them"));
        f(&mut inner);
        Faults { inner: Arc::new(inner) }
    }

    /// Only these kinds.
    pub fn kinds(self, kinds: &[Fault]) -> Faults {
        let kinds = kinds.to_vec();
        self.edit(|i| i.kinds = kinds)
    }

    /// How long a timeout holds its answer: longer than the client under test waits (the lane's
    /// clients wait 30 s; tests shorten that through their settings).
    pub fn hold(self, hold: Duration) -> Faults {
        self.edit(|i| i.hold = hold)
    }

    /// Every answer delayed this much too.
    pub fn with_latency(self, ms: u64) -> Faults {
        self.edit(|i| i.latency = Duration::from_millis(ms))
    }

    /// Stops (`true`) or resumes hurting calls; they are still recorded.
    pub fn pause(&self, paused: bool) {
        self.inner.state.lock().unwrap().paused = paused;
    }

    /// Every call served so far, in order of arrival.
    pub fn served(&self) -> Vec<Served> {
        self.inner.state.lock().unwrap().served.clone()
    }

    /// The calls that were hurt.
    pub fn injected(&self) -> Vec<Served> {
        self.served().into_iter().filter(|s| s.fault.is_some()).collect()
    }

    /// How many of each kind were injected.
    pub fn counts(&self) -> BTreeMap<Fault, usize> {
        let mut counts = BTreeMap::new();
        for s in self.injected() {
            *counts.entry(s.fault.unwrap()).or_insert(0) += 1;
        }
        counts
    }

    /// Each rate-limited call whose retry (the next call of the same method and path) came
    /// more than `slack` sooner than the answer allowed: `(refused, retry)`. The slack is for a
    /// lane whose clock is not the wall clock (one stepped along with real time measures a wait
    /// a few milliseconds short or long); a retry that ignored the answer comes far earlier.
    pub fn early_retries(&self, slack: Duration) -> Vec<(Served, Served)> {
        let served = self.served();
        let mut early = Vec::new();
        for (i, refused) in served.iter().enumerate() {
            let Some(not_before) = refused.not_before else { continue };
            let retry = served[i + 1..].iter().find(|s| s.method == refused.method && s.uri == refused.uri);
            if let Some(retry) = retry.filter(|r| r.at + slack < not_before) {
                early.push((refused.clone(), retry.clone()));
            }
        }
        early
    }

    /// Rate-limited calls that were retried, and how many of those came no sooner than allowed.
    pub fn limit_retries(&self) -> usize {
        let served = self.served();
        served
            .iter()
            .enumerate()
            .filter(|(i, r)| {
                r.not_before.is_some() && served[i + 1..].iter().any(|s| s.method == r.method && s.uri == r.uri)
            })
            .count()
    }

    /// The fault for the call arriving now, if any; records it.
    fn draw(&self, method: &str, uri: &str) -> (Option<Fault>, usize) {
        let mut state = self.inner.state.lock().unwrap();
        let roll = next(&mut state.rng);
        let hurt = !state.paused && self.inner.share > 0 && (roll % 1_000_000) < u64::from(self.inner.share);
        let mut fault = None;
        if hurt {
            let kinds: Vec<Fault> = self
                .inner
                .kinds
                .iter()
                .copied()
                .filter(|k| !k.is_rate_limit() || one_changes_write(method, uri))
                .collect();
            if !kinds.is_empty() {
                fault = Some(kinds[(next(&mut state.rng) % kinds.len() as u64) as usize]);
            }
        }
        let served = Served { at: Instant::now(), method: method.into(), uri: uri.into(), fault, not_before: None };
        state.served.push(served);
        (fault, state.served.len() - 1)
    }

    fn allow_after(&self, index: usize, not_before: Instant) {
        self.inner.state.lock().unwrap().served[index].not_before = Some(not_before);
    }

    fn coin(&self) -> bool {
        next(&mut self.inner.state.lock().unwrap().rng).is_multiple_of(2)
    }

    /// Serves `app` on `listener` through the faults, each connection on a task of its own, as
    /// `axum::serve` does (which serves it when there is nothing to inject).
    pub async fn serve(self, listener: tokio::net::TcpListener, app: Router, flavor: Flavor) {
        if self.inner.share == 0 && self.inner.latency.is_zero() {
            // Nothing to do between: served exactly as before faults existed.
            return axum::serve(listener, app).await.unwrap();
        }
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            let (faults, app) = (self.clone(), TowerToHyperService::new(app.clone()));
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                    let (faults, app) = (faults.clone(), app.clone());
                    async move { faults.answer(&app, request, flavor).await }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .keep_alive(true)
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    }

    /// The answer to one call; an error drops the connection without one.
    async fn answer(
        &self,
        app: &TowerToHyperService<Router>,
        request: Request<Incoming>,
        flavor: Flavor,
    ) -> Result<Response<Body>, Dropped> {
        let method = request.method().to_string();
        let uri = request.uri().path_and_query().map_or_else(|| request.uri().path().to_string(), |p| p.to_string());
        let (fault, index) = self.draw(&method, &uri);
        if !self.inner.latency.is_zero() {
            tokio::time::sleep(self.inner.latency).await;
        }
        let run = |request| async move {
            let result: Result<Response<Body>, Infallible> = app.call(request).await;
            result.unwrap_or_else(|never| match never {})
        };
        let Some(fault) = fault else { return Ok(run(request).await) };
        match fault {
            Fault::ServerError => Ok(error(flavor)),
            Fault::Reset => Err(Dropped),
            Fault::Timeout => {
                let answer = run(request).await;
                tokio::time::sleep(self.inner.hold).await;
                Ok(answer)
            }
            Fault::AppliedThenError => {
                let _ = run(request).await;
                Ok(error(flavor))
            }
            Fault::SecondaryLimit => {
                self.allow_after(index, Instant::now() + Duration::from_secs(1));
                let status = match flavor {
                    Flavor::GitHub if self.coin() => StatusCode::FORBIDDEN,
                    _ => StatusCode::TOO_MANY_REQUESTS,
                };
                let message = match flavor {
                    Flavor::GitHub => {
                        "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."
                    }
                    Flavor::GitLab => "Retry later",
                };
                let mut headers = vec![("retry-after", "1".to_string())];
                if flavor == Flavor::GitHub {
                    headers.push(("x-ratelimit-remaining", "4000".into()));
                    headers.push(("x-ratelimit-reset", (unix_now().as_secs() + 3600).to_string()));
                }
                Ok(answer(status, &headers, message))
            }
            Fault::PrimaryLimit => {
                // Two seconds from the next whole one: the limit resets at a second's start.
                let reset = unix_now().as_secs() + 2;
                let until = Duration::from_secs(reset).saturating_sub(unix_now());
                self.allow_after(index, Instant::now() + until);
                Ok(match flavor {
                    Flavor::GitHub => answer(
                        StatusCode::FORBIDDEN,
                        &[
                            ("x-ratelimit-limit", "5000".into()),
                            ("x-ratelimit-remaining", "0".into()),
                            ("x-ratelimit-reset", reset.to_string()),
                        ],
                        "API rate limit exceeded for user ID 1.",
                    ),
                    Flavor::GitLab => answer(
                        StatusCode::TOO_MANY_REQUESTS,
                        &[
                            ("ratelimit-limit", "2000".into()),
                            ("ratelimit-name", "throttle_authenticated_api".into()),
                            ("ratelimit-observed", "2001".into()),
                            ("ratelimit-remaining", "0".into()),
                            ("ratelimit-reset", reset.to_string()),
                        ],
                        "Retry later",
                    ),
                })
            }
        }
    }
}

/// The connection is dropped without an answer.
#[derive(Debug)]
struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by the fault layer")
    }
}

impl std::error::Error for Dropped {}

fn error(flavor: Flavor) -> Response<Body> {
    match flavor {
        Flavor::GitHub => answer(StatusCode::BAD_GATEWAY, &[], "Server Error"),
        Flavor::GitLab => answer(StatusCode::INTERNAL_SERVER_ERROR, &[], "500 Internal Server Error"),
    }
}

fn answer(status: StatusCode, headers: &[(&str, String)], message: &str) -> Response<Body> {
    let mut response = Response::builder().status(status).header("content-type", "application/json");
    for (name, value) in headers {
        response = response.header(*name, value);
    }
    response.body(Body::from(serde_json::json!({ "message": message }).to_string())).unwrap()
}

fn unix_now() -> Duration {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap()
}

/// A write about one change: a pull or merge request, an issue or a commit in its path. Only
/// that change's own jobs, which run one at a time, write there; a read of the same path may
/// come from another job (the merge-queue sweep reads each change a train carries), so the next
/// call on a read's path need not be its retry.
fn one_changes_write(method: &str, uri: &str) -> bool {
    let path = uri.split('?').next().unwrap_or_default();
    is_write(method)
        && ["/pulls/", "/issues/", "/merge_requests/", "/statuses/", "/commits/"].iter().any(|p| path.contains(p))
}

fn is_write(method: &str) -> bool {
    method != "GET" && method != "HEAD"
}

/// splitmix64: small, seedable, good enough to spread faults.
fn next(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
