//! How domain values look on the wire. Money is integer minor units plus the store
//! currency; timestamps are RFC 3339 UTC; nothing internal (password hashes, archived
//! flags, storage keys) is ever rendered.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Serialize, de::DeserializeOwned};
use serde_json::{Value, json};

use orderflow_actors::catalog::Product;
use orderflow_actors::domain::Currency;
use orderflow_actors::ledger::book::{Movement, Order};
use orderflow_actors::users::User;

use crate::error::ApiError;

/// A product on the wire.
#[derive(Debug, Serialize)]
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
    }
}

pub fn user(u: &User) -> Value {
    json!({
        "id": u.id.0,
        "username": u.username.as_str(),
        "email": u.email.as_str(),
        "role": u.role.as_str(),
        "created_at": u.created_at.to_rfc3339(),
    })
}

#[derive(Debug, Serialize)]
pub struct OrderLineJson<'a> {
    sku: &'a str,
    name: &'a str,
    unit_price_cents: u64,
    quantity: u32,
    line_total_cents: u64,
}

/// An order on the wire.
#[derive(Debug, Serialize)]
pub struct OrderJson<'a> {
    id: u64,
    user_id: u64,
    status: &'static str,
    items: Vec<OrderLineJson<'a>>,
    total_cents: u64,
    currency: &'a str,
    created_at: String,
    updated_at: String,
    source: String,
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

pub fn movement(m: &Movement) -> Value {
    let r = &m.row;
    json!({
        "seq": m.seq,
        "sku": m.sku.as_str(),
        "kind": r.kind.as_str(),
        "delta": r.delta,
        "stock_after": r.stock_after,
        "order_id": r.order_id.map(|o| o.0),
        "source": r.source.to_string(),
        "reason": r.reason.as_ref().map(|x| x.as_str()),
        "at": r.at.to_rfc3339(),
    })
}

/// `{items, next_cursor}`.
#[derive(Debug, Serialize)]
pub struct PageJson<T> {
    items: Vec<T>,
    next_cursor: Option<String>,
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

pub fn decode_cursor<T: DeserializeOwned>(raw: &str) -> Result<T, ApiError> {
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
        .ok_or_else(|| ApiError::field("cursor", "is not a cursor this API issued"))
}
