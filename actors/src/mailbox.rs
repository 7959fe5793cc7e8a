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
use actix::{Actor, Addr, Arbiter, Context, Handler, Message};

use crate::common::StoreError;

/// Why an actor gave no answer. None of these means the request was refused on its
/// merits. After the first three nothing was done and a client may retry; after
/// [`AskError::OutcomeUnknown`] the command may still take effect, so a blind retry
/// could do it twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AskError {
    #[error("{0} is overloaded")]
    Overloaded(&'static str),
    #[error("{0} is not running")]
    Stopped(&'static str),
    #[error("{0} did not answer in time")]
    Timeout(&'static str),
    /// A write was accepted but its answer did not come within the hard limit.
    #[error("{0} took the command but did not answer within the hard limit")]
    OutcomeUnknown(&'static str),
}

/// An actor's address (or a pool of identical actors' addresses, asked in turn)
/// with its in-flight bound. Cheap to clone.
pub struct Mailbox<A: Actor> {
    addrs: Arc<[Addr<A>]>,
    turn: Arc<AtomicUsize>,
    inflight: Arc<AtomicUsize>,
    inflight_max: usize,
    timeout: Duration,
    /// Hard limit on waiting for a write's answer (see [`Mailbox::ask_write`]).
    write_timeout: Duration,
    name: &'static str,
}

impl<A: Actor> Clone for Mailbox<A> {
    fn clone(&self) -> Self {
        Self {
            addrs: Arc::clone(&self.addrs),
            turn: Arc::clone(&self.turn),
            inflight: Arc::clone(&self.inflight),
            inflight_max: self.inflight_max,
            timeout: self.timeout,
            write_timeout: self.write_timeout,
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
        Self::pool(vec![addr], name, inflight_max, timeout)
    }

    /// A mailbox over several identical actors; each request goes to the next one.
    pub fn pool(
        addrs: Vec<Addr<A>>,
        name: &'static str,
        inflight_max: usize,
        timeout: Duration,
    ) -> Self {
        assert!(
            inflight_max > 0,
            "a mailbox must admit at least one message"
        );
        assert!(!addrs.is_empty(), "a pool needs at least one actor");
        Self {
            addrs: addrs.into(),
            turn: Arc::new(AtomicUsize::new(0)),
            inflight: Arc::new(AtomicUsize::new(0)),
            inflight_max,
            timeout,
            write_timeout: timeout,
            name,
        }
    }

    /// Sets the hard limit for [`Mailbox::ask_write`] (by default the same as for
    /// reads).
    pub fn with_write_timeout(mut self, limit: Duration) -> Self {
        self.write_timeout = limit;
        self
    }

    /// Takes one of the `inflight_max` places, or says the actor is overloaded
    /// (nothing was sent: the caller may try again later).
    pub fn reserve(&self) -> Result<Slot<'_, A>, AskError> {
        let before = self.inflight.fetch_add(1, Ordering::AcqRel);
        let guard = InflightGuard(Arc::clone(&self.inflight));
        if before >= self.inflight_max {
            return Err(AskError::Overloaded(self.name));
        }
        Ok(Slot {
            mailbox: self,
            _guard: guard,
        })
    }

    /// Sends `msg` and waits for the answer, unless the actor already has
    /// `inflight_max` requests in hand, is stopped, or takes longer than the timeout.
    /// For reads and other requests that may be abandoned: an abandoned one changes
    /// nothing.
    pub async fn ask<M>(&self, msg: M) -> Result<M::Result, AskError>
    where
        A: Handler<M>,
        A::Context: ToEnvelope<A, M>,
        M: Message + Send + 'static,
        M::Result: Send,
    {
        let slot = self.reserve()?;
        match tokio::time::timeout(self.timeout, slot.send(msg)).await {
            Ok(answer) => answer,
            Err(_elapsed) => Err(AskError::Timeout(self.name)),
        }
    }

    /// Sends a command that changes state and waits for its answer: once the actor
    /// has taken it, it is never abandoned at the ordinary timeout (the command would
    /// still run, and a client told to retry would do it twice). Only past the hard
    /// write limit does the caller give up, with [`AskError::OutcomeUnknown`].
    pub async fn ask_write<M>(&self, msg: M) -> Result<M::Result, AskError>
    where
        A: Handler<M>,
        A::Context: ToEnvelope<A, M>,
        M: Message + Send + 'static,
        M::Result: Send,
    {
        let slot = self.reserve()?;
        match tokio::time::timeout(self.write_timeout, slot.send(msg)).await {
            Ok(answer) => answer,
            Err(_elapsed) => Err(AskError::OutcomeUnknown(self.name)),
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
        self.addrs.iter().all(Addr::connected)
    }

    /// Every actor behind this mailbox.
    /// Sends [`Stop`] to every actor of the mailbox and waits for each to take it.
    pub async fn stop_all(&self)
    where
        A: Handler<Stop>,
        A::Context: ToEnvelope<A, Stop>,
    {
        for addr in self.addrs.iter() {
            let _ = addr.send(Stop).await;
        }
    }

    pub fn addrs(&self) -> &[Addr<A>] {
        &self.addrs
    }
}

/// Readiness probe every actor answers: once it runs (and, for those that own the
/// database, once the database reads).
#[derive(Debug, Message)]
#[rtype(result = "Result<(), StoreError>")]
pub struct Ping;

/// Stop an actor (at shutdown), releasing its handle on the store.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Stop;

/// A place in an actor's queue, taken by [`Mailbox::reserve`]; released when the
/// answer has come (or the request was dropped).
pub struct Slot<'a, A: Actor> {
    mailbox: &'a Mailbox<A>,
    _guard: InflightGuard,
}

impl<A: Actor> Slot<'_, A> {
    /// Sends `msg` and waits for the answer however long it takes; only a stopped
    /// actor ends the wait (for background work that has nobody to answer to).
    pub async fn send<M>(self, msg: M) -> Result<M::Result, AskError>
    where
        A: Handler<M>,
        A::Context: ToEnvelope<A, M>,
        M: Message + Send + 'static,
        M::Result: Send,
    {
        let m = self.mailbox;
        let addr = &m.addrs[m.turn.fetch_add(1, Ordering::Relaxed) % m.addrs.len()];
        addr.send(msg)
            .await
            .map_err(|_closed| AskError::Stopped(m.name))
    }
}

/// Starts `threads` copies of an actor, each on an arbiter (thread) of its own, so
/// blocking work in one never stalls the HTTP workers or the others. A request to
/// the pool crosses one thread boundary each way (actix's `SyncArbiter` adds a
/// second hop through the system arbiter).
pub fn start_pool<A, F>(threads: usize, factory: F) -> Vec<Addr<A>>
where
    A: Actor<Context = Context<A>>,
    F: Fn() -> A + Send + Sync + 'static,
{
    let factory = Arc::new(factory);
    (0..threads.max(1))
        .map(|_| {
            let f = Arc::clone(&factory);
            A::start_in_arbiter(&Arbiter::new().handle(), move |_| f())
        })
        .collect()
}
