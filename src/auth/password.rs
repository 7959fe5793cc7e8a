//! Password hashing: argon2id with the OWASP parameters, off the event loop.
//!
//! Hashing takes tens of milliseconds of CPU and 19 MiB of memory by design, so it
//! runs on a small pool of its own ([`PASSWORD_HASH_THREADS`] threads behind a
//! queue of [`PASSWORD_HASH_QUEUE_MAX`]): neither the HTTP workers nor the actors'
//! threads ever wait on it, a flood of logins cannot take more than that much
//! memory, and past the queue callers get 503 instead of waiting without bound.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use std::sync::{Arc, Mutex, OnceLock};

use orderflow_actors::limits::{
    PASSWORD_HASH_QUEUE_MAX, PASSWORD_HASH_THREADS, REGISTRATION_HASHES_INFLIGHT_MAX,
};

use argon2::Argon2;
use argon2::password_hash::{
    PasswordHash, PasswordHasher, PasswordVerifier, SaltString, rand_core::OsRng,
};

use crate::error::ApiError;
use orderflow_actors::domain::Password;

type Job = Box<dyn FnOnce() + Send>;

/// The hashing threads and their bounded queue.
struct Pool {
    jobs: SyncSender<Job>,
}

fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| {
        let (jobs, queue) = sync_channel::<Job>(PASSWORD_HASH_QUEUE_MAX);
        let queue: Arc<Mutex<Receiver<Job>>> = Arc::new(Mutex::new(queue));
        for i in 0..PASSWORD_HASH_THREADS {
            let queue = Arc::clone(&queue);
            std::thread::Builder::new()
                .name(format!("password-hash-{i}"))
                .spawn(move || {
                    loop {
                        let job = queue.lock().unwrap_or_else(|p| p.into_inner()).recv();
                        match job {
                            Ok(job) => job(),
                            Err(_) => return,
                        }
                    }
                })
                .expect("spawning a password-hash thread");
        }
        Pool { jobs }
    })
}

/// Why a password was hashed, for the `password_hashes` metric.
#[derive(Clone, Debug, Hash, PartialEq, Eq, prometheus_client::encoding::EncodeLabelSet)]
pub struct PurposeLabel {
    pub purpose: &'static str,
}

/// Password hashes computed (or verified), by purpose: what logins and
/// registrations cost, and proof that a refused one cost nothing.
pub fn hashes() -> &'static Family<PurposeLabel, Counter> {
    static HASHES: OnceLock<Family<PurposeLabel, Counter>> = OnceLock::new();
    HASHES.get_or_init(Family::default)
}

fn count(purpose: &'static str) {
    hashes().get_or_create(&PurposeLabel { purpose }).inc();
}

/// Runs `f` on the hashing pool.
async fn on_pool<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, ApiError> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let job: Job = Box::new(move || {
        let _ = tx.send(f());
    });
    match pool().jobs.try_send(job) {
        Ok(()) => {}
        Err(TrySendError::Full(_)) => {
            return Err(ApiError::unavailable(
                "too many logins in progress; retry shortly",
            ));
        }
        Err(TrySendError::Disconnected(_)) => {
            return Err(ApiError::internal("password hashing pool stopped"));
        }
    }
    rx.await
        .map_err(|_| ApiError::internal("password hashing job dropped"))
}

/// Hashes on the hashing pool; returns a PHC string (`$argon2id$v=19$m=19456,t=2,p=1$…`).
pub async fn hash(password: Password) -> Result<String, ApiError> {
    on_pool(move || {
        count("new_password");
        hash_now(&password)
    })
    .await?
}

/// [`hash`] for a registration: at most [`REGISTRATION_HASHES_INFLIGHT_MAX`] of them
/// hold places in the pool's queue at once, so a burst of registrations (which
/// anyone may send) leaves room for logins.
pub async fn hash_for_registration(password: Password) -> Result<String, ApiError> {
    static INFLIGHT: AtomicUsize = AtomicUsize::new(0);
    struct Release;
    impl Drop for Release {
        fn drop(&mut self) {
            INFLIGHT.fetch_sub(1, Ordering::AcqRel);
        }
    }
    let before = INFLIGHT.fetch_add(1, Ordering::AcqRel);
    let _release = Release;
    if before >= REGISTRATION_HASHES_INFLIGHT_MAX {
        return Err(ApiError::unavailable(
            "too many registrations in progress; retry shortly",
        ));
    }
    on_pool(move || {
        count("registration");
        hash_now(&password)
    })
    .await?
}

pub fn hash_now(password: &Password) -> Result<String, ApiError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.expose().as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(ApiError::internal)
}

/// Verifies on the hashing pool. With no stored hash (unknown user) it verifies
/// against a dummy hash anyway, so "no such user" and "wrong password" take the
/// same time and give the same answer.
pub async fn verify(password: String, stored: Option<String>) -> Result<bool, ApiError> {
    on_pool(move || {
        count("login");
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
        assert!(
            verify("correct horse".into(), Some(h.clone()))
                .await
                .unwrap()
        );
        assert!(!verify("wrong horse!".into(), Some(h)).await.unwrap());
        assert!(!verify("anything at all".into(), None).await.unwrap());
    }
}
