//! The pure core: events, policy and the lane's decisions. No I/O, no clocks, no forge types.

pub mod backport;
pub mod command;
pub mod comment;
pub mod event;
pub mod grant;
pub mod incident;
pub mod markdown;
pub mod membership;
pub mod policy;
pub mod postmortem;
pub mod report;
pub mod smoke;
pub mod track;
