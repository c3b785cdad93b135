//! `X-Hub-Signature-256` verification: HMAC-SHA256 of the raw body, compared in constant time.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// One or more webhook secrets; several at once let a secret be rotated without downtime.
#[derive(Clone)]
pub struct Secrets(Vec<Vec<u8>>);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignatureError {
    #[error("missing X-Hub-Signature-256 header")]
    Missing,
    #[error("X-Hub-Signature-256 must be `sha256=` followed by 64 lowercase hex digits")]
    Malformed,
    #[error("signature does not match the body")]
    Mismatch,
}

impl Secrets {
    /// Fails on an empty list or an empty secret: either would accept forged deliveries.
    pub fn new<I, S>(secrets: I) -> Result<Self, &'static str>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<[u8]>,
    {
        let secrets: Vec<Vec<u8>> = secrets.into_iter().map(|s| s.as_ref().to_vec()).collect();
        if secrets.is_empty() || secrets.iter().any(|s| s.is_empty()) {
            return Err("a webhook secret must not be empty");
        }
        Ok(Secrets(secrets))
    }

    /// Whether `signature` is the HMAC of `body` under any configured secret.
    pub fn verify(&self, signature: &Signature, body: &[u8]) -> Result<(), SignatureError> {
        // Every secret is tried, so timing does not reveal which one (if any) matched.
        let mut matched = false;
        for secret in &self.0 {
            let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
            mac.update(body);
            matched |= mac.verify_slice(&signature.0).is_ok();
        }
        if matched {
            Ok(())
        } else {
            Err(SignatureError::Mismatch)
        }
    }
}

/// A well-formed `X-Hub-Signature-256`: the digest it claims. Parsed before the body is read,
/// so a request that cannot be a signed delivery is refused without reading it.
pub struct Signature([u8; 32]);

impl Signature {
    pub fn parse(header: Option<&[u8]>) -> Result<Signature, SignatureError> {
        let header = header.ok_or(SignatureError::Missing)?;
        let hex_digits = header.strip_prefix(b"sha256=").ok_or(SignatureError::Malformed)?;
        // GitHub always sends lowercase; anything else is not a GitHub signature.
        if hex_digits.len() != 64 || !hex_digits.iter().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b)) {
            return Err(SignatureError::Malformed);
        }
        let mut digest = [0u8; 32];
        hex::decode_to_slice(hex_digits, &mut digest).map_err(|_| SignatureError::Malformed)?;
        Ok(Signature(digest))
    }
}

/// The header value GitHub would send for `body` signed with `secret`.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_any_configured_secret_and_refuses_everything_else() {
        let secrets = Secrets::new(["old", "new"]).unwrap();
        let body = b"{}";
        let verify = |header: &str, body: &[u8]| secrets.verify(&Signature::parse(Some(header.as_bytes()))?, body);
        assert_eq!(verify(&sign(b"old", body), body), Ok(()));
        assert_eq!(verify(&sign(b"new", body), body), Ok(()));
        assert_eq!(verify(&sign(b"other", body), body), Err(SignatureError::Mismatch));
        assert_eq!(verify(&sign(b"new", b"[]"), body), Err(SignatureError::Mismatch));
        assert_eq!(Signature::parse(None).err(), Some(SignatureError::Missing));
        let upper = sign(b"new", body).to_uppercase().replace("SHA256=", "sha256=");
        assert_eq!(verify(&upper, body), Err(SignatureError::Malformed));
        assert_eq!(verify("sha256=abcd", body), Err(SignatureError::Malformed));
    }

    #[test]
    fn empty_secrets_are_refused() {
        assert!(Secrets::new(Vec::<String>::new()).is_err());
        assert!(Secrets::new(["ok", ""]).is_err());
    }
}
