//! Webhook endpoints and their delivery log on PostgreSQL: the messages of
//! [`crate::webhooks`], answered by any node with the rules of
//! [`EndpointRow`] (update, rotate, skip, record).
//!
//! One node at a time delivers (the deliverer that holds [`DELIVERY_LOCK`], see
//! [`super::try_lock`]); every node manages endpoints. A change reads the endpoint
//! row `FOR UPDATE`, so an admin's change and a recorded attempt never overwrite
//! each other.

use actix::{Actor, Context, Handler, ResponseFuture};

use super::staged::{int, uint};
use super::{Pool, client};
use crate::common::{Page, StoreError, codec};
use crate::domain::Timestamp;
use crate::limits::{WEBHOOK_DELIVERIES_KEPT_MAX, WEBHOOK_ENDPOINTS_MAX};
use crate::webhooks::{
    CreateEndpoint, DeleteEndpoint, DeliveryRow, Endpoint, EndpointId, EndpointRow, GetEndpoint,
    ListDeliveries, ListEndpoints, RecordAttempts, RotateSecret, SkipTo, UpdateEndpoint,
    WebhookError,
};

/// The session advisory lock the delivering node holds ("webhook" in ASCII).
pub const DELIVERY_LOCK: i64 = 0x0077_6562_686f_6f6b;

/// The webhook endpoints of one node on PostgreSQL.
pub struct PgWebhooks {
    pool: Pool,
}

impl PgWebhooks {
    pub fn new(pool: Pool) -> Self {
        Self { pool }
    }
}

impl Actor for PgWebhooks {
    type Context = Context<Self>;
}

fn endpoint_of(id: i64, record: &[u8]) -> Result<Endpoint, StoreError> {
    Ok(Endpoint {
        id: EndpointId(uint(id)?),
        row: codec::decode::<EndpointRow>(record)?,
    })
}

/// Changes one endpoint under its row lock; `log` may add delivery-log rows in
/// the same transaction.
async fn change(
    pool: &Pool,
    id: EndpointId,
    f: impl FnOnce(&mut EndpointRow) -> Result<Vec<(u64, Option<u64>, DeliveryRow)>, WebhookError>,
) -> Result<Endpoint, WebhookError> {
    let mut db = client(pool).await?;
    let tx = db.transaction().await.map_err(StoreError::from)?;
    let key = int(id.0)?;
    let found = tx
        .query_opt(
            "SELECT record FROM webhooks WHERE id = $1 FOR UPDATE",
            &[&key],
        )
        .await
        .map_err(StoreError::from)?
        .ok_or(WebhookError::NotFound)?;
    let mut row: EndpointRow = codec::decode(found.get::<_, &[u8]>(0))?;
    for (n, forget, delivery) in f(&mut row)? {
        tx.execute(
            "INSERT INTO webhook_deliveries VALUES ($1, $2, $3)",
            &[&key, &int(n)?, &codec::encode(&delivery)],
        )
        .await
        .map_err(StoreError::from)?;
        if let Some(oldest) = forget {
            tx.execute(
                "DELETE FROM webhook_deliveries WHERE endpoint = $1 AND n <= $2",
                &[&key, &int(oldest)?],
            )
            .await
            .map_err(StoreError::from)?;
        }
    }
    tx.execute(
        "UPDATE webhooks SET record = $2 WHERE id = $1",
        &[&key, &codec::encode(&row)],
    )
    .await
    .map_err(StoreError::from)?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(Endpoint { id, row })
}

impl Handler<CreateEndpoint> for PgWebhooks {
    type Result = ResponseFuture<Result<Endpoint, WebhookError>>;
    fn handle(&mut self, msg: CreateEndpoint, _: &mut Self::Context) -> Self::Result {
        let pool = self.pool.clone();
        Box::pin(async move {
            let row = msg.row(Timestamp::now());
            let mut db = client(&pool).await?;
            let tx = db.transaction().await.map_err(StoreError::from)?;
            // Serialises creations across nodes, so together they stay under the cap.
            tx.execute("LOCK TABLE webhooks IN SHARE ROW EXCLUSIVE MODE", &[])
                .await
                .map_err(StoreError::from)?;
            let count: i64 = tx
                .query_one("SELECT count(*) FROM webhooks", &[])
                .await
                .map_err(StoreError::from)?
                .get(0);
            if uint(count)? >= WEBHOOK_ENDPOINTS_MAX as u64 {
                return Err(WebhookError::TooMany);
            }
            let id: i64 = tx
                .query_one(
                    "INSERT INTO webhooks VALUES (nextval('webhook_ids'), $1) RETURNING id",
                    &[&codec::encode(&row)],
                )
                .await
                .map_err(StoreError::from)?
                .get(0);
            tx.commit().await.map_err(StoreError::from)?;
            Ok(Endpoint {
                id: EndpointId(uint(id)?),
                row,
            })
        })
    }
}

impl Handler<ListEndpoints> for PgWebhooks {
    type Result = ResponseFuture<Result<Vec<Endpoint>, WebhookError>>;
    fn handle(&mut self, _: ListEndpoints, _: &mut Self::Context) -> Self::Result {
        let pool = self.pool.clone();
        Box::pin(async move {
            let db = client(&pool).await?;
            let rows = db
                .query("SELECT id, record FROM webhooks ORDER BY id", &[])
                .await
                .map_err(StoreError::from)?;
            Ok(rows
                .iter()
                .map(|r| endpoint_of(r.get(0), r.get(1)))
                .collect::<Result<_, _>>()?)
        })
    }
}

