//! Import jobs on PostgreSQL, and the shared inbox: several nodes watch one
//! folder and each file is loaded by exactly one of them.
//!
//! - **Claims.** A node that sees a settled file first inserts its claim row
//!   (`inbox_claims`, keyed by the file's name, with the working path it will use
//!   and a lease); only the node whose insert wins renames the file into `.work/`.
//!   The job it then creates ends the claim in the same transaction.
//! - **Leases.** Every job is leased to the node that created it (or took it
//!   over). Each batch of a job is fenced on the lease inside the ledger's
//!   transaction ([`StagedJobs::fence`]): a node that lost its lease writes
//!   nothing more for that job. A node renews its leases every
//!   [`INBOX_LEASE_RENEW_MS`]; a node that dies stops renewing, and
//!   [`INBOX_LEASE_MS`] later another takes the job over ([`crate::inbox::messages::TakeOver`]) and resumes
//!   it from the position its last batch committed.
//! - **The rest is the redb backend's**: the job's state machine
//!   ([`crate::inbox::jobs::advance`]) and the batch's rules
//!   ([`crate::inbox::load::apply_to`]) run on rows staged here and in
//!   [`super::staged`], inside the node's ledger batch.
//!
//! Here: the staged job rows and the renewal of leases. The reads and the claims
//! are answered in [`super::job_reads`].

use std::collections::{BTreeMap, BTreeSet, HashMap};

use tokio_postgres::Transaction;

use super::client;
use super::staged::{int, uint};
use crate::common::{StoreError, codec};
use crate::domain::{JobId, UserId};
use crate::inbox::jobs::{Job, JobRow, JobRows, NewJob, RejectRow, new_row};
use crate::inbox::load::{Batch, Customers, Unit};
use crate::inbox::transform::Customer;
use crate::limits::{INBOX_LEASE_MS, INBOX_LEASE_RENEW_MS};

/// The lease's length as SQL reads it: `now() + $n * interval '1 millisecond'`.
pub(super) fn lease_ms() -> f64 {
    INBOX_LEASE_MS as f64
}

/// One job as a batch read it (locked), and what the batch did to it.
#[derive(Debug)]
struct StagedJob {
    row: JobRow,
    lease_node: Option<String>,
    created: bool,
    written: bool,
}

/// The jobs one ledger batch touches, read and locked before its commands run.
#[derive(Debug)]
pub struct StagedJobs {
    node: String,
    rows: BTreeMap<JobId, StagedJob>,
    rejects: Vec<(i64, i64, Vec<u8>)>,
    /// Completed loads by hash, as read for the batch's `Started` steps.
    shas: HashMap<[u8; 32], JobId>,
    marked: Vec<([u8; 32], JobId)>,
    settled: BTreeSet<JobId>,
    /// Inbox claims ended by the jobs this batch creates.
    claims: Vec<String>,
}

impl StagedJobs {
    pub fn new(node: &str) -> Self {
        Self {
            node: node.to_owned(),
            rows: BTreeMap::new(),
            rejects: Vec::new(),
            shas: HashMap::new(),
            marked: Vec::new(),
            settled: BTreeSet::new(),
            claims: Vec::new(),
        }
    }

    /// Reads (for this batch) the job rows `ids`, locked, and the completed loads
    /// with the hashes `shas`.
    pub async fn read(
        &mut self,
        tx: &Transaction<'_>,
        ids: &BTreeSet<JobId>,
        shas: &[[u8; 32]],
    ) -> Result<(), StoreError> {
        if !ids.is_empty() {
            let wanted: Vec<i64> = ids.iter().map(|j| int(j.0)).collect::<Result<_, _>>()?;
            for row in tx
                .query(
                    "SELECT id, record, lease_node FROM jobs WHERE id = ANY($1) ORDER BY id FOR UPDATE",
                    &[&wanted],
                )
                .await?
            {
                self.rows.insert(
                    JobId(uint(row.get(0))?),
                    StagedJob {
                        row: codec::decode(row.get::<_, &[u8]>(1))?,
                        lease_node: row.get(2),
                        created: false,
                        written: false,
                    },
                );
            }
        }
        if !shas.is_empty() {
            let wanted: Vec<&[u8]> = shas.iter().map(|s| s.as_slice()).collect();
            for row in tx
                .query(
                    "SELECT sha256, job FROM job_shas WHERE sha256 = ANY($1)",
                    &[&wanted],
                )
                .await?
            {
                let sha: [u8; 32] = row.get::<_, &[u8]>(0).try_into().map_err(|_| {
                    StoreError::Corrupt("a stored file hash is not 32 bytes".into())
                })?;
                self.shas.insert(sha, JobId(uint(row.get(1))?));
            }
        }
        Ok(())
    }

