//! How domain values look on the wire. Money is integer minor units plus the store
//! currency; timestamps are RFC 3339 UTC; nothing internal (password hashes, archived
//! flags, storage keys) is ever rendered.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Serialize, de::DeserializeOwned};
use utoipa::ToSchema;

use super::resource::{self, Resource};
use orderflow_actors::catalog::{CategoryNode, Product};
use orderflow_actors::common::CodecError;
use orderflow_actors::domain::{Currency, Options};
use orderflow_actors::events::Event;
use orderflow_actors::inbox::{Job, JobView};
use orderflow_actors::ledger::{Movement, Order};
use orderflow_actors::users::User;

/// A product on the wire.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Product)]
pub struct ProductJson<'a> {
    sku: &'a str,
    name: &'a str,
    category: &'a str,
    description: Option<&'a str>,
    price_cents: u64,
    currency: &'a str,
    stock: u64,
    in_stock: bool,
    created_at: String,
    updated_at: String,
    /// Grams; 0 when not given.
    weight_grams: u64,
    /// Which tax rates apply (`standard` unless set).
    tax_class: &'a str,
    /// A GTIN, if the product has one.
    barcode: Option<&'a str>,
    /// The variant group, if the product is one of several variants.
    group: Option<&'a str>,
    /// Option name → value, in the order written; `{}` outside a group.
    #[schema(value_type = std::collections::BTreeMap<String, String>)]
    options: OptionsJson<'a>,
}

/// A product's options as a JSON object in their order.
#[derive(Debug)]
pub struct OptionsJson<'a>(&'a Options);

impl Serialize for OptionsJson<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter())
    }
}

pub fn product<'a>(p: &'a Product, currency: &'a Currency) -> ProductJson<'a> {
    ProductJson {
        sku: p.sku.as_str(),
        name: p.row.name.as_str(),
        category: p.row.category.as_str(),
        description: p.row.description.as_ref().map(|d| d.as_str()),
        price_cents: p.row.price.get(),
        currency: currency.code(),
        stock: p.stock,
        in_stock: p.stock > 0,
        created_at: p.row.created_at.to_rfc3339(),
        updated_at: p.row.updated_at.to_rfc3339(),
        weight_grams: p.row.attributes.weight.get(),
        tax_class: p.row.attributes.tax_class.as_str(),
        barcode: p.row.attributes.barcode.as_ref().map(|b| b.as_str()),
        group: p.row.attributes.group.as_ref().map(|g| g.as_str()),
        options: OptionsJson(&p.row.attributes.options),
    }
}

/// A user on the wire: never a password hash.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = User)]
pub struct UserJson<'a> {
    id: u64,
    username: &'a str,
    email: &'a str,
    /// `customer` or `admin`.
    role: &'static str,
    created_at: String,
}

pub fn user(u: &User) -> UserJson<'_> {
    UserJson {
        id: u.id.0,
        username: u.username.as_str(),
        email: u.email.as_str(),
        role: u.role.as_str(),
        created_at: u.created_at.to_rfc3339(),
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = OrderLine)]
pub struct OrderLineJson<'a> {
    sku: &'a str,
    name: &'a str,
    unit_price_cents: u64,
    quantity: u32,
    line_total_cents: u64,
}

/// An order on the wire.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Order)]
pub struct OrderJson<'a> {
    id: u64,
    user_id: u64,
    /// `placed`, `paid`, `shipped`, `delivered` or `cancelled`.
    status: &'static str,
    items: Vec<OrderLineJson<'a>>,
    total_cents: u64,
    currency: &'a str,
    created_at: String,
    updated_at: String,
    /// `api` or `import:<job id>`.
    source: String,
    /// The order's reference in an imported orders file.
    external_ref: Option<&'a str>,
}

pub fn order(o: &Order) -> OrderJson<'_> {
    let r = &o.row;
    OrderJson {
        id: o.id.0,
        user_id: r.user_id.0,
        status: r.status.as_str(),
        items: r
            .lines
            .iter()
            .map(|l| OrderLineJson {
                sku: l.sku.as_str(),
                name: &l.name,
                unit_price_cents: l.unit_price.get(),
                quantity: l.quantity.get(),
                line_total_cents: l.line_total_cents,
            })
            .collect(),
        total_cents: r.total_cents,
        currency: &r.currency,
        created_at: r.created_at.to_rfc3339(),
        updated_at: r.updated_at.to_rfc3339(),
        source: r.source.to_string(),
        external_ref: r.external_ref.as_ref().map(|x| x.as_str()),
    }
}

/// A stock movement on the wire.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Movement)]
pub struct MovementJson<'a> {
    /// Counts this SKU's movements from 1.
    seq: u64,
    sku: &'a str,
    /// `receipt`, `sale`, `cancel`, `adjustment` or `import`.
    kind: &'static str,
    delta: i64,
    stock_after: u64,
    order_id: Option<u64>,
    /// `api` or `import:<job id>`.
    source: String,
    /// The reason an admin gave for an adjustment.
    reason: Option<&'a str>,
    at: String,
}

