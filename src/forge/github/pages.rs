//! Listings read to their end: GitHub serves at most 100 items a page and says in the `Link`
//! header where the other pages are. A first page alone would let anyone who can add items
//! (comments, events, files) push what the lane looks for out of its sight.

use octocrab::Page;
use serde::de::DeserializeOwned;

use super::GitHub;
use crate::forge::ForgeError;

/// A listing walked page by page: oldest first as GitHub lists, or newest first (from the last
/// page back, each page reversed) when the latest item decides.
pub(super) struct Pages {
    next: Option<String>,
    newest_first: bool,
    /// Newest first, the first page is read only to learn where the last one is.
    started: bool,
}

impl Pages {
    /// `route` asks for 100 items a page.
    pub(super) fn oldest_first(route: String) -> Pages {
        Pages { next: Some(route), newest_first: false, started: false }
    }

    pub(super) fn newest_first(route: String) -> Pages {
        Pages { next: Some(route), newest_first: true, started: false }
    }

    /// The next page's items, in the walk's order; `None` past the end.
    pub(super) async fn next<T: DeserializeOwned>(&mut self, gh: &GitHub) -> Result<Option<Vec<T>>, ForgeError> {
        while let Some(route) = self.next.take() {
            let Some(page) = gh.get::<Page<T>>(&route).await? else { return Ok(None) };
            let first = !std::mem::replace(&mut self.started, true);
            if !self.newest_first {
                self.next = route_of(page.next.as_ref());
                return Ok(Some(page.items));
            }
            if first && page.last.is_some() {
                self.next = route_of(page.last.as_ref());
                continue;
            }
            self.next = route_of(page.prev.as_ref());
            return Ok(Some(page.items.into_iter().rev().collect()));
        }
        Ok(None)
    }

    /// Every item, in the walk's order.
    pub(super) async fn all<T: DeserializeOwned>(mut self, gh: &GitHub) -> Result<Vec<T>, ForgeError> {
        let mut all = Vec::new();
        while let Some(items) = self.next(gh).await? {
            all.extend(items);
        }
        Ok(all)
    }
}

/// A `Link` target as a route on the configured API: the walk never leaves it for another host.
fn route_of(link: Option<&axum::http::Uri>) -> Option<String> {
    link.and_then(|uri| uri.path_and_query()).map(|p| p.as_str().to_string())
}
