//! The page's session cookie: `v1.<expiry ms>.<mac>`, where the mac is HMAC-SHA256 keyed by
//! the token the user logged in with, over the version and expiry. The cookie carries no
//! token, so a stolen cookie dies at its expiry and a rotated token ends every session made
//! with the old one.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::{Choice, ConditionallySelectable, ConstantTimeEq};

use crate::store::Millis;

pub const COOKIE: &str = "hotfix_lane_session";
/// How long a login lasts: one on-call shift.
pub const LIFETIME_MS: Millis = 12 * 3600 * 1000;

/// The tokens that may log in: the admin token and the read-only dashboard token.
pub struct Keys {
    tokens: Vec<Key>,
}

struct Key {
    token: Vec<u8>,
    digest: [u8; 32],
}

impl Keys {
    /// `None` when no token is configured: the page is off.
    pub fn new<'a>(tokens: impl IntoIterator<Item = &'a str>) -> Option<Keys> {
        let tokens: Vec<Key> = tokens
            .into_iter()
            .filter(|t| !t.is_empty())
            .map(|t| Key { token: t.as_bytes().to_vec(), digest: Sha256::digest(t.as_bytes()).into() })
            .collect();
        (!tokens.is_empty()).then_some(Keys { tokens })
    }

    /// The configured token equal to `given`, compared by digest in constant time; every
    /// token is compared, so how long it takes tells neither which one matched nor how long
    /// either is.
    fn matching(&self, given: &str) -> Option<&Key> {
        let digest: [u8; 32] = Sha256::digest(given.as_bytes()).into();
        let mut found = u32::MAX;
        for (i, key) in self.tokens.iter().enumerate() {
            found = u32::conditional_select(&found, &(i as u32), key.digest.ct_eq(&digest));
        }
        self.tokens.get(found as usize)
    }

    /// A cookie value for a login with `given` at `now`, or `None` when it is no token of ours.
    pub fn login(&self, given: &str, now: Millis) -> Option<String> {
        let key = self.matching(given)?;
        let expiry = now + LIFETIME_MS;
        Some(format!("v1.{expiry}.{}", hex::encode(mac(&key.token, expiry))))
    }

    /// Whether `value` is a cookie made by [`Keys::login`] with one of the configured tokens
    /// and not expired at `now`.
    pub fn verify(&self, value: &str, now: Millis) -> bool {
        let mut parts = value.split('.');
        let (Some("v1"), Some(expiry), Some(given), None) = (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return false;
        };
        let (Ok(expiry), Ok(given)) = (expiry.parse::<Millis>(), hex::decode(given)) else { return false };
        if given.len() != 32 || expiry <= now {
            return false;
        }
        let mut ok = Choice::from(0);
        for key in &self.tokens {
            ok |= mac(&key.token, expiry).ct_eq(given.as_slice());
        }
        ok.into()
    }
}

fn mac(token: &[u8], expiry: Millis) -> [u8; 32] {
    let mut m = Hmac::<Sha256>::new_from_slice(token).expect("HMAC takes a key of any length");
    m.update(format!("v1.{expiry}").as_bytes());
    m.finalize().into_bytes().into()
}

/// The session cookie's value among a request's `Cookie` headers.
pub fn from_headers(headers: &http::HeaderMap) -> Option<&str> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Millis = 1_795_699_440_000;

    fn keys() -> Keys {
        Keys::new(["admin-token", "dashboard-token"]).unwrap()
    }

    #[test]
    fn a_cookie_from_either_token_is_valid_until_it_expires() {
        for token in ["admin-token", "dashboard-token"] {
            let cookie = keys().login(token, NOW).unwrap();
            assert!(!cookie.contains(token), "the cookie carries no token");
            assert!(keys().verify(&cookie, NOW));
            assert!(keys().verify(&cookie, NOW + LIFETIME_MS - 1));
            assert!(!keys().verify(&cookie, NOW + LIFETIME_MS), "expired");
        }
    }

    #[test]
    fn a_wrong_token_gets_no_cookie() {
        assert_eq!(keys().login("admin-tokeN", NOW), None);
        assert_eq!(keys().login("", NOW), None);
        assert!(Keys::new([""]).is_none(), "an empty token turns nothing on");
    }

    #[test]
    fn a_tampered_cookie_is_refused() {
        let cookie = keys().login("admin-token", NOW).unwrap();
        let (head, mac) = cookie.rsplit_once('.').unwrap();
        // A later expiry with the old mac.
        let later = format!("v1.{}.{mac}", NOW + 10 * LIFETIME_MS);
        assert!(!keys().verify(&later, NOW));
        // One flipped nibble of the mac.
        let flipped = format!("{head}.{}{}", if mac.starts_with('0') { '1' } else { '0' }, &mac[1..]);
        assert!(!keys().verify(&flipped, NOW));
        for junk in ["", "v1", "v1..", "v2.1.00", &format!("{cookie}.x"), &format!("{head}.{}", &mac[..62])] {
            assert!(!keys().verify(junk, NOW), "{junk:?}");
        }
    }

    #[test]
    fn a_cookie_made_with_another_token_is_refused() {
        let other = Keys::new(["some-other-token"]).unwrap().login("some-other-token", NOW).unwrap();
        assert!(!keys().verify(&other, NOW));
        // And one made with a token since rotated out.
        let old = Keys::new(["old-admin-token"]).unwrap().login("old-admin-token", NOW).unwrap();
        assert!(!keys().verify(&old, NOW));
    }

    #[test]
    fn the_cookie_is_found_among_others() {
        let mut headers = http::HeaderMap::new();
        headers.append(http::header::COOKIE, "a=1; hotfix_lane_session=v1.2.ab; b=2".parse().unwrap());
        assert_eq!(from_headers(&headers), Some("v1.2.ab"));
    }
}
