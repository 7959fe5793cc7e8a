//! The operator console: one self-contained page (`console.html`) that logs in with
//! an admin account or an API key and drives the API from the browser.
//!
//! Its Content-Security-Policy allows exactly the page's own script and style, by
//! their SHA-256 (computed once from the page): no inline event handler, no other
//! script, and requests to this origin only.

use std::sync::LazyLock;

use actix_web::HttpResponse;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};

use super::routes::Routes;

/// This resource's part of the OpenAPI document (`openapi.rs` merges them).
#[derive(utoipa::OpenApi)]
#[openapi(paths(console))]
pub struct Doc;

pub fn routes(r: &mut Routes) {
    r.add("/console", |m| m.get(console));
}

const CONSOLE_HTML: &str = include_str!("console.html");

/// The text between `open` and `close` in the page (its one script, its one style).
fn between<'a>(page: &'a str, open: &str, close: &str) -> &'a str {
    let start = page.find(open).expect("the console has the element") + open.len();
    let end = start + page[start..].find(close).expect("the element is closed");
    &page[start..end]
}

fn hash(text: &str) -> String {
    format!(
        "'sha256-{}'",
        STANDARD.encode(Sha256::digest(text.as_bytes()))
    )
}

static CONSOLE_CSP: LazyLock<String> = LazyLock::new(|| {
    let script = hash(between(CONSOLE_HTML, "<script>", "</script>"));
    let style = hash(between(CONSOLE_HTML, "<style>", "</style>"));
    format!(
        "default-src 'none'; script-src {script}; style-src {style}; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
});

/// The operator console (HTML; works offline, loads nothing from elsewhere).
#[utoipa::path(get, operation_id = "ops_console", path = "/console", tag = "operations", security(),
    responses((status = 200, description = "The operator console: one HTML page without external assets", content_type = "text/html", body = String)))]
pub async fn console() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header(("Content-Security-Policy", CONSOLE_CSP.as_str()))
        .insert_header(("X-Frame-Options", "DENY"))
        .insert_header(("Cache-Control", "no-store"))
        .body(CONSOLE_HTML)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_names_the_page_s_one_script_and_one_style() {
        assert_eq!(CONSOLE_HTML.matches("<script").count(), 1);
        assert_eq!(CONSOLE_HTML.matches("<style").count(), 1);
        // No inline handler attributes: the policy would block them.
        for attr in [
            " onclick=",
            " onload=",
            " onsubmit=",
            " onchange=",
            " oninput=",
        ] {
            assert!(!CONSOLE_HTML.contains(attr), "{attr}");
        }
        assert!(CONSOLE_CSP.contains("script-src 'sha256-"));
        assert!(!CONSOLE_CSP.contains("unsafe-inline"));
    }
}
