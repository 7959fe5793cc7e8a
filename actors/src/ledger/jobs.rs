//! The import jobs' messages as the redb ledger answers them, and the two job
//! rules both ledgers run in their batch: a step that ends a job writes its
//! event beside it ([`advance_announcing`]), and a loaded batch moves its job past
//! it ([`crate::inbox::load::record_progress`]).

use actix::{Handler, ResponseFuture};
use redb::{ReadableTable, ReadableTableMetadata as _};

use super::rows::LedgerRows;
use super::rules::Rules;
use super::{DryRun, Ledger, Transact};
use crate::common::{Page, StoreError, codec};
use crate::domain::{JobId, Timestamp};
use crate::events::Subject;
use crate::inbox::jobs::{
    Job, JobRow, JobRows, JobTables, NewJob, RejectRow, Step, advance, create, end_event,
};
use crate::inbox::load::{self, Applied};
use crate::inbox::messages::{
    AdvanceJob, ClaimFile, CreateJob, DropClaim, GetJob, ListJobs, ListRejects, LoadBatch,
    OpenJobs, SettleJob, TakeOver, TakenOver,
};
use crate::store::get_record;
use crate::store::tables::{JOB_REJECTS, JOBS, JOBS_OPEN};

/// Takes job `id` one step; a step that ends it appends the job's
/// `import.completed` or `import.failed` event in the same transaction. Both
/// ledgers run this, on their own rows.
pub fn advance_announcing<R: LedgerRows>(
    jobs: &mut impl JobRows,
    rules: &mut Rules<R>,
    id: JobId,
    step: Step<'_>,
    at: Timestamp,
) -> Result<JobRow, StoreError> {
    let ended_at = match &step {
        Step::Finished { at, .. } => Some(*at),
        _ => None,
    };
    let row = advance(jobs, id, step)?;
    if let Some(ended) = ended_at
        && let Some(kind) = end_event(&row, ended)
    {
        rules
            .rows
            .append_event(kind, Subject::Job { id }, codec::encode(&row), at)?;
    }
    Ok(row)
}

impl Handler<CreateJob> for Ledger {
    type Result = ResponseFuture<Result<Job, StoreError>>;
    fn handle(&mut self, msg: CreateJob, ctx: &mut Self::Context) -> Self::Result {
        self.handle(
            Transact {
                work: create_work(msg.new),
            },
            ctx,
        )
    }
}

impl Handler<AdvanceJob> for Ledger {
    type Result = ResponseFuture<Result<JobRow, StoreError>>;
    fn handle(&mut self, msg: AdvanceJob, ctx: &mut Self::Context) -> Self::Result {
        let AdvanceJob { id, step } = msg;
        self.handle(
            Transact {
                work: Box::new(move |tx| {
                    let mut jobs = JobTables::open(tx.txn)?;
                    advance_announcing(&mut jobs, tx.book, id, step, tx.at)
                }),
            },
            ctx,
        )
    }
}

impl Handler<SettleJob> for Ledger {
    type Result = ResponseFuture<Result<(), StoreError>>;
    fn handle(&mut self, msg: SettleJob, ctx: &mut Self::Context) -> Self::Result {
        let id = msg.id;
        self.handle(
            Transact {
                work: Box::new(move |tx| JobTables::open(tx.txn)?.settle(id)),
            },
            ctx,
        )
    }
}

impl Handler<LoadBatch> for Ledger {
    type Result = ResponseFuture<Result<Applied, StoreError>>;
    fn handle(&mut self, msg: LoadBatch, ctx: &mut Self::Context) -> Self::Result {
        let LoadBatch { id, batch, dry_run } = msg;
        if !dry_run {
            return self.handle(
                Transact {
                    work: Box::new(move |tx| {
                        let applied = load::apply(tx, id, batch)?;
                        load::record_progress(&mut JobTables::open(tx.txn)?, id, &applied)?;
                        Ok(applied)
                    }),
                },
                ctx,
            );
        }
        let applied = match self.handle(
            DryRun {
                work: Box::new(move |tx| load::apply(tx, id, batch)),
            },
            ctx,
        ) {
            Ok(applied) => applied,
            Err(e) => return Box::pin(async move { Err(e) }),
        };
        let for_job = applied.clone();
        let recorded = self.handle(
            Transact {
                work: Box::new(move |tx| {
                    load::record_progress(&mut JobTables::open(tx.txn)?, id, &for_job)
                }),
            },
            ctx,
        );
        Box::pin(async move {
            recorded.await?;
            Ok(applied)
        })
    }
}

