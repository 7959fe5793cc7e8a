//! Access tokens: JWT, HS256 only.
//!
//! The algorithm is pinned: a token whose header names any other algorithm (`none`
//! included) is refused before its signature is looked at. `typ` must be `JWT`,
//! `iss` must be ours, `exp` and `nbf` are enforced with a small leeway, and `sub`,
//! `role`, `iat` and `exp` must all be present.
//!
//! # Checked once per worker
//!
//! Checking a token (two base64 decodes, two JSON parses, an HMAC) was about a
//! tenth of an HTTP worker's time per checkout, and a client sends the same token
//! with every request until it expires. So each worker thread remembers the tokens
//! it has checked, by their exact text, with who they name and when they stop
//! being valid; a token seen again is only checked against the clock. Only tokens
//! that passed the full check are remembered, under the [`JwtKeys`] that checked
//! them (a process can hold several, as the tests do), and at most
//! [`JWT_VERIFIED_CACHE_ENTRIES`] per thread. Access tokens are not revocable
//! (they are short-lived; refresh tokens are the revocable part), so remembering
//! one changes no answer.

use std::cell::RefCell;
use std::collections::HashMap;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use orderflow_actors::domain::{Role, UserId};
use orderflow_actors::limits::{JWT_LEEWAY_SECS, JWT_SECRET_BYTES_MIN, JWT_VERIFIED_CACHE_ENTRIES};

pub const ISSUER: &str = "orderflow";
/// File in the data directory that keeps a generated secret across restarts.
pub const SECRET_FILE_NAME: &str = "jwt-secret";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub role: String,
    pub iat: u64,
    pub nbf: u64,
    pub exp: u64,
    pub iss: String,
}

/// Who a valid token says the caller is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity {
    pub user: UserId,
    pub role: Role,
}

#[derive(Clone)]
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ttl_secs: u64,
    /// Which keys these are, for the per-thread memory of checked tokens (clones
    /// share it: they hold the same secret).
    id: u64,
}

/// A token that passed the full check: who it names and its validity window.
#[derive(Debug, Clone, Copy)]
struct Checked {
    /// The [`JwtKeys::id`] that checked it.
    keys: u64,
    identity: Identity,
    nbf: u64,
    exp: u64,
}

impl Checked {
    /// The same clock rule as the full check: `exp` and `nbf`, each with the leeway.
    fn valid_at(&self, now: u64) -> bool {
        self.exp.saturating_add(JWT_LEEWAY_SECS) >= now
            && self.nbf <= now.saturating_add(JWT_LEEWAY_SECS)
    }
}

static NEXT_KEYS_ID: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// The tokens this thread has checked, by their text.
    static CHECKED: RefCell<HashMap<Box<str>, Checked>> = RefCell::new(HashMap::new());
}

/// Remembers `checked` for `token`, within the bound.
fn remember(token: &str, checked: Checked, now: u64) {
    CHECKED.with(|tokens| {
        let mut tokens = tokens.borrow_mut();
        if tokens.len() >= JWT_VERIFIED_CACHE_ENTRIES {
            tokens.retain(|_, c| c.valid_at(now));
            if tokens.len() >= JWT_VERIFIED_CACHE_ENTRIES {
                tokens.clear();
            }
        }
        tokens.insert(token.into(), checked);
    });
}

/// What this thread remembers of `token` as checked by the keys `id`.
fn recall(id: u64, token: &str) -> Option<Checked> {
    CHECKED.with(|tokens| tokens.borrow().get(token).copied().filter(|c| c.keys == id))
}

impl std::fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtKeys")
            .field("ttl_secs", &self.ttl_secs)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("ORDERFLOW_JWT_SECRET must be at least {JWT_SECRET_BYTES_MIN} bytes (got {0})")]
    TooShort(usize),
    #[error("cannot read or create the JWT secret file {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

/// The signing secret: from the environment if given (and long enough), else the
/// one kept in the data directory, generated on first start with mode 0600.
/// A secret given by the operator, if it is long enough.
pub fn check_secret(secret: &str) -> Result<Vec<u8>, SecretError> {
    if secret.len() < JWT_SECRET_BYTES_MIN {
        return Err(SecretError::TooShort(secret.len()));
    }
    Ok(secret.as_bytes().to_vec())
}

pub fn load_secret(from_env: Option<&str>, data_dir: &Path) -> Result<Vec<u8>, SecretError> {
    if let Some(secret) = from_env {
        return check_secret(secret);
    }
    let path = data_dir.join(SECRET_FILE_NAME);
    let io = |source| SecretError::Io {
        path: path.display().to_string(),
        source,
    };
    match std::fs::read(&path) {
        Ok(bytes) if bytes.len() >= JWT_SECRET_BYTES_MIN => return Ok(bytes),
        Ok(bytes) => return Err(SecretError::TooShort(bytes.len())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(e)),
    }
    let secret: [u8; 64] = rand::random();
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(io)?;
    file.write_all(&secret).map_err(io)?;
    file.sync_all().map_err(io)?;
    Ok(secret.to_vec())
}

