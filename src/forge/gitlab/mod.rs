//! GitLab: the webhook payloads and the REST v4 client behind [`crate::forge::Forge`].

pub mod payload;
pub mod transport;