    /// A new queued job, leased to this node; it ends the inbox claim `claim`.
    pub fn create(&mut self, id: JobId, new: NewJob, claim: Option<String>) -> Job {
        let row = new_row(new);
        self.rows.insert(
            id,
            StagedJob {
                row: row.clone(),
                lease_node: Some(self.node.clone()),
                created: true,
                written: true,
            },
        );
        self.claims.extend(claim);
        Job { id, row }
    }

    /// Refuses work on a job another node holds the lease on.
    pub fn fence(&self, id: JobId) -> Result<(), StoreError> {
        match self.rows.get(&id).and_then(|j| j.lease_node.as_deref()) {
            Some(holder) if holder != self.node => Err(StoreError::LeaseLost(id.0)),
            _ => Ok(()),
        }
    }

    /// Marks a job settled (it leaves the open jobs, and its lease ends).
    pub fn settle(&mut self, id: JobId) -> Result<(), StoreError> {
        crate::inbox::jobs::check_settle(self, id)?;
        self.settled.insert(id);
        Ok(())
    }

    /// Writes what the batch did to its jobs; every job it touched stays leased
    /// to this node for another [`INBOX_LEASE_MS`].
    pub async fn flush(&self, tx: &Transaction<'_>) -> Result<(), StoreError> {
        for (id, job) in self.rows.iter().filter(|(_, j)| j.written) {
            let record = codec::encode(&job.row);
            let inbox = job.row.origin == crate::inbox::jobs::Origin::Inbox;
            if job.created {
                tx.execute(
                    "INSERT INTO jobs (id, record, open, inbox, lease_node, lease_until) \
                     VALUES ($1, $2, true, $3, $4, now() + $5 * interval '1 millisecond')",
                    &[&int(id.0)?, &record, &inbox, &self.node, &lease_ms()],
                )
                .await?;
            } else {
                tx.execute(
                    "UPDATE jobs SET record = $2, lease_node = $3, \
                     lease_until = now() + $4 * interval '1 millisecond' WHERE id = $1",
                    &[&int(id.0)?, &record, &self.node, &lease_ms()],
                )
                .await?;
            }
        }
        if !self.rejects.is_empty() {
            let jobs: Vec<i64> = self.rejects.iter().map(|r| r.0).collect();
            let lines: Vec<i64> = self.rejects.iter().map(|r| r.1).collect();
            let records: Vec<&[u8]> = self.rejects.iter().map(|r| r.2.as_slice()).collect();
            tx.execute(
                "INSERT INTO job_rejects (job, line, record) \
                 SELECT * FROM unnest($1::int8[], $2::int8[], $3::bytea[])",
                &[&jobs, &lines, &records],
            )
            .await?;
        }
        for (sha, id) in &self.marked {
            tx.execute(
                "INSERT INTO job_shas (sha256, job) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                &[&sha.as_slice(), &int(id.0)?],
            )
            .await?;
        }
        if !self.settled.is_empty() {
            let ids: Vec<i64> = self
                .settled
                .iter()
                .map(|j| int(j.0))
                .collect::<Result<_, _>>()?;
            tx.execute(
                "UPDATE jobs SET open = false, lease_node = NULL, lease_until = NULL \
                 WHERE id = ANY($1)",
                &[&ids],
            )
            .await?;
        }
        if !self.claims.is_empty() {
            // A job is created only while this node still holds its file's claim:
            // one that ran out and was taken over belongs to the node that took it.
            let ended = tx
                .execute(
                    "DELETE FROM inbox_claims WHERE name = ANY($1) AND node = $2",
                    &[&self.claims, &self.node],
                )
                .await?;
            if ended != self.claims.len() as u64 {
                return Err(StoreError::Aborted(format!(
                    "this node no longer holds the inbox claim on {}: another node took the file over",
                    self.claims.join(", ")
                )));
            }
        }
        Ok(())
    }
}

