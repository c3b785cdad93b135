//! Who the client is on GitHub, asked once per process: what the lane wrote is what this login
//! wrote, and nothing else carries the lane's authority.

use std::sync::Arc;

use octocrab::Octocrab;
use serde::Deserialize;
use tokio::sync::OnceCell;

use super::authored::Login;
use super::{classify, status, GitHub};
use crate::forge::ForgeError;

/// The login, learnt on first use and shared by every clone of the clients it belongs to.
#[derive(Clone)]
pub struct Identity {
    source: Source,
    login: Arc<OnceCell<String>>,
}

#[derive(Clone)]
enum Source {
    /// A token: its user; or, for an installation token (such as Actions' `GITHUB_TOKEN`),
    /// which has no user, the bot GraphQL's `viewer` names.
    Token,
    /// An App: its bot, `<slug>[bot]`, whichever installation acts; the slug is asked with the
    /// App's own JWT.
    App(Octocrab),
}

#[derive(Deserialize)]
struct Viewer {
    viewer: Login,
}

#[derive(Deserialize)]
struct App {
    slug: String,
}

impl Identity {
    pub(super) fn token() -> Identity {
        Identity { source: Source::Token, login: Arc::default() }
    }

    /// `root` authenticates as the App itself.
    pub(super) fn app(root: Octocrab) -> Identity {
        Identity { source: Source::App(root), login: Arc::default() }
    }

    /// `gh` is the token's client (unused for an App).
    pub(super) async fn login(&self, gh: &GitHub) -> Result<String, ForgeError> {
        let login = self.login.get_or_try_init(|| self.ask(gh)).await?;
        Ok(login.clone())
    }

    async fn ask(&self, gh: &GitHub) -> Result<String, ForgeError> {
        match &self.source {
            Source::App(root) => {
                let app: App = root.get("/app", None::<&()>).await.map_err(classify)?;
                Ok(format!("{}[bot]", app.slug))
            }
            Source::Token => match gh.client.get::<Login, _, ()>("/user", None).await {
                Ok(user) => Ok(user.login),
                Err(err) if status(&err) == Some(403) => {
                    let query = serde_json::json!({ "query": "query { viewer { login } }" });
                    let found: Viewer = gh.graphql(&query).await?;
                    Ok(found.viewer.login)
                }
                Err(err) => Err(classify(err)),
            },
        }
    }
}