impl Handler<GetJob> for Ledger {
    type Result = Result<Option<Job>, StoreError>;
    fn handle(&mut self, msg: GetJob, _: &mut Self::Context) -> Self::Result {
        let txn = self.read()?;
        let row: Option<JobRow> = get_record(&txn.open_table(JOBS)?, msg.id.0)?;
        Ok(row.map(|row| Job { id: msg.id, row }))
    }
}

impl Handler<ListJobs> for Ledger {
    type Result = Result<Page<Job, JobId>, StoreError>;
    fn handle(&mut self, msg: ListJobs, _: &mut Self::Context) -> Self::Result {
        let txn = self.read()?;
        let jobs = txn.open_table(JOBS)?;
        let before = msg.before.map_or(u64::MAX, |j| j.0);
        let items = jobs
            .range(..before)?
            .rev()
            .take(msg.limit.saturating_add(1))
            .map(|entry| {
                let (k, v) = entry?;
                Ok(Job {
                    id: JobId(k.value()),
                    row: codec::decode(v.value())?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(Page::from_overfetch(items, msg.limit, |j| j.id))
    }
}

impl Handler<ListRejects> for Ledger {
    type Result = Result<Option<Page<(u64, RejectRow), u64>>, StoreError>;
    fn handle(&mut self, msg: ListRejects, _: &mut Self::Context) -> Self::Result {
        let txn = self.read()?;
        if txn.open_table(JOBS)?.get(msg.job.0)?.is_none() {
            return Ok(None);
        }
        let rejects = txn.open_table(JOB_REJECTS)?;
        let from = msg.after_line.map_or(0, |l| l.saturating_add(1));
        let items = rejects
            .range((msg.job.0, from)..=(msg.job.0, u64::MAX))?
            .take(msg.limit.saturating_add(1))
            .map(|entry| {
                let (k, v) = entry?;
                Ok((k.value().1, codec::decode::<RejectRow>(v.value())?))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(Some(Page::from_overfetch(items, msg.limit, |(line, _)| {
            *line
        })))
    }
}

impl Handler<OpenJobs> for Ledger {
    type Result = Result<Vec<Job>, StoreError>;
    fn handle(&mut self, _: OpenJobs, _: &mut Self::Context) -> Self::Result {
        let txn = self.read()?;
        let open = txn.open_table(JOBS_OPEN)?;
        let jobs = txn.open_table(JOBS)?;
        let mut out = Vec::with_capacity(usize::try_from(open.len()?).unwrap_or(0));
        for entry in open.iter()? {
            let id = entry?.0.value();
            if let Some(row) = get_record::<u64, JobRow>(&jobs, id)? {
                out.push(Job { id: JobId(id), row });
            }
        }
        Ok(out)
    }
}

/// The redb ledger work that creates the job of [`crate::inbox::new_job`].
#[allow(clippy::type_complexity)]
pub fn create_work(
    new: NewJob,
) -> Box<dyn for<'a, 'txn> FnOnce(&mut super::Tx<'a, 'txn>) -> Result<Job, StoreError> + Send> {
    Box::new(move |tx| {
        let id = JobId(
            tx.book
                .next_id(crate::store::tables::counter::NEXT_JOB_ID)?,
        );
        create(tx.txn, id, new)
    })
}

/// A node alone with its inbox folder always wins its claim.
impl Handler<ClaimFile> for Ledger {
    type Result = Result<bool, StoreError>;
    fn handle(&mut self, _: ClaimFile, _: &mut Self::Context) -> Self::Result {
        Ok(true)
    }
}

/// Nothing to give up: redb keeps no claims.
impl Handler<DropClaim> for Ledger {
    type Result = Result<(), StoreError>;
    fn handle(&mut self, _: DropClaim, _: &mut Self::Context) -> Self::Result {
        Ok(())
    }
}

/// No other node shares this ledger, so none left anything to take over.
impl Handler<TakeOver> for Ledger {
    type Result = Result<TakenOver, StoreError>;
    fn handle(&mut self, _: TakeOver, _: &mut Self::Context) -> Self::Result {
        Ok(TakenOver::default())
    }
}
