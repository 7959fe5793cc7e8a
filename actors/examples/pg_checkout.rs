//! Checkout load on the PostgreSQL ledger of one node, without HTTP: `clients`
//! tasks each place one order (one line, one of `skus` hot SKUs) after another
//! for `seconds`, on one `PgLedger` (one connection, group commit). Prints one
//! JSON line. Run by `benches/pg_ledger.sh` beside pgbench on the same database.
//!
//!   cargo run --release -p orderflow-actors --example pg_checkout -- URL [CLIENTS] [SECONDS] [SKUS] [NODES]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use orderflow_actors::catalog::ProductDraft;
use orderflow_actors::domain::{
    Category, Cents, Currency, OrderLines, ProductName, Quantity, Sku, StockLevel, UserId,
};
use orderflow_actors::events::RowEvents;
use orderflow_actors::ledger::CreateProduct;
use orderflow_actors::ledger::products::ProductCommand;
use orderflow_actors::ledger::{OrderRequest, Source};
use orderflow_actors::limits::STOCK_UNITS_MAX;
use orderflow_actors::pg::ledger::{PgLedger, Settings};
use orderflow_actors::pg::{connect, schema};

fn arg(n: usize, default: u64) -> u64 {
    std::env::args()
        .nth(n)
        .map_or(default, |a| a.parse().expect("a number"))
}

#[tokio::main]
async fn main() {
    let url = std::env::args()
        .nth(1)
        .expect("usage: pg_checkout URL [CLIENTS] [SECONDS] [SKUS] [NODES]");
    let clients = arg(2, 64);
    let seconds = arg(3, 10);
    let skus = arg(4, 8);
    let node_count = arg(5, 1);
    let mut nodes = Vec::new();
    for _ in 0..node_count {
        let mut client = connect(&url).await.expect("connect");
        schema::migrate(&mut client).await.expect("migrate");
        nodes.push(PgLedger::start(
            client,
            Settings {
                currency: Currency::EUR,
                batch_max: 256,
                row_events: RowEvents::Summary,
                telemetry: Default::default(),
                reconnect: None,
                node: format!("bench-{}", nodes.len()),
                search_feed: None,
            },
        ));
    }
    let sku = |i: u64| Sku::parse(&format!("H-{i}")).unwrap();
    for i in 0..skus {
        nodes[0]
            .product(ProductCommand::Create(CreateProduct {
                sku: sku(i),
                draft: ProductDraft {
                    attributes: Default::default(),
                    name: ProductName::parse(&format!("Hot {i}")).unwrap(),
                    category: Category::uncategorized(),
                    description: None,
                    price: Cents::new(250).unwrap(),
                },
                stock: Some(StockLevel::new(i64::try_from(STOCK_UNITS_MAX).unwrap()).unwrap()),
            }))
            .await
            .expect("seed");
    }
    let done = Arc::new(AtomicBool::new(false));
    let orders = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let node = nodes[usize::try_from(c % node_count).unwrap()].clone();
        let (done, orders, errors) = (done.clone(), orders.clone(), errors.clone());
        tasks.push(tokio::spawn(async move {
            let mut n = c;
            while !done.load(Ordering::Relaxed) {
                n = n.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                let request = OrderRequest {
                    user: UserId(c + 1),
                    lines: OrderLines::merge([(sku((n >> 33) % skus), Quantity::new(1).unwrap())])
                        .unwrap(),
                    idempotency_key: None,
                    source: Source::Api,
                    external_ref: None,
                    expected_prices: Vec::new(),
                };
                match node.place_order(request).await {
                    Ok(_) => orders.fetch_add(1, Ordering::Relaxed),
                    Err(_) => errors.fetch_add(1, Ordering::Relaxed),
                };
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    done.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.unwrap();
    }
    let elapsed = started.elapsed().as_secs_f64();
    let orders = orders.load(Ordering::Relaxed);
    #[allow(clippy::cast_precision_loss)]
    let rate = orders as f64 / elapsed;
    println!(
        "{{\"nodes\":{node_count},\"clients\":{clients},\"orders\":{orders},\"errors\":{},\"seconds\":{elapsed:.2},\"orders_per_s\":{rate:.0}}}",
        errors.load(Ordering::Relaxed)
    );
}
