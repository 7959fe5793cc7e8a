//! Password hashing: argon2id with the OWASP parameters, off the event loop.
//!
//! Hashing takes tens of milliseconds of CPU by design, so it runs on actix's
//! blocking pool: neither the HTTP workers nor the actors' threads ever wait on it.

use std::sync::OnceLock;

use argon2::Argon2;
use argon2::password_hash::{
    PasswordHash, PasswordHasher, PasswordVerifier, SaltString, rand_core::OsRng,
};

use crate::error::ApiError;
use orderflow_actors::domain::Password;

/// Hashes on the blocking pool; returns a PHC string (`$argon2id$v=19$m=19456,t=2,p=1$…`).
pub async fn hash(password: Password) -> Result<String, ApiError> {
    actix_web::web::block(move || hash_now(&password))
        .await
        .map_err(ApiError::internal)?
}

pub fn hash_now(password: &Password) -> Result<String, ApiError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.expose().as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(ApiError::internal)
}

/// Verifies on the blocking pool. With no stored hash (unknown user) it verifies
/// against a dummy hash anyway, so "no such user" and "wrong password" take the
/// same time and give the same answer.
pub async fn verify(password: String, stored: Option<String>) -> bool {
    actix_web::web::block(move || {
        let phc = stored.as_deref().unwrap_or_else(|| dummy_hash());
        let ok = PasswordHash::new(phc)
            .map(|parsed| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok()
            })
            .unwrap_or(false);
        ok && stored.is_some()
    })
    .await
    .unwrap_or(false)
}

fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let random: [u8; 16] = rand::random();
        let password = Password::parse(&format!("{random:?}")).expect("long enough");
        hash_now(&password).expect("hashing a fresh password succeeds")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_argon2id_with_owasp_parameters() {
        let h = hash_now(&Password::parse("correct horse").unwrap()).unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
    }

    #[actix_web::test]
    async fn verifies_only_the_right_password() {
        let h = hash_now(&Password::parse("correct horse").unwrap()).unwrap();
        assert!(verify("correct horse".into(), Some(h.clone())).await);
        assert!(!verify("wrong horse!".into(), Some(h)).await);
        assert!(!verify("anything at all".into(), None).await);
    }
}
