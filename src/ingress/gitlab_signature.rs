//! How GitLab deliveries are authenticated: a signing token's Standard Webhooks signature
//! (`webhook-id`, `webhook-timestamp`, `webhook-signature`), or the plain `X-Gitlab-Token`.
//! Every comparison is constant time and tries every configured key.

use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::{Choice, ConstantTimeEq};

/// How far `webhook-timestamp` may be from this server's clock, either way (Standard Webhooks'
/// tolerance): a captured signed delivery cannot be replayed after that.
pub const TIMESTAMP_TOLERANCE_SECS: i64 = 5 * 60;

/// At most this many `v1,…` values are read from one `webhook-signature` header.
const MAX_SIGNATURES: usize = 16;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    #[error("missing X-Gitlab-Token header")]
    MissingToken,
    #[error("X-Gitlab-Token does not match any configured secret token")]
    WrongToken,
    #[error("missing {0} header: this server accepts only deliveries signed with a signing token")]
    MissingSignatureHeader(&'static str),
    #[error("webhook-timestamp must be the delivery's time in unix seconds")]
    MalformedTimestamp,
    #[error("webhook-timestamp is more than 5 minutes away from this server's clock (a replay, or a clock to fix)")]
    StaleTimestamp,
    #[error("webhook-signature must hold space-separated `v1,<base64 HMAC-SHA256>` values")]
    MalformedSignature,
    #[error("webhook-signature does not match the delivery under any configured signing token")]
    SignatureMismatch,
}

/// The configured secret tokens, kept only as SHA-256 digests: comparing digests takes the same
/// time whatever the length of the token sent.
#[derive(Clone)]
pub struct SecretTokens(Vec<[u8; 32]>);