impl JwtKeys {
    pub fn new(secret: &[u8], ttl_secs: u64) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "iss", "sub", "nbf"]);
        validation.validate_nbf = true;
        validation.leeway = JWT_LEEWAY_SECS;
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            ttl_secs,
            id: NEXT_KEYS_ID.fetch_add(1, Ordering::Relaxed),
        }
    }

    pub fn ttl_secs(&self) -> u64 {
        self.ttl_secs
    }

    pub fn issue(&self, user: UserId, role: Role) -> String {
        let now = jsonwebtoken::get_current_timestamp();
        let claims = Claims {
            sub: user.0.to_string(),
            role: role.as_str().to_owned(),
            iat: now,
            nbf: now,
            exp: now + self.ttl_secs,
            iss: ISSUER.to_owned(),
        };
        let mut header = Header::new(Algorithm::HS256);
        header.typ = Some("JWT".to_owned());
        // Signing with an HMAC key of any length cannot fail.
        jsonwebtoken::encode(&header, &claims, &self.encoding).expect("HS256 signing succeeds")
    }

    /// Checks a token; `None` for anything not issued by us and still valid.
    pub fn verify(&self, token: &str) -> Option<Identity> {
        self.verify_at(token, jsonwebtoken::get_current_timestamp())
    }

    /// [`Self::verify`] at the clock reading `now` (seconds since the epoch).
    fn verify_at(&self, token: &str, now: u64) -> Option<Identity> {
        if let Some(checked) = recall(self.id, token) {
            return checked.valid_at(now).then_some(checked.identity);
        }
        let checked = self.check(token)?;
        remember(token, checked, now);
        checked.valid_at(now).then_some(checked.identity)
    }

    /// [`Self::verify`] without the per-thread memory: what a token's first request
    /// on a worker pays (for the `auth` bench).
    pub fn verify_uncached(&self, token: &str) -> Option<Identity> {
        self.check(token).map(|checked| checked.identity)
    }

    /// The full check: header, signature, claims and clock.
    fn check(&self, token: &str) -> Option<Checked> {
        let header = jsonwebtoken::decode_header(token).ok()?;
        if header.alg != Algorithm::HS256 || header.typ.as_deref() != Some("JWT") {
            return None;
        }
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation).ok()?;
        let user = UserId(data.claims.sub.parse().ok()?);
        let role = Role::parse(&data.claims.role)?;
        Some(Checked {
            keys: self.id,
            identity: Identity { user, role },
            nbf: data.claims.nbf,
            exp: data.claims.exp,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn forge(header: &str, claims: &serde_json::Value, key: &[u8]) -> String {
        use jsonwebtoken::crypto::sign;
        let h = URL_SAFE_NO_PAD.encode(header);
        let c = URL_SAFE_NO_PAD.encode(claims.to_string());
        let msg = format!("{h}.{c}");
        let sig = sign(
            msg.as_bytes(),
            &EncodingKey::from_secret(key),
            Algorithm::HS256,
        )
        .unwrap();
        format!("{msg}.{sig}")
    }

    fn claims(now: u64) -> serde_json::Value {
        serde_json::json!({"sub":"7","role":"customer","iat":now,"nbf":now,"exp":now+60,"iss":ISSUER})
    }

    #[test]
    fn issues_and_verifies() {
        let keys = JwtKeys::new(SECRET, 60);
        let token = keys.issue(UserId(7), Role::Admin);
        assert_eq!(
            keys.verify(&token),
            Some(Identity {
                user: UserId(7),
                role: Role::Admin
            })
        );
    }

    #[test]
    fn refuses_every_forgery() {
        let keys = JwtKeys::new(SECRET, 60);
        let now = jsonwebtoken::get_current_timestamp();
        let hs = r#"{"alg":"HS256","typ":"JWT"}"#;
        assert!(
            keys.verify(&forge(hs, &claims(now), SECRET)).is_some(),
            "control"
        );
        // alg none, unsigned.
        let none = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#),
            URL_SAFE_NO_PAD.encode(claims(now).to_string())
        );
        assert_eq!(keys.verify(&none), None);
        // Another key.
        assert_eq!(
            keys.verify(&forge(
                hs,
                &claims(now),
                b"another-key-another-key-another!"
            )),
            None
        );
        // Role edited after signing.
        let token = keys.issue(UserId(7), Role::Customer);
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        let mut c = claims(now);
        c["role"] = "admin".into();
        parts[1] = URL_SAFE_NO_PAD.encode(c.to_string());
        assert_eq!(keys.verify(&parts.join(".")), None);
        // Expired, not yet valid, wrong issuer, missing typ, other HMAC algorithm.
        let mut expired = claims(now - 600);
        expired["exp"] = (now - 300).into();
        assert_eq!(keys.verify(&forge(hs, &expired, SECRET)), None);
        let mut future = claims(now);
        future["nbf"] = (now + 600).into();
        assert_eq!(keys.verify(&forge(hs, &future, SECRET)), None);
        let mut issuer = claims(now);
        issuer["iss"] = "someone-else".into();
        assert_eq!(keys.verify(&forge(hs, &issuer, SECRET)), None);
        assert_eq!(
            keys.verify(&forge(r#"{"alg":"HS256"}"#, &claims(now), SECRET)),
            None
        );
        // Garbage.
        for junk in ["", "a.b.c", "....", "x", "eyJ.eyJ.sig"] {
            assert_eq!(keys.verify(junk), None);
        }
    }

    #[test]
    fn a_remembered_token_is_still_held_to_the_clock() {
        let keys = JwtKeys::new(SECRET, 60);
        let token = keys.issue(UserId(7), Role::Customer);
        let now = jsonwebtoken::get_current_timestamp();
        let who = Some(Identity {
            user: UserId(7),
            role: Role::Customer,
        });
        assert_eq!(keys.verify_at(&token, now), who);
        assert!(recall(keys.id, &token).is_some(), "remembered");
        // Within the leeway after `exp`, then past it; before `nbf` beyond the leeway.
        assert_eq!(keys.verify_at(&token, now + 60 + JWT_LEEWAY_SECS - 1), who);
        assert_eq!(keys.verify_at(&token, now + 60 + JWT_LEEWAY_SECS + 2), None);
        assert_eq!(keys.verify_at(&token, now - JWT_LEEWAY_SECS - 2), None);
        assert_eq!(keys.verify_at(&token, now), who, "still remembered");
    }

    #[test]
    fn a_token_is_remembered_only_under_the_keys_that_checked_it() {
        let ours = JwtKeys::new(SECRET, 60);
        let theirs = JwtKeys::new(b"another-key-another-key-another!", 60);
        let token = ours.issue(UserId(7), Role::Admin);
        assert!(ours.verify(&token).is_some());
        assert!(
            ours.clone().verify(&token).is_some(),
            "a clone holds the same secret"
        );
        assert_eq!(theirs.verify(&token), None);
        // A token that failed is not remembered either.
        let forged = forge(
            r#"{"alg":"HS256","typ":"JWT"}"#,
            &claims(jsonwebtoken::get_current_timestamp()),
            b"another-key-another-key-another!",
        );
        assert_eq!(ours.verify(&forged), None);
        assert!(recall(ours.id, &forged).is_none());
        assert!(theirs.verify(&forged).is_some());
        assert_eq!(ours.verify(&forged), None, "still refused by ours");
    }

    #[test]
    fn the_memory_of_checked_tokens_is_bounded() {
        let keys = JwtKeys::new(SECRET, 60);
        for user in 0..(JWT_VERIFIED_CACHE_ENTRIES as u64 + 100) {
            let token = keys.issue(UserId(user), Role::Customer);
            assert!(keys.verify(&token).is_some());
            let held = CHECKED.with(|tokens| tokens.borrow().len());
            assert!(held <= JWT_VERIFIED_CACHE_ENTRIES, "{held} remembered");
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 512, failure_persistence: None, ..Default::default() })]

        /// Anything at all as a bearer token: no panic, no identity.
        #[test]
        fn arbitrary_tokens_never_verify(token in "\\PC{0,300}", dots in "[A-Za-z0-9_.-]{0,200}") {
            let keys = JwtKeys::new(SECRET, 60);
            proptest::prop_assert_eq!(keys.verify(&token), None);
            proptest::prop_assert_eq!(keys.verify(&dots), None);
        }

        /// A real token with one character changed never turns into someone else
        /// (base64 padding bits can leave the bytes, and so the identity, unchanged).
        #[test]
        fn a_changed_character_never_changes_who_you_are(position in 0usize..400, replacement in proptest::char::range('0', 'z')) {
            let keys = JwtKeys::new(SECRET, 60);
            let token = keys.issue(UserId(7), Role::Customer);
            let mut chars: Vec<char> = token.chars().collect();
            let i = position % chars.len();
            chars[i] = replacement;
            let mutated: String = chars.into_iter().collect();
            if let Some(identity) = keys.verify(&mutated) {
                proptest::prop_assert_eq!(identity, Identity { user: UserId(7), role: Role::Customer });
            }
        }
    }

    #[test]
    fn secret_rules() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            load_secret(Some("short"), dir.path()),
            Err(SecretError::TooShort(5))
        ));
        let first = load_secret(None, dir.path()).unwrap();
        let second = load_secret(None, dir.path()).unwrap();
        assert_eq!(first, second, "kept across restarts");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join(SECRET_FILE_NAME))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
