//! hotfix-lane: the emergency lane for pull requests.
//!
//! `lane` decides (pure), `ingress` takes webhooks in, `store` keeps everything durable, `jobs`
//! runs the work, `dispatch` connects the runner to the lane, `server` wires it all up,
//! `web` is the hotfix page.

pub mod api;
pub mod audit_view;
pub mod backport;
pub mod ci;
pub mod cli;
pub mod clock;
pub mod dispatch;
pub mod doctor;
pub mod forge;
pub mod ingress;
pub mod jobs;
pub mod lane;
pub mod metrics;
pub mod report;
pub mod server;
pub mod store;
pub mod telemetry;
pub mod web;

/// Parsers and escapes of untrusted text that are private to their modules, reachable for the
/// fuzz targets in `fuzz/`. Not an API: nothing else should call these.
#[doc(hidden)]
pub mod fuzzing {
    pub use crate::ci::github::runner::escape_data as actions_escape_data;
    pub use crate::ci::gitlab::runner::escape_log as gitlab_escape_log;
    pub use crate::forge::gitlab::quick_actions::inert as gitlab_inert;
}
