//! GraphQL, at the endpoint the REST base implies: `<base>/graphql` on github.com (and the test
//! suite's fake), `https://HOST/api/graphql` beside GitHub Enterprise Server's `/api/v3`.

use super::{classify, GitHub};
use crate::forge::ForgeError;

/// Where GraphQL lives when it is not `<REST base>/graphql`: GitHub Enterprise Server's REST
/// base is `https://HOST/api/v3`, its GraphQL endpoint `https://HOST/api/graphql`.
pub fn graphql_root(api_url: &str) -> Option<String> {
    let base = api_url.trim_end_matches('/');
    base.strip_suffix("/api/v3").map(|host| format!("{host}/api"))
}

impl GitHub {
    /// A GraphQL query or mutation, at the endpoint the API base implies.
    pub(super) async fn graphql<R: serde::de::DeserializeOwned>(
        &self,
        payload: &serde_json::Value,
    ) -> Result<R, ForgeError> {
        let Some(root) = &self.graphql else { return self.client.graphql(payload).await.map_err(classify) };
        let token = match &self.token {
            Some(token) => token.clone(),
            None => {
                use octocrab::secrecy::ExposeSecret;
                self.client.installation_token().await.map_err(classify)?.expose_secret().to_string()
            }
        };
        root.user_access_token(token).map_err(classify)?.graphql(payload).await.map_err(classify)
    }
}

#[cfg(test)]
mod tests {
    use super::graphql_root;

    #[test]
    fn github_enterprise_serves_graphql_beside_its_rest_base() {
        assert_eq!(graphql_root("https://github.acme.com/api/v3"), Some("https://github.acme.com/api".into()));
        assert_eq!(graphql_root("https://github.acme.com/api/v3/"), Some("https://github.acme.com/api".into()));
        assert_eq!(graphql_root("https://api.github.com"), None, "github.com: GraphQL under the REST base");
        assert_eq!(graphql_root("http://127.0.0.1:8080"), None);
    }
}