impl SecretTokens {
    pub fn new(tokens: &[String]) -> Result<Self, String> {
        if tokens.iter().any(|t| t.is_empty()) {
            return Err("a GitLab secret token must not be empty".into());
        }
        Ok(SecretTokens(tokens.iter().map(|t| digest(t.as_bytes())).collect()))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether the `X-Gitlab-Token` value is one of the configured tokens.
    pub fn verify(&self, header: Option<&[u8]>) -> Result<(), AuthError> {
        let sent = digest(header.ok_or(AuthError::MissingToken)?);
        // Every token is compared, so timing does not tell which one (if any) matched.
        let matched = self.0.iter().fold(Choice::from(0), |acc, token| acc | token.ct_eq(&sent));
        if bool::from(matched) {
            Ok(())
        } else {
            Err(AuthError::WrongToken)
        }
    }
}

fn digest(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// The decoded keys of the configured signing tokens (`whsec_<base64>`).
#[derive(Clone)]
pub struct SigningKeys(Vec<Vec<u8>>);

impl SigningKeys {
    /// Fails on a token that is not base64 (after an optional `whsec_` prefix) or decodes to
    /// nothing: such a key would never verify, or would verify what anyone can sign.
    pub fn new(tokens: &[String]) -> Result<Self, String> {
        let keys = tokens
            .iter()
            .enumerate()
            .map(|(i, token)| {
                let encoded = token.strip_prefix("whsec_").unwrap_or(token);
                match base64::engine::general_purpose::STANDARD.decode(encoded) {
                    Ok(key) if !key.is_empty() => Ok(key),
                    Ok(_) => Err(format!("signing token #{} is empty", i + 1)),
                    // Never the token itself in the message: it is a secret.
                    Err(e) => Err(format!("signing token #{} is not `whsec_` followed by base64: {e}", i + 1)),
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(SigningKeys(keys))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether any of `signed`'s signatures is the HMAC of `{id}.{timestamp}.{body}` under any key.
    pub fn verify(&self, signed: &SignedHeaders, body: &[u8]) -> Result<(), AuthError> {
        let mut matched = Choice::from(0);
        for key in &self.0 {
            let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
            mac.update(signed.id.as_bytes());
            mac.update(b".");
            mac.update(signed.timestamp.to_string().as_bytes());
            mac.update(b".");
            mac.update(body);
            let expected = mac.finalize().into_bytes();
            for signature in &signed.signatures {
                matched |= expected.as_slice().ct_eq(signature.as_slice());
            }
        }
        if bool::from(matched) {
            Ok(())
        } else {
            Err(AuthError::SignatureMismatch)
        }
    }
}

/// The Standard Webhooks headers of one delivery, parsed and checked for freshness before the
/// body is read.
pub struct SignedHeaders {
    pub id: String,
    pub timestamp: i64,
    signatures: Vec<[u8; 32]>,
}

impl SignedHeaders {
    /// `now_secs` is this server's clock; a timestamp further than the tolerance from it is
    /// refused whichever way it is off.
    pub fn parse(
        id: Option<&str>,
        timestamp: Option<&[u8]>,
        signature: Option<&[u8]>,
        now_secs: i64,
    ) -> Result<SignedHeaders, AuthError> {
        let signature = signature.ok_or(AuthError::MissingSignatureHeader("webhook-signature"))?;
        let id = id.ok_or(AuthError::MissingSignatureHeader("webhook-id"))?;
        let timestamp = timestamp.ok_or(AuthError::MissingSignatureHeader("webhook-timestamp"))?;
        if timestamp.is_empty() || timestamp.len() > 12 || !timestamp.iter().all(u8::is_ascii_digit) {
            return Err(AuthError::MalformedTimestamp);
        }
        let timestamp: i64 =
            std::str::from_utf8(timestamp).ok().and_then(|t| t.parse().ok()).ok_or(AuthError::MalformedTimestamp)?;
        if (now_secs - timestamp).abs() > TIMESTAMP_TOLERANCE_SECS {
            return Err(AuthError::StaleTimestamp);
        }
        let signature = std::str::from_utf8(signature).map_err(|_| AuthError::MalformedSignature)?;
        let mut signatures = Vec::new();
        for value in signature.split_ascii_whitespace().take(MAX_SIGNATURES) {
            // Other versions (a future `v1a,…`) are skipped: one of the values may still be ours.
            let Some(encoded) = value.strip_prefix("v1,") else { continue };
            let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(encoded) else { continue };
            if let Ok(mac) = <[u8; 32]>::try_from(bytes.as_slice()) {
                signatures.push(mac);
            }
        }
        if signatures.is_empty() {
            return Err(AuthError::MalformedSignature);
        }
        Ok(SignedHeaders { id: id.to_string(), timestamp, signatures })
    }
}

/// The `webhook-signature` value GitLab would send for this delivery, signed with `token`
/// (`whsec_<base64>`).
pub fn sign(token: &str, id: &str, timestamp: i64, body: &[u8]) -> String {
    let key = base64::engine::general_purpose::STANDARD
        .decode(token.strip_prefix("whsec_").unwrap_or(token))
        .expect("a signing token is base64");
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("HMAC takes keys of any length");
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    format!("v1,{}", base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const NOW: i64 = 1_700_000_000;

    fn headers(id: &str, ts: i64, sig: &str) -> Result<SignedHeaders, AuthError> {
        SignedHeaders::parse(Some(id), Some(ts.to_string().as_bytes()), Some(sig.as_bytes()), NOW)
    }

    #[test]
    fn a_signature_verifies_under_its_key_only() {
        let keys = SigningKeys::new(&[KEY.to_string()]).unwrap();
        let body = br#"{"object_kind":"push"}"#;
        let good = sign(KEY, "msg_1", NOW, body);
        assert_eq!(keys.verify(&headers("msg_1", NOW, &good).unwrap(), body), Ok(()));
        assert_eq!(keys.verify(&headers("msg_1", NOW, &good).unwrap(), b"{}"), Err(AuthError::SignatureMismatch));
        // The id and timestamp are signed too.
        assert_eq!(keys.verify(&headers("msg_2", NOW, &good).unwrap(), body), Err(AuthError::SignatureMismatch));
        assert_eq!(keys.verify(&headers("msg_1", NOW - 1, &good).unwrap(), body), Err(AuthError::SignatureMismatch));
        let other = sign("whsec_dGhlIG90aGVyIGtleQ==", "msg_1", NOW, body);
        assert_eq!(keys.verify(&headers("msg_1", NOW, &other).unwrap(), body), Err(AuthError::SignatureMismatch));
        let both = format!("{other} {good}");
        assert_eq!(keys.verify(&headers("msg_1", NOW, &both).unwrap(), body), Ok(()));
    }

    #[test]
    fn the_standard_webhooks_example_verifies() {
        // The example of the Standard Webhooks specification's reference libraries.
        let keys = SigningKeys::new(&["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_string()]).unwrap();
        let body = br#"{"test": 2432232314}"#;
        let signed = SignedHeaders::parse(
            Some("msg_p5jXN8AQM9LWM0D4loKWxJek"),
            Some(b"1614265330"),
            Some(b"v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="),
            1614265330,
        )
        .unwrap();
        assert_eq!(keys.verify(&signed, body), Ok(()));
    }

    #[test]
    fn stale_future_and_malformed_headers_are_refused_before_the_body() {
        let sig = sign(KEY, "m", NOW, b"{}");
        assert!(headers("m", NOW - 300, &sig).is_ok());
        assert!(headers("m", NOW + 300, &sig).is_ok());
        assert_eq!(headers("m", NOW - 301, &sig).err(), Some(AuthError::StaleTimestamp));
        assert_eq!(headers("m", NOW + 301, &sig).err(), Some(AuthError::StaleTimestamp));
        assert_eq!(headers("m", NOW, "v2,abc").err(), Some(AuthError::MalformedSignature));
        assert_eq!(headers("m", NOW, "v1,AAAA").err(), Some(AuthError::MalformedSignature));
        let parse = |ts: &[u8]| SignedHeaders::parse(Some("m"), Some(ts), Some(sig.as_bytes()), NOW).err();
        assert_eq!(parse(b"-5"), Some(AuthError::MalformedTimestamp));
        assert_eq!(parse(b"1.5"), Some(AuthError::MalformedTimestamp));
        assert_eq!(
            SignedHeaders::parse(Some("m"), Some(b"1"), None, NOW).err(),
            Some(AuthError::MissingSignatureHeader("webhook-signature"))
        );
    }

    #[test]
    fn tokens_are_checked_and_bad_ones_refused_at_construction() {
        let tokens = SecretTokens::new(&["old".into(), "new".into()]).unwrap();
        assert_eq!(tokens.verify(Some(b"old")), Ok(()));
        assert_eq!(tokens.verify(Some(b"new")), Ok(()));
        assert_eq!(tokens.verify(Some(b"ne")), Err(AuthError::WrongToken));
        assert_eq!(tokens.verify(None), Err(AuthError::MissingToken));
        assert!(SecretTokens::new(&["".into()]).is_err());
        assert!(SigningKeys::new(&["whsec_not base64!".into()]).is_err());
        assert!(SigningKeys::new(&["whsec_".into()]).is_err());
        let err = SigningKeys::new(&["whsec_sekrit-but-invalid".into()]).err().unwrap();
        assert!(!err.contains("sekrit"), "{err}");
    }
}
