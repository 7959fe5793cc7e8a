//! One room, two backends: a handler asks a [`Room`] and does not know whether the
//! redb actor or its PostgreSQL twin answers.
//!
//! A message can be sent to a room only if *both* actors handle it, so the
//! compiler keeps the two backends answering the same messages; the few that one
//! backend lacks (online backups: redb only) are reached through [`Room::redb`],
//! and the caller says what happens on the other.

use actix::dev::ToEnvelope;
use actix::{Actor, Handler, Message};

use crate::catalog::Catalog;
use crate::events::EventsReader;
use crate::ledger::Ledger;
use crate::mailbox::{AskError, Mailbox, Slot};
use crate::pg::actor::PgLedgerActor;
use crate::pg::{PgCatalog, PgEvents};

/// The ledger on this node's backend: the redb [`Ledger`] or PostgreSQL's twin.
pub type LedgerRoom = Room<Ledger, PgLedgerActor>;
/// The catalog's readers on this node's backend.
pub type CatalogRoom = Room<Catalog, PgCatalog>;
/// The events feed's readers on this node's backend.
pub type EventsRoom = Room<EventsReader, PgEvents>;

/// A room both of whose actors answer `M`: the bound a generic caller states
/// instead of naming the two actors (so the inbox names no backend).
pub trait Asks<M: Message + Send + 'static>
where
    M::Result: Send,
{
    /// Takes a place in the actor's queue and sends `msg` into it; a full queue
    /// hands the message back with the refusal.
    fn try_send(
        &self,
        msg: M,
    ) -> Result<impl Future<Output = Result<M::Result, AskError>> + '_, (M, AskError)>;
}

impl<R: Actor, P: Actor, M> Asks<M> for Room<R, P>
where
    R: Handler<M>,
    R::Context: ToEnvelope<R, M>,
    P: Handler<M>,
    P::Context: ToEnvelope<P, M>,
    M: Message + Send + 'static,
    M::Result: Send,
{
    fn try_send(
        &self,
        msg: M,
    ) -> Result<impl Future<Output = Result<M::Result, AskError>> + '_, (M, AskError)> {
        match self.reserve() {
            Ok(slot) => Ok(slot.send(msg)),
            Err(e) => Err((msg, e)),
        }
    }
}

/// A room's mailbox on the backend this node runs.
pub enum Room<R: Actor, P: Actor> {
    Redb(Mailbox<R>),
    Postgres(Mailbox<P>),
}

impl<R: Actor, P: Actor> Clone for Room<R, P> {
    fn clone(&self) -> Self {
        match self {
            Self::Redb(m) => Self::Redb(m.clone()),
            Self::Postgres(m) => Self::Postgres(m.clone()),
        }
    }
}

impl<R: Actor, P: Actor> Room<R, P> {
    /// See [`Mailbox::ask`].
    pub async fn ask<M>(&self, msg: M) -> Result<M::Result, AskError>
    where
        R: Handler<M>,
        R::Context: ToEnvelope<R, M>,
        P: Handler<M>,
        P::Context: ToEnvelope<P, M>,
        M: Message + Send + 'static,
        M::Result: Send,
    {
        match self {
            Self::Redb(m) => m.ask(msg).await,
            Self::Postgres(m) => m.ask(msg).await,
        }
    }

    /// See [`Mailbox::ask_write`].
    pub async fn ask_write<M>(&self, msg: M) -> Result<M::Result, AskError>
    where
        R: Handler<M>,
        R::Context: ToEnvelope<R, M>,
        P: Handler<M>,
        P::Context: ToEnvelope<P, M>,
        M: Message + Send + 'static,
        M::Result: Send,
    {
        match self {
            Self::Redb(m) => m.ask_write(msg).await,
            Self::Postgres(m) => m.ask_write(msg).await,
        }
    }

    /// Requests in hand (the mailbox-depth metric).
    pub fn depth(&self) -> usize {
        match self {
            Self::Redb(m) => m.depth(),
            Self::Postgres(m) => m.depth(),
        }
    }

    /// A place in the actor's queue (see [`Mailbox::reserve`]).
    pub fn reserve(&self) -> Result<RoomSlot<'_, R, P>, AskError> {
        Ok(match self {
            Self::Redb(m) => RoomSlot::Redb(m.reserve()?),
            Self::Postgres(m) => RoomSlot::Postgres(m.reserve()?),
        })
    }

    /// The PostgreSQL actor, for what only that backend does.
    pub fn postgres(&self) -> Option<&Mailbox<P>> {
        match self {
            Self::Redb(_) => None,
            Self::Postgres(m) => Some(m),
        }
    }

    /// The redb actor, for what only that backend does.
    pub fn redb(&self) -> Option<&Mailbox<R>> {
        match self {
            Self::Redb(m) => Some(m),
            Self::Postgres(_) => None,
        }
    }
}

/// A place in a room's queue, taken by [`Room::reserve`].
pub enum RoomSlot<'a, R: Actor, P: Actor> {
    Redb(Slot<'a, R>),
    Postgres(Slot<'a, P>),
}

impl<R: Actor, P: Actor> RoomSlot<'_, R, P> {
    /// See [`Slot::send`].
    pub async fn send<M>(self, msg: M) -> Result<M::Result, AskError>
    where
        R: Handler<M>,
        R::Context: ToEnvelope<R, M>,
        P: Handler<M>,
        P::Context: ToEnvelope<P, M>,
        M: Message + Send + 'static,
        M::Result: Send,
    {
        match self {
            Self::Redb(s) => s.send(msg).await,
            Self::Postgres(s) => s.send(msg).await,
        }
    }
}
