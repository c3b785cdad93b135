//! GitLab: the webhook payloads and the REST v4 client behind [`crate::forge::Forge`].

pub mod api;
pub mod client;
pub mod payload;
pub(crate) mod quick_actions;
pub mod transport;

pub use client::GitLab;
