//! Which endpoint a notification is for. A row is bound, when its step is committed, to the
//! endpoint of the process that commits it; dispatchers only send the rows of their own
//! endpoint, so deployments that share a store never send each other's step ids.

use crate::config::redacted_url;
use sha2::{Digest, Sha256};
use std::fmt;
use url::Url;

/// An endpoint as the store keeps it: a fingerprint of the full URL (what claims match on) and
/// the URL with its secrets redacted (what people see).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Endpoint {
    fingerprint: String,
    shown: String,
}

impl Endpoint {
    /// The endpoint of `url`. The fingerprint covers every byte of the URL, secrets included,
    /// so two URLs that differ only in a token are two endpoints; it is a SHA-256, so the
    /// secrets cannot be read back from it.
    pub fn of(url: &Url) -> Self {
        let digest = Sha256::digest(url.as_str().as_bytes());
        Self {
            fingerprint: hex(&digest),
            shown: redacted_url(url),
        }
    }

    /// Rebuilds an endpoint read from the store.
    pub fn from_parts(fingerprint: String, shown: String) -> Self {
        Self { fingerprint, shown }
    }

    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// The URL with passwords and secret-looking query values replaced: safe to print.
    pub fn shown(&self) -> &str {
        &self.shown
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Endpoint({})", self.shown)
    }
}

fn hex(bytes: &[u8]) -> String {
    use fmt::Write as _;
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        // Writing to a String cannot fail.
        let _ = write!(out, "{byte:02x}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(url: &str) -> Endpoint {
        Endpoint::of(&Url::parse(url).unwrap())
    }

    #[test]
    fn the_fingerprint_tells_urls_apart_and_the_shown_url_hides_secrets() {
        let a = endpoint("https://hooks.example/step?token=s3cret-a");
        let b = endpoint("https://hooks.example/step?token=s3cret-b");
        assert_ne!(a.fingerprint(), b.fingerprint());
        assert_eq!(a.shown(), b.shown());
        assert_eq!(a.shown(), "https://hooks.example/step?token=REDACTED");
        assert_eq!(a.fingerprint().len(), 64);
        for shown in [format!("{a}"), format!("{a:?}"), a.fingerprint().to_owned()] {
            assert!(!shown.contains("s3cret"), "{shown}");
        }
    }

    #[test]
    fn the_same_url_is_the_same_endpoint() {
        assert_eq!(
            endpoint("http://127.0.0.1:8787/hooks"),
            endpoint("http://127.0.0.1:8787/hooks")
        );
    }
}