impl JobRows for StagedJobs {
    fn job(&self, id: JobId) -> Result<Option<JobRow>, StoreError> {
        Ok(self.rows.get(&id).map(|j| j.row.clone()))
    }

    fn put_job(&mut self, id: JobId, row: &JobRow) -> Result<(), StoreError> {
        let job = self.rows.get_mut(&id).ok_or_else(|| {
            StoreError::Corrupt(format!("job {} was not read for this batch", id.0))
        })?;
        job.row = row.clone();
        job.written = true;
        Ok(())
    }

    fn put_reject(&mut self, id: JobId, line: u64, row: &RejectRow) -> Result<(), StoreError> {
        self.rejects
            .push((int(id.0)?, int(line)?, codec::encode(row)));
        Ok(())
    }

    fn completed_with(&self, sha256: &[u8; 32]) -> Result<Option<JobId>, StoreError> {
        Ok(self
            .marked
            .iter()
            .find(|(s, _)| s == sha256)
            .map(|(_, id)| *id)
            .or_else(|| self.shas.get(sha256).copied()))
    }

    fn mark_completed(&mut self, sha256: &[u8; 32], id: JobId) -> Result<(), StoreError> {
        self.marked.push((*sha256, id));
        Ok(())
    }
}

/// The customers a batch's orders name, read for the batch.
#[derive(Debug, Default)]
pub struct StagedCustomers {
    names: HashMap<String, UserId>,
    emails: HashMap<String, UserId>,
}

impl StagedCustomers {
    /// Reads the users the orders of `batches` name.
    pub async fn read<'b>(
        tx: &Transaction<'_>,
        batches: impl Iterator<Item = &'b Batch>,
    ) -> Result<Self, StoreError> {
        let mut names = Vec::new();
        let mut emails = Vec::new();
        for batch in batches {
            for piece in &batch.pieces {
                if let Unit::Order { customer, .. } = &piece.unit {
                    match customer {
                        Customer::Username(u) => names.push(u.folded()),
                        Customer::Email(e) => emails.push(e.folded()),
                    }
                }
            }
        }
        let mut out = Self::default();
        for (column, keys, into) in [
            ("name_key", &names, &mut out.names),
            ("email_key", &emails, &mut out.emails),
        ] {
            if keys.is_empty() {
                continue;
            }
            for row in tx
                .query(
                    &format!("SELECT {column}, id FROM users WHERE {column} = ANY($1)"),
                    &[keys],
                )
                .await?
            {
                into.insert(row.get(0), UserId(uint(row.get(1))?));
            }
        }
        Ok(out)
    }
}

impl Customers for StagedCustomers {
    fn user_of(&self, customer: &Customer) -> Result<Option<UserId>, StoreError> {
        Ok(match customer {
            Customer::Username(u) => self.names.get(&u.folded()).copied(),
            Customer::Email(e) => self.emails.get(&e.folded()).copied(),
        })
    }
}

/// Renews the leases of every open job and claim `node` holds; run every
/// [`INBOX_LEASE_RENEW_MS`] by the ledger's actor.
pub async fn renew_leases(pool: &super::Pool, node: &str) -> Result<(), StoreError> {
    let db = client(pool).await?;
    db.execute(
        "UPDATE jobs SET lease_until = now() + $2 * interval '1 millisecond' \
         WHERE id IN (SELECT id FROM jobs WHERE open AND lease_node = $1 ORDER BY id FOR UPDATE)",
        &[&node, &lease_ms()],
    )
    .await?;
    db.execute(
        "UPDATE inbox_claims SET lease_until = now() + $2 * interval '1 millisecond' \
         WHERE node = $1",
        &[&node, &lease_ms()],
    )
    .await?;
    Ok(())
}

/// The interval of [`renew_leases`].
pub fn renew_every() -> std::time::Duration {
    std::time::Duration::from_millis(INBOX_LEASE_RENEW_MS)
}
