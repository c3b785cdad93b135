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
