//! The framework's ceiling on this machine: a bare actix-web handler that returns a
//! fixed JSON body (the bytes of a real product response), with the same worker
//! count as orderflow. `GET /api/v1/products/{sku}` on orderflow is compared to
//! `GET /product` here, in the same run. It is also the webhook receiver of the
//! delivery benchmarks: `POST /hook` reads the body and answers 204 at once, and
//! notes the delivery's lag (now − the event's `created_at`, in milliseconds);
//! `GET /hook/stats` answers `{count, p50_ms, p99_ms, max_ms}` of the lags noted
//! since the last `DELETE /hook/stats`.

// Bench data is small and known: casts between its integer types cannot lose anything.
#![allow(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap
)]

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use actix_web::{App, HttpResponse, HttpServer, web};
use clap::Parser;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

#[derive(Parser)]
#[command(about = "Serve a fixed JSON body as fast as actix-web can")]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8090")]
    bind: String,
    /// File whose bytes are the body (a real product response, for a fair size).
    #[arg(long)]
    body_file: PathBuf,
    /// HTTP worker threads (match orderflow's).
    #[arg(long, default_value_t = 2)]
    workers: usize,
}

fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let body = web::Bytes::from(std::fs::read(&args.body_file)?);
    eprintln!("baseline: {} byte body on http://{}", body.len(), args.bind);
    let lags: Arc<Lags> = Arc::default();
    actix_web::rt::System::new().block_on(async move {
        HttpServer::new(move || {
            let body = body.clone();
            App::new()
                .route(
                    "/product",
                    web::get().to(move || {
                        let body = body.clone();
                        async move {
                            HttpResponse::Ok()
                                .content_type("application/json")
                                .body(body)
                        }
                    }),
                )
                .app_data(web::Data::from(lags.clone()))
                .route("/hook", web::post().to(hook))
                .route("/hook/stats", web::get().to(stats))
                .route("/hook/stats", web::delete().to(reset))
        })
        .workers(args.workers)
        .bind(&args.bind)?
        .run()
        .await
    })
}

/// Delivery lags noted by `POST /hook`, in milliseconds.
type Lags = Mutex<Vec<i64>>;

async fn hook(body: web::Bytes, lags: web::Data<Lags>) -> HttpResponse {
    let now = OffsetDateTime::now_utc();
    let created = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| OffsetDateTime::parse(v["created_at"].as_str()?, &Rfc3339).ok());
    if let Some(created) = created {
        let lag = (now - created).whole_milliseconds() as i64;
        lags.lock().unwrap().push(lag);
    }
    HttpResponse::NoContent().finish()
}

async fn stats(lags: web::Data<Lags>) -> HttpResponse {
    let mut l = lags.lock().unwrap().clone();
    l.sort_unstable();
    let at = |q: f64| l.get(((l.len() as f64 * q) as usize).min(l.len().saturating_sub(1)));
    HttpResponse::Ok().json(json!({
        "count": l.len(),
        "p50_ms": at(0.5),
        "p99_ms": at(0.99),
        "max_ms": l.last(),
    }))
}

async fn reset(lags: web::Data<Lags>) -> HttpResponse {
    lags.lock().unwrap().clear();
    HttpResponse::NoContent().finish()
}