pub fn movement(m: &Movement) -> MovementJson<'_> {
    let r = &m.row;
    MovementJson {
        seq: m.seq,
        sku: m.sku.as_str(),
        kind: r.kind.as_str(),
        delta: r.delta,
        stock_after: r.stock_after,
        order_id: r.order_id.map(|o| o.0),
        source: r.source.to_string(),
        reason: r.reason.as_ref().map(|x| x.as_str()),
        at: r.at.to_rfc3339(),
    }
}

/// A page of a list: `next_cursor` is null on the last page.
#[derive(Debug, Serialize, ToSchema)]
pub struct PageJson<T> {
    items: Vec<T>,
    /// Opaque; pass it back as `cursor` for the next page.
    next_cursor: Option<String>,
}

/// Login and refresh answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenPair {
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// Opaque; use it once with `/auth/refresh`.
    pub refresh_token: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CategoryJson {
    /// The last level of `path`.
    pub name: String,
    /// Levels separated by ` > `.
    pub path: String,
    /// The path one level up; `null` at the top.
    pub parent: Option<String>,
    /// 1 at the top, at most 5.
    #[schema(minimum = 1, maximum = 5)]
    pub depth: usize,
    /// Active products in this category and every category below it.
    pub product_count: u64,
}

impl From<CategoryNode> for CategoryJson {
    fn from(node: CategoryNode) -> Self {
        Self {
            name: node.name,
            path: node.path,
            parent: node.parent,
            depth: node.depth,
            product_count: node.product_count,
        }
    }
}

/// The ledger's audit (`GET /api/v1/admin/ledger/verify` and `orderflow verify`).
#[derive(Debug, Serialize, ToSchema)]
pub struct VerifyJson {
    pub skus_checked: u64,
    pub orders_checked: u64,
    /// Each disagreement found; empty when stock and totals are all consistent.
    pub problems: Vec<String>,
}

impl From<orderflow_actors::ledger::VerifyReport> for VerifyJson {
    fn from(r: orderflow_actors::ledger::VerifyReport) -> Self {
        Self {
            skus_checked: r.skus_checked,
            orders_checked: r.orders_checked,
            problems: r.problems,
        }
    }
}

/// A backup just taken.
#[derive(Debug, Serialize, ToSchema)]
pub struct BackupJson {
    /// Where the backup file is (its manifest beside it: `FILE.manifest.json`).
    pub file: String,
    pub bytes: u64,
    /// Of the file, lower-case hex.
    pub sha256: String,
    /// The highest order id in the backup (0: none); every order up to it is in it.
    pub last_order_id: u64,
    /// The newest event's seq in the backup (0: none).
    pub event_seq: u64,
    pub created_at: String,
}

/// A backup's manifest as the API shows it.
pub fn backup(m: &orderflow_actors::store::Manifest) -> BackupJson {
    BackupJson {
        file: m.file.display().to_string(),
        bytes: m.bytes,
        sha256: m.sha256.clone(),
        last_order_id: m.last_order_id,
        event_seq: m.event_seq,
        created_at: m.created_at.clone(),
    }
}

/// One rejected row of an import.
#[derive(Debug, Serialize, ToSchema)]
pub struct RejectJson<'a> {
    pub line: u64,
    pub reason: &'a str,
    /// The row as written (at most 2 KiB).
    pub raw: &'a str,
}

/// An import job: its file, where its load stands and how it ended.
///
/// The documentation of [`JobView`], which the API and the reports serialize
/// (the actors crate, which writes the reports, knows nothing of OpenAPI). Never
/// built: `the_job_schema_has_the_shape_the_actors_give` keeps its properties
/// equal to what a `JobView` serializes.
#[derive(Debug, ToSchema)]
#[schema(as = Job)]
#[allow(dead_code)]
pub struct JobJson {
    pub id: u64,
    /// The name the file was dropped or uploaded under.
    pub file_name: String,
    /// `products`, `orders` or `inventory`; null when it could not be told.
    #[schema(nullable = true, value_type = Option<String>)]
    pub kind: Option<&'static str>,
    /// `csv`, `jsonl` or `json`, with `.gz` when compressed.
    pub format: Option<String>,
    /// SHA-256 of the file's bytes, hex.
    pub sha256: Option<String>,
    pub bytes: u64,
    /// Bytes read by the last committed batch (all of them once completed): with
    /// `bytes_total`, the job's progress.
    pub bytes_read: u64,
    /// The file's size once the job started (the same as `bytes`; 0 before).
    pub bytes_total: u64,
    /// `queued`, `running`, `completed`, `failed` or `duplicate`.
    #[schema(value_type = String)]
    pub status: &'static str,
    pub dry_run: bool,
    pub rows_read: u64,
    /// Rows loaded (for a dry run: rows that would load).
    pub rows_loaded: u64,
    pub rows_rejected: u64,
    /// Rows loaded with something left out rather than refused (a Shopify
    /// barcode that is not a GTIN is dropped from its product).
    pub warnings: u64,
    /// Rejected rows by reason code (`price_not_positive`, …).
    pub rejects_by_reason: std::collections::BTreeMap<String, u64>,
    pub created_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    /// Why the whole file failed.
    pub error: Option<String>,
    /// For a duplicate: the job that loaded the same bytes.
    pub duplicate_of: Option<u64>,
}

