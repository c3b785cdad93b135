//! The pure core: events, policy and the lane's decisions. No I/O, no clocks, no forge types.

pub mod approval;
pub mod audit;
pub mod backport;
pub mod command;
pub mod comment;
pub mod conventions;
pub mod effect;
pub mod event;
pub mod grant;
pub mod incident;
pub mod job;
pub mod key;
pub mod lifecycle;
pub mod lineage;
pub mod markdown;
pub mod membership;
pub mod policy;
pub mod postmortem;
pub mod reminder;
pub mod report;
pub mod smoke;
pub mod step;
pub mod track;