impl Handler<GetEndpoint> for PgWebhooks {
    type Result = ResponseFuture<Result<Endpoint, WebhookError>>;
    fn handle(&mut self, msg: GetEndpoint, _: &mut Self::Context) -> Self::Result {
        let pool = self.pool.clone();
        Box::pin(async move {
            let db = client(&pool).await?;
            let row = db
                .query_opt(
                    "SELECT id, record FROM webhooks WHERE id = $1",
                    &[&int(msg.id.0)?],
                )
                .await
                .map_err(StoreError::from)?
                .ok_or(WebhookError::NotFound)?;
            Ok(endpoint_of(row.get(0), row.get(1))?)
        })
    }
}

impl Handler<UpdateEndpoint> for PgWebhooks {
    type Result = ResponseFuture<Result<Endpoint, WebhookError>>;
    fn handle(&mut self, msg: UpdateEndpoint, _: &mut Self::Context) -> Self::Result {
        let pool = self.pool.clone();
        Box::pin(async move {
            change(&pool, msg.id, |row| {
                row.update(msg);
                Ok(Vec::new())
            })
            .await
        })
    }
}

impl Handler<DeleteEndpoint> for PgWebhooks {
    type Result = ResponseFuture<Result<(), WebhookError>>;
    fn handle(&mut self, msg: DeleteEndpoint, _: &mut Self::Context) -> Self::Result {
        let pool = self.pool.clone();
        Box::pin(async move {
            let key = int(msg.id.0)?;
            let mut db = client(&pool).await?;
            let tx = db.transaction().await.map_err(StoreError::from)?;
            let gone = tx
                .execute("DELETE FROM webhooks WHERE id = $1", &[&key])
                .await
                .map_err(StoreError::from)?;
            if gone == 0 {
                return Err(WebhookError::NotFound);
            }
            tx.execute(
                "DELETE FROM webhook_deliveries WHERE endpoint = $1",
                &[&key],
            )
            .await
            .map_err(StoreError::from)?;
            tx.commit().await.map_err(StoreError::from)?;
            Ok(())
        })
    }
}

impl Handler<RotateSecret> for PgWebhooks {
    type Result = ResponseFuture<Result<Endpoint, WebhookError>>;
    fn handle(&mut self, msg: RotateSecret, _: &mut Self::Context) -> Self::Result {
        let pool = self.pool.clone();
        Box::pin(async move {
            let now = Timestamp::now();
            change(&pool, msg.id, |row| {
                row.rotate(msg.secret, now);
                Ok(Vec::new())
            })
            .await
        })
    }
}

impl Handler<RecordAttempts> for PgWebhooks {
    type Result = ResponseFuture<Result<Endpoint, WebhookError>>;
    fn handle(&mut self, msg: RecordAttempts, _: &mut Self::Context) -> Self::Result {
        let pool = self.pool.clone();
        Box::pin(async move {
            change(&pool, msg.id, |row| {
                msg.attempts
                    .into_iter()
                    .map(|attempt| {
                        let (n, forget) = row.record(attempt.advances, &attempt.delivery)?;
                        Ok((n, forget, attempt.delivery))
                    })
                    .collect()
            })
            .await
        })
    }
}

impl Handler<SkipTo> for PgWebhooks {
    type Result = ResponseFuture<Result<(), WebhookError>>;
    fn handle(&mut self, msg: SkipTo, _: &mut Self::Context) -> Self::Result {
        let pool = self.pool.clone();
        Box::pin(async move {
            change(&pool, msg.id, |row| {
                row.skip_to(msg.seq);
                Ok(Vec::new())
            })
            .await
            .map(drop)
        })
    }
}

impl Handler<ListDeliveries> for PgWebhooks {
    type Result = ResponseFuture<Result<Page<DeliveryRow, u64>, WebhookError>>;
    fn handle(&mut self, msg: ListDeliveries, _: &mut Self::Context) -> Self::Result {
        let pool = self.pool.clone();
        Box::pin(async move {
            let key = int(msg.id.0)?;
            let db = client(&pool).await?;
            if db
                .query_opt("SELECT 1 FROM webhooks WHERE id = $1", &[&key])
                .await
                .map_err(StoreError::from)?
                .is_none()
            {
                return Err(WebhookError::NotFound);
            }
            // Unfiltered, one more than a page tells whether another follows;
            // filtered, the page may need any of the (at most
            // WEBHOOK_DELIVERIES_KEPT_MAX) entries kept.
            let reach = match msg.outcome {
                None => msg.limit as u64 + 1,
                Some(_) => WEBHOOK_DELIVERIES_KEPT_MAX,
            };
            let rows = db
                .query(
                    "SELECT n, record FROM webhook_deliveries WHERE endpoint = $1 AND n < $2 \
                     ORDER BY n DESC LIMIT $3",
                    &[&key, &msg.before.map_or(Ok(i64::MAX), int)?, &int(reach)?],
                )
                .await
                .map_err(StoreError::from)?;
            let entries = rows.iter().map(|r| {
                Ok((
                    uint(r.get(0))?,
                    codec::decode(r.get::<_, &[u8]>(1)).map_err(StoreError::from)?,
                ))
            });
            Ok(msg.page(entries)?)
        })
    }
}

super::ping_and_stop!(PgWebhooks);
