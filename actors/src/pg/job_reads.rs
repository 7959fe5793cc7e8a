//! The import jobs' reads and the shared inbox's claims, as PostgreSQL's ledger
//! actor answers them (see [`super::jobs`] for how claims and leases work).

use actix::{Handler, ResponseFuture};

use super::actor::PgLedgerActor;
use super::client;
use super::jobs::lease_ms;
use super::staged::{int, uint};
use crate::common::{Page, StoreError, codec};
use crate::domain::JobId;
use crate::inbox::jobs::{Job, RejectRow};
use crate::inbox::messages::{
    ClaimFile, DropClaim, GetJob, ListJobs, ListRejects, OpenJobs, TakeOver, TakenOver,
};
use crate::limits::INBOX_TAKEOVER_MAX;

fn job_of(id: i64, record: &[u8]) -> Result<Job, StoreError> {
    Ok(Job {
        id: JobId(uint(id)?),
        row: codec::decode(record)?,
    })
}

impl Handler<GetJob> for PgLedgerActor {
    type Result = ResponseFuture<Result<Option<Job>, StoreError>>;
    fn handle(&mut self, msg: GetJob, _: &mut Self::Context) -> Self::Result {
        let pool = self.pool.clone();
        Box::pin(async move {
            let db = client(&pool).await?;
            db.query_opt(
                "SELECT id, record FROM jobs WHERE id = $1",
                &[&int(msg.id.0)?],
            )
            .await?
            .map(|r| job_of(r.get(0), r.get(1)))
            .transpose()
        })
    }
}

impl Handler<ListJobs> for PgLedgerActor {
    type Result = ResponseFuture<Result<Page<Job, JobId>, StoreError>>;
    fn handle(&mut self, msg: ListJobs, _: &mut Self::Context) -> Self::Result {
        let pool = self.pool.clone();
        Box::pin(async move {
            let db = client(&pool).await?;
            let before = msg.before.map_or(Ok(i64::MAX), |j| int(j.0))?;
            let limit = i64::try_from(msg.limit).unwrap_or(i64::MAX - 1) + 1;
            let items = db
                .query(
                    "SELECT id, record FROM jobs WHERE id < $1 ORDER BY id DESC LIMIT $2",
                    &[&before, &limit],
                )
                .await?
                .iter()
                .map(|r| job_of(r.get(0), r.get(1)))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Page::from_overfetch(items, msg.limit, |j| j.id))
        })
    }
}

impl Handler<ListRejects> for PgLedgerActor {
    type Result = ResponseFuture<Result<Option<Page<(u64, RejectRow), u64>>, StoreError>>;
    fn handle(&mut self, msg: ListRejects, _: &mut Self::Context) -> Self::Result {
        let pool = self.pool.clone();
        Box::pin(async move {
            let db = client(&pool).await?;
            let job = int(msg.job.0)?;
            if db
                .query_opt("SELECT 1 FROM jobs WHERE id = $1", &[&job])
                .await?
                .is_none()
            {
                return Ok(None);
            }
            let after = msg.after_line.map_or(Ok(-1), int)?;
            let limit = i64::try_from(msg.limit).unwrap_or(i64::MAX - 1) + 1;
            let items = db
                .query(
                    "SELECT line, record FROM job_rejects WHERE job = $1 AND line > $2 \
                     ORDER BY line LIMIT $3",
                    &[&job, &after, &limit],
                )
                .await?
                .iter()
                .map(|r| Ok((uint(r.get(0))?, codec::decode(r.get::<_, &[u8]>(1))?)))
                .collect::<Result<Vec<(u64, RejectRow)>, StoreError>>()?;
            Ok(Some(Page::from_overfetch(items, msg.limit, |(line, _)| {
                *line
            })))
        })
    }
}

impl Handler<OpenJobs> for PgLedgerActor {
    type Result = ResponseFuture<Result<Vec<Job>, StoreError>>;
    /// The open jobs this node holds the lease on (the others are other nodes'
    /// to finish, or to take over once their lease runs out: see [`TakeOver`]).
    fn handle(&mut self, _: OpenJobs, _: &mut Self::Context) -> Self::Result {
        let pool = self.pool.clone();
        let node = self.node.clone();
        Box::pin(async move {
            let db = client(&pool).await?;
            db.query(
                "SELECT id, record FROM jobs WHERE open AND lease_node = $1 ORDER BY id",
                &[&node],
            )
            .await?
            .iter()
            .map(|r| job_of(r.get(0), r.get(1)))
            .collect()
        })
    }
}

impl Handler<ClaimFile> for PgLedgerActor {
    type Result = ResponseFuture<Result<bool, StoreError>>;
    fn handle(&mut self, msg: ClaimFile, _: &mut Self::Context) -> Self::Result {
        let pool = self.pool.clone();
        let node = self.node.clone();
        Box::pin(async move {
            let db = client(&pool).await?;
            let won = db
                .query_opt(
                    "INSERT INTO inbox_claims AS c (name, work_path, node, lease_until) \
                     VALUES ($1, $2, $3, now() + $4 * interval '1 millisecond') \
                     ON CONFLICT (name) DO UPDATE SET work_path = EXCLUDED.work_path, \
                     node = EXCLUDED.node, lease_until = EXCLUDED.lease_until \
                     WHERE c.lease_until < now() OR c.node = EXCLUDED.node \
                     RETURNING 1",
                    &[&msg.name, &msg.work_path, &node, &lease_ms()],
                )
                .await?;
            Ok(won.is_some())
        })
    }
}

impl Handler<DropClaim> for PgLedgerActor {
    type Result = ResponseFuture<Result<(), StoreError>>;
    fn handle(&mut self, msg: DropClaim, _: &mut Self::Context) -> Self::Result {
        let pool = self.pool.clone();
        let node = self.node.clone();
        Box::pin(async move {
            let db = client(&pool).await?;
            db.execute(
                "DELETE FROM inbox_claims WHERE name = $1 AND node = $2",
                &[&msg.name, &node],
            )
            .await?;
            Ok(())
        })
    }
}

impl Handler<TakeOver> for PgLedgerActor {
    type Result = ResponseFuture<Result<TakenOver, StoreError>>;
    fn handle(&mut self, _: TakeOver, _: &mut Self::Context) -> Self::Result {
        let pool = self.pool.clone();
        let node = self.node.clone();
        Box::pin(async move {
            let db = client(&pool).await?;
            let jobs = db
                .query(
                    "UPDATE jobs SET lease_node = $1, \
                     lease_until = now() + $2 * interval '1 millisecond' \
                     WHERE id IN (SELECT id FROM jobs WHERE open AND inbox \
                       AND (lease_until IS NULL OR lease_until < now()) \
                       ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED) \
                     RETURNING id",
                    &[&node, &lease_ms(), &INBOX_TAKEOVER_MAX],
                )
                .await?
                .iter()
                .map(|r| Ok(JobId(uint(r.get(0))?)))
                .collect::<Result<Vec<_>, StoreError>>()?;
            let claims = db
                .query(
                    "UPDATE inbox_claims SET node = $1, \
                     lease_until = now() + $2 * interval '1 millisecond' \
                     WHERE name IN (SELECT name FROM inbox_claims WHERE lease_until < now() \
                       ORDER BY name LIMIT $3 FOR UPDATE SKIP LOCKED) \
                     RETURNING name, work_path",
                    &[&node, &lease_ms(), &INBOX_TAKEOVER_MAX],
                )
                .await?
                .iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect();
            Ok(TakenOver { jobs, claims })
        })
    }
}