/// A job as the API shows it (documented as [`JobJson`]).
pub fn job(j: &Job) -> JobView {
    j.view()
}

/// One event of the feed (and the body of a webhook delivery).
#[derive(Debug, Serialize, ToSchema)]
pub struct EventJson {
    /// Opaque and unique forever: receivers dedupe on it (`webhook-id`).
    pub id: String,
    /// Grows strictly in commit order.
    pub seq: u64,
    /// `product.created`, `order.placed`, … (see docs/integrations.md).
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub created_at: String,
    /// The resource after the change, as the API shows it (Product, Movement, Order
    /// or Job); an order's status change also carries `previous_status`.
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
}

/// An event as the API shows it.
pub fn event(e: &Event, currency: &Currency) -> Result<EventJson, CodecError> {
    let data = match resource::of(e)? {
        Resource::Product(p) => serde_json::to_value(product(&p, currency)),
        Resource::Movement(m) => serde_json::to_value(movement(&m)),
        Resource::Order {
            order: o,
            previous_status,
        } => serde_json::to_value(order(&o)).map(|mut v| {
            if let (Some(prev), Some(obj)) = (previous_status, v.as_object_mut()) {
                obj.insert("previous_status".into(), prev.as_str().into());
            }
            v
        }),
        Resource::Job(j) => serde_json::to_value(job(&j)),
    }
    .expect("API JSON serializes");
    Ok(EventJson {
        id: e.id(),
        seq: e.seq,
        kind: e.row.kind.as_str(),
        created_at: e.row.at.to_rfc3339(),
        data,
    })
}

/// A page of the events feed.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventPageJson {
    /// Oldest first.
    pub items: Vec<EventJson>,
    /// Pass it back as `after` for the next page (it moves past events a `type`
    /// filter skipped, too).
    pub next_after: u64,
}

/// The answer to an upload.
#[derive(Debug, Serialize, ToSchema)]
pub struct UploadAccepted {
    #[schema(value_type = JobJson)]
    pub job: JobView,
}

pub fn page<T: Serialize>(items: Vec<T>, next_cursor: Option<String>) -> PageJson<T> {
    PageJson { items, next_cursor }
}

/// First byte of every cursor, so that random base64 is not mistaken for one.
const CURSOR_TAG: u8 = 0xC5;

/// Cursors are opaque to clients: a tag byte and postcard bytes, in URL-safe base64.
pub fn encode_cursor<T: Serialize>(cursor: &T) -> String {
    let bytes = postcard::to_extend(cursor, vec![CURSOR_TAG]).expect("cursor serializes");
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The value inside a cursor this API issued; `None` for anything else.
pub fn decode_cursor<T: DeserializeOwned>(raw: &str) -> Option<T> {
    URL_SAFE_NO_PAD
        .decode(raw)
        .ok()
        .and_then(|bytes| match bytes.split_first() {
            Some((&CURSOR_TAG, rest)) => match postcard::take_from_bytes::<T>(rest) {
                Ok((value, [])) => Some(value),
                _ => None,
            },
            _ => None,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use orderflow_actors::domain::{JobId, Timestamp};
    use orderflow_actors::inbox::{JobRow, JobStatus, Origin};

    /// The documented `Job` is exactly what reports and the API serialize.
    #[test]
    fn the_job_schema_has_the_shape_the_actors_give() {
        let job = Job {
            id: JobId(7),
            row: JobRow {
                file_name: "products.csv".into(),
                work_path: "/x".into(),
                origin: Origin::Inbox,
                file_type: None,
                sha256: Some([1; 32]),
                bytes: 10,
                status: JobStatus::Failed,
                dry_run: false,
                rows_read: 3,
                rows_loaded: 2,
                rows_rejected: 1,
                rejects_by_code: Default::default(),
                failed_order_ref: None,
                created_at: Timestamp(0),
                started_at: Some(Timestamp(1)),
                finished_at: Some(Timestamp(2)),
                error: Some("bad".into()),
                duplicate_of: Some(JobId(3)),
                final_name: None,
                bytes_read: 4,
                warnings: 0,
            },
        };
        let serialized = serde_json::to_value(super::job(&job)).unwrap();
        let fields: Vec<&String> = serialized.as_object().unwrap().keys().collect();
        let spec: serde_json::Value = serde_json::from_str(crate::api::openapi::spec()).unwrap();
        let documented: Vec<&String> = spec["components"]["schemas"]["Job"]["properties"]
            .as_object()
            .expect("the Job schema lists its properties")
            .keys()
            .collect();
        assert_eq!(fields, documented);
    }
}
