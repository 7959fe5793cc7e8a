//! The HTTP API, one file per resource. Handlers turn requests into domain values
//! (through the newtypes' constructors), ask an actor, and turn the answer into JSON;
//! status codes for failures are chosen in `crate::error` only.

pub mod auth;
pub mod extract;
pub mod imports;
pub mod json;
pub mod ops;
pub mod orders;
pub mod products;

use actix_web::{HttpResponse, web};

use crate::error::ApiError;

/// Registers every route of the service.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/api/v1")
            .configure(auth::routes)
            .configure(products::routes)
            .configure(orders::routes)
            .configure(imports::routes),
    )
    .configure(ops::routes);
}

/// Every route answers only its own methods; others get a 405 problem.
pub(crate) fn method_not_allowed() -> actix_web::Route {
    web::route().to(|| async { Err::<HttpResponse, _>(ApiError::method_not_allowed()) })
}

/// Unknown routes get a 404 problem.
pub async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::route_not_found())
}
