//! A bounded, timed way to ask an actor something.
//!
//! actix's `SyncArbiter` mailboxes are unbounded and a full `Context` mailbox parks
//! the sender, so neither gives a caller a quick "too busy". [`Mailbox`] counts the
//! requests each actor has in hand (queued or being handled) against a named limit
//! and gives up after a timeout; both outcomes become a 503 with `Retry-After` in the
//! web layer instead of an unbounded queue or a hang. The count is also the
//! mailbox-depth metric.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use actix::dev::ToEnvelope;
use actix::{Actor, Addr, Handler, Message};

/// Why an actor gave no answer. None of these means the request was refused on its
/// merits; a client may retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AskError {
    #[error("{0} is overloaded")]
    Overloaded(&'static str),
    #[error("{0} is not running")]
    Stopped(&'static str),
    #[error("{0} did not answer in time")]
    Timeout(&'static str),
}

/// An actor's address with its in-flight bound. Cheap to clone.
pub struct Mailbox<A: Actor> {
    addr: Addr<A>,
    inflight: Arc<AtomicUsize>,
    inflight_max: usize,
    timeout: Duration,
    name: &'static str,
}

impl<A: Actor> Clone for Mailbox<A> {
    fn clone(&self) -> Self {
        Self {
            addr: self.addr.clone(),
            inflight: Arc::clone(&self.inflight),
            inflight_max: self.inflight_max,
            timeout: self.timeout,
            name: self.name,
        }
    }
}

struct InflightGuard(Arc<AtomicUsize>);

impl Drop for InflightGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl<A: Actor> Mailbox<A> {
    pub fn new(addr: Addr<A>, name: &'static str, inflight_max: usize, timeout: Duration) -> Self {
        assert!(
            inflight_max > 0,
            "a mailbox must admit at least one message"
        );
        Self {
            addr,
            inflight: Arc::new(AtomicUsize::new(0)),
            inflight_max,
            timeout,
            name,
        }
    }

    /// Sends `msg` and waits for the answer, unless the actor already has
    /// `inflight_max` requests in hand, is stopped, or takes longer than the timeout.
    pub async fn ask<M>(&self, msg: M) -> Result<M::Result, AskError>
    where
        A: Handler<M>,
        A::Context: ToEnvelope<A, M>,
        M: Message + Send + 'static,
        M::Result: Send,
    {
        let before = self.inflight.fetch_add(1, Ordering::AcqRel);
        let _guard = InflightGuard(Arc::clone(&self.inflight));
        if before >= self.inflight_max {
            return Err(AskError::Overloaded(self.name));
        }
        match tokio::time::timeout(self.timeout, self.addr.send(msg)).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(_mailbox_closed)) => Err(AskError::Stopped(self.name)),
            Err(_elapsed) => Err(AskError::Timeout(self.name)),
        }
    }

    /// Requests in hand right now (queued or being handled).
    pub fn depth(&self) -> usize {
        self.inflight.load(Ordering::Acquire)
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    pub fn connected(&self) -> bool {
        self.addr.connected()
    }

    pub fn addr(&self) -> &Addr<A> {
        &self.addr
    }
}
