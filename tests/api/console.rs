//! The operator console in a real browser: Debian's Chromium, driven through
//! chromedriver (WebDriver, `fantoccini`), against the real server on 127.0.0.1.
//! Screenshots of every view, at 1280×800 and at a phone's 390×844, go to
//! `target/console-screenshots/`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

use crate::helpers::{ADMIN_PASSWORD, spawn_app, spawn_app_with};

const WAIT: Duration = Duration::from_secs(30);
/// WebDriver's key codes.
const ENTER: &str = "\u{E007}";
const ARROW_RIGHT: &str = "\u{E014}";
const TAB: &str = "\u{E004}";

/// chromedriver on a free port, and a headless Chromium session through it.
struct Browser {
    driver: Child,
    client: Client,
    _profile: tempfile::TempDir,
}

impl Browser {
    async fn start() -> Self {
        let driver_bin =
            std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".into());
        let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
        assert!(
            Path::new(&driver_bin).exists() && Path::new(&chromium).exists(),
            "the browser test needs Debian's chromium and chromium-driver ({driver_bin}, {chromium}); `bash .ci/test` installs them"
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = Command::new(&driver_bin)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let profile = tempfile::tempdir().unwrap();
        let caps = json!({
            "goog:chromeOptions": {
                "binary": chromium,
                // The flags this machine's closed network wants (no background
                // connections), headless, and a fresh profile.
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                    format!("--user-data-dir={}", profile.path().display()),
                    "--window-size=1280,800",
                ],
            }
        });
        let caps = match caps {
            Value::Object(map) => map,
            _ => unreachable!(),
        };
        let started = Instant::now();
        let client = loop {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector)
                .capabilities(caps.clone())
                .connect(&format!("http://127.0.0.1:{port}"))
                .await
            {
                Ok(client) => break client,
                Err(e) if started.elapsed() < WAIT => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("no WebDriver session: {e}"),
            }
        };
        Self {
            driver,
            client,
            _profile: profile,
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn screenshots_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/console-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn screenshot(c: &Client, name: &str) {
    let png = c.screenshot().await.unwrap();
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    std::fs::write(screenshots_dir().join(format!("{name}.png")), png).unwrap();
}

async fn wait_for(c: &Client, css: &str) -> fantoccini::elements::Element {
    c.wait()
        .at_most(WAIT)
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css} never appeared: {e}"))
}

/// Waits until `css`'s text contains `text`.
async fn wait_text(c: &Client, css: &str, text: &str) -> String {
    let started = Instant::now();
    loop {
        if let Ok(e) = c.find(Locator::Css(css)).await
            && let Ok(t) = e.text().await
            && t.contains(text)
        {
            return t;
        }
        assert!(started.elapsed() < WAIT, "{css} never said {text:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn click(c: &Client, what: Locator<'_>) {
    c.find(what).await.unwrap().click().await.unwrap();
}

async fn type_into(c: &Client, what: Locator<'_>, text: &str) {
    c.find(what).await.unwrap().send_keys(text).await.unwrap();
}

async fn errors(c: &Client) -> Vec<Value> {
    c.execute("return window.consoleErrors || ['no capture'];", vec![])
        .await
        .unwrap()
        .as_array()
        .cloned()
        .unwrap()
}

async fn view(c: &Client, name: &str) {
    c.find(Locator::Id(&format!("tab-{name}")))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for(c, &format!("#view-{name}:not([hidden])")).await;
}

#[actix_web::test]
async fn the_console_logs_in_uploads_shows_progress_and_rejects_and_moves_an_order() {
    let app = spawn_app_with(|a| a.webhook_allow_private = true).await;
    app.create_product("CON-1", 1250, 10)
        .await
        .assert_status(201);
    let (_, customer) = app.customer("console-customer").await;
    let order = app
        .checkout(&customer, json!([{"sku": "CON-1", "quantity": 2}]), None)
        .await;
    order.assert_status(201);
    let order_id = order.body["id"].as_u64().unwrap();
    let hook = app
        .post(
            "/api/v1/webhooks",
            Some(&app.admin_token),
            json!({"url": "http://127.0.0.1:9/console", "events": ["order.*"]}),
        )
        .await;
    hook.assert_status(201);
    // A file of 3,000 products, two of them bad, to upload through the page.
    let files = tempfile::tempdir().unwrap();
    let csv = files.path().join("products_console.csv");
    let mut text = String::from("sku,name,price,stock\n");
    for i in 0..3_000 {
        text += &format!(
            "CF-{i},Console product {i},{}.50,{}\n",
            i % 90 + 1,
            i % 7 + 20
        );
    }
    text += "CF-BAD-1,Bad price,-3.00,1\nCF-BAD-2,,4.00,1\n";
    std::fs::write(&csv, text).unwrap();

    let browser = Browser::start().await;
    let c = &browser.client;
    c.set_window_size(1280, 800).await.unwrap();
    c.goto(&app.url("/console")).await.unwrap();
    wait_for(c, "#login-form").await;
    screenshot(c, "login-1280").await;

    // Keyboard: from the page's start, Tab reaches the username, then the password.
    c.execute("document.activeElement.blur();", vec![])
        .await
        .unwrap();
    let tab = TAB.chars().next().unwrap();
    c.perform_actions(
        KeyActions::new("keyboard".into())
            .then(KeyAction::Down { value: tab })
            .then(KeyAction::Up { value: tab }),
    )
    .await
    .unwrap();
    let focused = c
        .execute("return document.activeElement.id;", vec![])
        .await
        .unwrap();
    assert_eq!(focused, "username", "Tab reaches the first field");

    // Log in.
    type_into(c, Locator::Id("username"), "admin").await;
    type_into(c, Locator::Id("password"), ADMIN_PASSWORD).await;
    click(c, Locator::Id("login-button")).await;
    wait_for(c, "#tab-imports[aria-selected='true']").await;

    // Imports: the file goes in through the upload view; its bar reaches 100 %.
    type_into(c, Locator::Id("file"), csv.to_str().unwrap()).await;
    wait_for(c, "tr[data-status='completed'] progress[value='100']").await;
    let row = wait_for(c, "tr[data-status='completed']").await;
    let row_text = row.text().await.unwrap();
    assert!(row_text.contains("products_console.csv"), "{row_text}");
    assert!(row_text.contains("3,000"), "3,000 loaded: {row_text}");
    // Its rejects, by reason and line by line.
    wait_for(c, ".reject-reason").await;
    let reasons = wait_text(c, "#job-detail table.reasons", "Reject reason").await;
    assert!(reasons.contains("price_not_positive"), "{reasons}");
    let lines = c
        .find(Locator::Css("#job-detail table.rejects"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(lines.contains("price"), "{lines}");
    assert!(lines.contains("CF-BAD-2"), "{lines}");
    screenshot(c, "imports-1280").await;
    // A dry run through the switch: a job, its counts, nothing loaded.
    let dry = files.path().join("products_dry.csv");
    std::fs::write(&dry, "sku,name,price,stock\nDRY-1,Dry,1.00,1\n").unwrap();
    click(c, Locator::Id("dry-run")).await;
    type_into(c, Locator::Id("file"), dry.to_str().unwrap()).await;
    let dry_row = wait_for(c, "tr[data-status='completed'][data-job='2']").await;
    assert!(dry_row.text().await.unwrap().contains("(dry run)"));
    app.get("/api/v1/products/DRY-1", None)
        .await
        .assert_status(404);
    click(c, Locator::Id("dry-run")).await;

    // Orders: open the order with the keyboard, mark it paid.
    view(c, "orders").await;
    let row = wait_for(c, &format!("tr[data-order='{order_id}']")).await;
    row.send_keys(ENTER).await.unwrap();
    wait_for(c, "button[data-action='paid']")
        .await
        .click()
        .await
        .unwrap();
    wait_text(c, "#order-status-now", "paid").await;
    let stored = app
        .get(
            &format!("/api/v1/orders/{order_id}"),
            Some(&app.admin_token),
        )
        .await;
    assert_eq!(stored.body["status"], "paid");
    // A refused step shows the API's problem as it is: the order ships behind the
    // page's back, then the page's "Cancel order" meets the lifecycle's 409.
    app.post(
        &format!("/api/v1/orders/{order_id}/status"),
        Some(&app.admin_token),
        json!({"status": "shipped"}),
    )
    .await
    .assert_status(200);
    wait_for(c, "button[data-action='cancel']")
        .await
        .click()
        .await
        .unwrap();
    let problem = wait_text(c, "#message.problem", "").await;
    assert!(problem.to_lowercase().contains("shipped"), "{problem}");
    // And the order is shown as it now is.
    wait_text(c, "#order-status-now", "shipped").await;
    screenshot(c, "orders-1280").await;

    // Stock: the low-stock list, and the ledger's verify.
    view(c, "stock").await;
    let threshold = c.find(Locator::Id("threshold")).await.unwrap();
    threshold.clear().await.unwrap();
    threshold.send_keys("8").await.unwrap();
    click(c, Locator::Id("low-refresh")).await;
    wait_for(c, "tr[data-sku='CON-1']").await;
    click(c, Locator::Id("verify")).await;
    wait_text(c, "#verify-report", "Ledger consistent").await;
    // Adjust a SKU's stock with a reason; its movements show it.
    type_into(c, Locator::Id("sku"), "CON-1").await;
    type_into(c, Locator::Id("delta"), "5").await;
    type_into(c, Locator::Id("reason"), "recount").await;
    click(c, Locator::Css("#adjust-form button")).await;
    wait_text(c, "#message.info", "CON-1 now has 13 in stock").await;
    wait_text(c, "#movements", "recount").await;
    assert_eq!(app.stock_of("CON-1").await, 13);
    screenshot(c, "stock-1280").await;

    // Catalog: the category tree with subtree counts; a category lists its
    // products, and a product's group opens with its options and variants.
    for (sku, size) in [("CAT-TEE-S", "S"), ("CAT-TEE-M", "M")] {
        app.post(
            "/api/v1/products",
            Some(&app.admin_token),
            json!({"sku": sku, "name": "Console Tee", "price_cents": 1900, "stock": 3,
                   "category": "Apparel > Tees", "group": "console-tee", "options": {"Size": size}}),
        )
        .await
        .assert_status(201);
    }
    view(c, "catalog").await;
    wait_text(c, "tr[data-category='Apparel'] td.num", "2").await;
    click(c, Locator::Css("tr[data-category='Apparel > Tees']")).await;
    wait_for(c, "#catalog-products tr[data-sku='CAT-TEE-M']").await;
    click(c, Locator::Css("tr[data-sku='CAT-TEE-S'] button")).await;
    wait_text(c, "[data-group='console-tee']", "Size: ").await;
    wait_text(c, "[data-group='console-tee'] table", "CAT-TEE-M").await;
    wait_text(c, "[data-group='console-tee']", "in stock").await;
    // Search: a typo and a prefix find the tees; a category facet narrows them.
    type_into(c, Locator::Id("search-q"), "consle te").await;
    click(c, Locator::Css("#search-form button")).await;
    wait_text(c, "#catalog-title", "2 found").await;
    wait_for(c, "#catalog-products tr[data-sku='CAT-TEE-S']").await;
    wait_text(c, "[data-facet='price']", "1000-2500 (2)").await;
    click(c, Locator::Css("[data-facet='category'] button")).await;
    wait_text(c, "#catalog-title", "in Apparel").await;
    screenshot(c, "catalog-1280").await;

    // Webhooks: the endpoint and its state; a disabled one is re-enabled, and a
    // test event to a receiver that is not there shows its failure.
    let hook_id = hook.body["id"].as_u64().unwrap();
    app.call(
        reqwest::Method::PATCH,
        &format!("/api/v1/webhooks/{hook_id}"),
        Some(&app.admin_token),
        Some(json!({"status": "disabled"})),
    )
    .await
    .assert_status(200);
    view(c, "webhooks").await;
    wait_text(c, "#hooks", "127.0.0.1:9/console").await;
    wait_text(c, &format!("[data-hook='{hook_id}'] .status"), "disabled").await;
    c.find(Locator::XPath("//button[text()='Re-enable']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_text(c, &format!("[data-hook='{hook_id}'] .status"), "enabled").await;
    let stored = app
        .get(
            &format!("/api/v1/webhooks/{hook_id}"),
            Some(&app.admin_token),
        )
        .await;
    assert_eq!(stored.body["status"], "enabled");
    c.find(Locator::XPath("//button[text()='Send test event']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_text(c, "#message", "Test event: failed").await;
    screenshot(c, "webhooks-1280").await;

    // Throughput: two samples make the first point.
    view(c, "throughput").await;
    wait_text(c, "#orders-now", "now").await;
    screenshot(c, "throughput-1280").await;

    // The tabs answer the arrow keys.
    type_into(c, Locator::Id("tab-throughput"), ARROW_RIGHT).await;
    wait_for(c, "#tab-imports[aria-selected='true']").await;

    // A phone: every view again.
    c.set_window_size(390, 844).await.unwrap();
    for name in [
        "imports",
        "orders",
        "stock",
        "catalog",
        "webhooks",
        "throughput",
    ] {
        view(c, name).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let overflow = c
            .execute(
                "return document.documentElement.scrollWidth > window.innerWidth + 1;",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(overflow, json!(false), "{name} scrolls sideways on a phone");
        screenshot(c, &format!("{name}-390")).await;
    }

    assert_eq!(errors(c).await, Vec::<Value>::new(), "the page met errors");

    // An API key instead of an account: what its scope opens works, the rest
    // answers the API's 403 as it is.
    let key = app
        .post(
            "/api/v1/api-keys",
            Some(&app.admin_token),
            json!({"name": "console", "scopes": ["orders:read"]}),
        )
        .await;
    key.assert_status(201);
    c.set_window_size(1280, 800).await.unwrap();
    c.goto(&app.url("/console#orders")).await.unwrap();
    c.refresh().await.unwrap();
    type_into(c, Locator::Id("api-key"), key.body["key"].as_str().unwrap()).await;
    click(c, Locator::Id("key-button")).await;
    wait_for(c, &format!("tr[data-order='{order_id}']")).await;
    view(c, "imports").await;
    wait_text(c, "#message.problem", "Forbidden").await;
    assert_eq!(errors(c).await, Vec::<Value>::new(), "the page met errors");
    browser.client.clone().close().await.unwrap();
}

#[actix_web::test]
async fn the_console_is_self_contained_under_a_strict_policy() {
    let app = spawn_app().await;
    let res = app.client.get(app.url("/console")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let csp = res.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    for part in [
        "default-src 'none'",
        "connect-src 'self'",
        "script-src 'sha256-",
        "style-src 'sha256-",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(part), "{part} in {csp}");
    }
    assert!(!csp.contains("unsafe"), "{csp}");
    let page = res.text().await.unwrap();
    for outside in ["http://", "https://", "//cdn", " src=", "@import", "url("] {
        assert!(!page.contains(outside), "the page refers to {outside}");
    }
    let spec = app.get("/openapi.json", None).await;
    assert!(spec.body["paths"]["/console"]["get"].is_object());
}
