//! The HTTP API, one file per resource. Handlers turn requests into domain values
//! (through the newtypes' constructors), ask an actor, and turn the answer into JSON;
//! status codes for failures are chosen in `crate::error` only.

pub mod apikeys;
pub mod auth;
pub mod backup;
pub mod console;
pub mod events;
pub mod groups;
pub mod imports;
pub mod json;
pub mod openapi;
pub mod ops;
pub mod orders;
pub mod products;
pub mod resource;
pub mod routes;
pub mod search;
pub mod strict;
pub mod webhooks;

use actix_web::{HttpResponse, web};

use crate::error::ApiError;

/// Every route of the service, recorded as it is built: the `/api/v1` routes and
/// the operations routes at the root.
pub fn route_sets() -> (routes::Routes, routes::Routes) {
    let mut v1 = routes::Routes::new("/api/v1");
    auth::routes(&mut v1);
    products::routes(&mut v1);
    groups::routes(&mut v1);
    search::routes(&mut v1);
    orders::routes(&mut v1);
    imports::routes(&mut v1);
    events::routes(&mut v1);
    apikeys::routes(&mut v1);
    webhooks::routes(&mut v1);
    backup::routes(&mut v1);
    let mut root = routes::Routes::new("");
    ops::routes(&mut root);
    console::routes(&mut root);
    (v1, root)
}

/// `(method, path)` of every route the server registers.
pub fn route_table() -> Vec<(actix_web::http::Method, String)> {
    let (v1, root) = route_sets();
    v1.table.into_iter().chain(root.table).collect()
}

/// Registers every route of the service.
pub fn routes(cfg: &mut web::ServiceConfig) {
    let (v1, root) = route_sets();
    let mut scope = web::scope("/api/v1");
    for service in v1.into_services() {
        scope = scope.service(service);
    }
    cfg.service(scope);
    for service in root.into_services() {
        cfg.service(service);
    }
}

/// Unknown routes get a 404 problem.
pub async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::route_not_found())
}
