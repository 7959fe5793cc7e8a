//! The framework's ceiling on this machine: a bare actix-web handler that returns a
//! fixed JSON body (the bytes of a real product response), with the same worker
//! count as orderflow. `GET /api/v1/products/{sku}` on orderflow is compared to
//! `GET /product` here, in the same run. It is also the webhook receiver of the
//! delivery benchmark: `POST /hook` reads the body and answers 204 at once.

// Bench data is small and known: casts between its integer types cannot lose anything.
#![allow(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap
)]

use std::path::PathBuf;

use actix_web::{App, HttpResponse, HttpServer, web};
use clap::Parser;

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
                .route(
                    "/hook",
                    web::post().to(|_: web::Bytes| async { HttpResponse::NoContent().finish() }),
                )
        })
        .workers(args.workers)
        .bind(&args.bind)?
        .run()
        .await
    })
}
