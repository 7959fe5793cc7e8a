//! Signing per the Standard Webhooks specification: `webhook-signature` is
//! `v1,` and the base64 HMAC-SHA256 of `{id}.{timestamp}.{body}` under each secret
//! that signs now, separated by spaces (so a receiver holding the old or the new
//! secret verifies during a rotation).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The prefix of a secret as shown: `whsec_` and the base64 of its 32 bytes.
pub const SECRET_PREFIX: &str = "whsec_";

pub fn show_secret(key: &[u8; 32]) -> String {
    format!("{SECRET_PREFIX}{}", STANDARD.encode(key))
}

/// The `webhook-signature` header's value.
pub fn signature(secrets: &[[u8; 32]], id: &str, timestamp: i64, body: &[u8]) -> String {
    secrets
        .iter()
        .map(|key| {
            let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
            mac.update(id.as_bytes());
            mac.update(b".");
            mac.update(timestamp.to_string().as_bytes());
            mac.update(b".");
            mac.update(body);
            format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(id: &str, ts: i64, sig: &str) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        h.insert("webhook-id", id.parse().unwrap());
        h.insert("webhook-timestamp", ts.to_string().parse().unwrap());
        h.insert("webhook-signature", sig.parse().unwrap());
        h
    }

    /// The Standard Webhooks reference library accepts our signatures, with either
    /// secret during a rotation, and refuses a changed body or another secret.
    #[test]
    fn the_reference_library_verifies_our_signatures() {
        let (old, new) = ([7u8; 32], [9u8; 32]);
        let body = br#"{"id":"evt_1","type":"order.placed"}"#;
        let ts = time::OffsetDateTime::now_utc().unix_timestamp();
        let sig = signature(&[new, old], "evt_1", ts, body);
        for key in [old, new] {
            let hook = standardwebhooks::Webhook::new(&show_secret(&key)).unwrap();
            hook.verify(body, &headers("evt_1", ts, &sig)).unwrap();
            assert!(hook.verify(b"{}", &headers("evt_1", ts, &sig)).is_err());
        }
        let other = standardwebhooks::Webhook::new(&show_secret(&[1u8; 32])).unwrap();
        assert!(other.verify(body, &headers("evt_1", ts, &sig)).is_err());
    }
}
