//! Several `orderflow serve` nodes on one PostgreSQL database act as one service
//! (contract §6): whichever node a request reaches, the same rules hold.
//!
//! Each test starts its nodes in this process on one fresh database (on the run's
//! PostgreSQL primary with its synchronous standby, or on a server of its own).

use std::collections::BTreeSet;
use std::time::Duration;

use futures_util::future::join_all;
use serde_json::{Value, json};

use crate::helpers::{ADMIN_PASSWORD, TestApp, spawn_node, spawn_nodes};

fn refresh_token(reply: &crate::helpers::Reply) -> String {
    reply.body["refresh_token"].as_str().unwrap().to_owned()
}

#[actix_web::test]
async fn nodes_starting_together_create_one_admin_and_share_one_jwt_secret() {
    let db = std::sync::Arc::new(crate::pg::database().await);
    // No --jwt-secret: the nodes must agree on the one generated into the database.
    let nodes = join_all((0..3).map(|_| {
        spawn_node(Some(std::sync::Arc::clone(&db)), |args| {
            args.jwt_secret = None;
        })
    }))
    .await;
    // Each logged in as admin with the one password while starting; a token any
    // node signed is accepted by every other.
    for signer in &nodes {
        for checker in &nodes {
            checker
                .get("/api/v1/me", Some(&signer.admin_token))
                .await
                .assert_status(200);
        }
    }
    let me = nodes[0]
        .get("/api/v1/me", Some(&nodes[2].admin_token))
        .await;
    assert_eq!(me.body["username"], "admin");
    // One admin account: registering "admin" anywhere is a conflict, and the
    // bootstrap password is the only one that logs in.
    nodes[1]
        .register("admin")
        .await
        .assert_problem(409, "user-exists");
    nodes[2]
        .login_reply("admin", "not-the-password")
        .await
        .assert_status(401);
    nodes[2].login("admin", ADMIN_PASSWORD).await;
}

#[actix_web::test]
async fn a_username_registered_on_one_node_is_taken_on_every_other_even_at_once() {
    let nodes = spawn_nodes(3).await;
    nodes[0].register("alice").await.assert_status(201);
    nodes[1]
        .register("alice")
        .await
        .assert_problem(409, "user-exists");
    nodes[2]
        .register("ALICE")
        .await
        .assert_problem(409, "user-exists");
    // Ten rounds of the same new name sent to all three nodes at once: one account.
    for round in 0..10 {
        let name = format!("racer{round}");
        let replies = join_all(nodes.iter().map(|n| n.register(&name))).await;
        let created = replies.iter().filter(|r| r.status == 201).count();
        let taken = replies
            .iter()
            .filter(|r| {
                r.status == 409
                    && r.body["type"].as_str().unwrap_or_default() == "/problems/user-exists"
            })
            .count();
        assert_eq!(
            (created, taken),
            (1, 2),
            "round {round}: {:?}",
            replies.iter().map(|r| &r.body).collect::<Vec<_>>()
        );
        for node in &nodes {
            node.login(&name, "password-123").await;
        }
    }
}

#[actix_web::test]
async fn a_refresh_token_rotated_on_one_node_and_reused_on_another_revokes_the_family() {
    let nodes = spawn_nodes(3).await;
    nodes[0].register("alice").await.assert_status(201);
    let first = refresh_token(&nodes[0].login_reply("alice", "password-123").await);
    let rotated = nodes[1]
        .post(
            "/api/v1/auth/refresh",
            None,
            json!({"refresh_token": first}),
        )
        .await;
    rotated.assert_status(200);
    let second = refresh_token(&rotated);
    // The spent token comes back on a third node: refused, and the family is gone.
    nodes[2]
        .post(
            "/api/v1/auth/refresh",
            None,
            json!({"refresh_token": first}),
        )
        .await
        .assert_problem(401, "unauthorized");
    for node in &nodes {
        node.post(
            "/api/v1/auth/refresh",
            None,
            json!({"refresh_token": second}),
        )
        .await
        .assert_problem(401, "unauthorized");
    }
    // The same token presented on all three nodes at once: one rotation,
    // and then the family is revoked (the rotation row is locked, never raced).
    for _ in 0..5 {
        let token = refresh_token(&nodes[0].login_reply("alice", "password-123").await);
        let replies = join_all(nodes.iter().map(|n| {
            n.post(
                "/api/v1/auth/refresh",
                None,
                json!({"refresh_token": token}),
            )
        }))
        .await;
        let winners: Vec<&crate::helpers::Reply> =
            replies.iter().filter(|r| r.status == 200).collect();
        assert_eq!(winners.len(), 1, "exactly one rotation");
        assert_eq!(replies.iter().filter(|r| r.status == 401).count(), 2);
        for winner in winners {
            nodes[1]
                .post(
                    "/api/v1/auth/refresh",
                    None,
                    json!({"refresh_token": refresh_token(winner)}),
                )
                .await
                .assert_problem(401, "unauthorized");
        }
    }
}

#[actix_web::test]
async fn two_hundred_buyers_over_three_nodes_take_exactly_fifty_units() {
    let nodes = spawn_nodes(3).await;
    nodes[0].create_product("HOT-1", 250, 50).await;
    let mut buyers = Vec::new();
    for i in 0..200 {
        let node = &nodes[i % 3];
        let r = node.register(&format!("buyer{i}")).await;
        r.assert_status(201);
        buyers.push((node, node.login(&format!("buyer{i}"), "password-123").await));
    }
    let replies =
        join_all(buyers.iter().map(|(node, token)| {
            node.checkout(token, json!([{"sku": "HOT-1", "quantity": 1}]), None)
        }))
        .await;
    let placed = replies.iter().filter(|r| r.status == 201).count();
    let short = replies
        .iter()
        .filter(|r| r.status == 409 && r.body["type"] == "/problems/insufficient-stock")
        .count();
    assert_eq!((placed, short), (50, 150));
    let ids: BTreeSet<u64> = replies
        .iter()
        .filter(|r| r.status == 201)
        .map(|r| r.body["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids.len(), 50, "every order its own id");
    for node in &nodes {
        assert_eq!(node.stock_of("HOT-1").await, 0);
        let report = node.verify_ledger().await;
        assert_eq!(report["problems"], json!([]), "{report}");
    }
    let orders = nodes[1]
        .get("/api/v1/orders?limit=100", Some(&nodes[1].admin_token))
        .await;
    orders.assert_status(200);
    assert_eq!(orders.body["items"].as_array().unwrap().len(), 50);
}

#[actix_web::test]
async fn one_idempotency_key_sent_twenty_one_times_across_nodes_makes_one_order() {
    let nodes = spawn_nodes(3).await;
    nodes[0].create_product("KEY-1", 100, 1_000).await;
    nodes[0].register("carol").await.assert_status(201);
    let token = nodes[0].login("carol", "password-123").await;
    for round in 0..5 {
        let key = format!("order-{round}");
        let replies = join_all((0..21).map(|i| {
            nodes[i % 3].checkout(&token, json!([{"sku": "KEY-1", "quantity": 1}]), Some(&key))
        }))
        .await;
        let ids: BTreeSet<u64> = replies
            .iter()
            .filter(|r| r.status == 201)
            .map(|r| r.body["id"].as_u64().unwrap())
            .collect();
        assert_eq!(ids.len(), 1, "round {round}: one order, replayed");
        for r in &replies {
            assert!(
                r.status == 201
                    || (r.status == 409 && r.body["type"] == "/problems/idempotency-in-flight"),
                "round {round}: {} {}",
                r.status,
                r.body
            );
        }
    }
    assert_eq!(nodes[2].stock_of("KEY-1").await, 1_000 - 5);
}

/// Reads the whole feed from `node` by following `next_after`, with long polls.
async fn tail(node: &TestApp, want: usize) -> Vec<Value> {
    let mut seen = Vec::new();
    let mut after = 0;
    for _ in 0..2_000 {
        if seen.len() >= want {
            break;
        }
        let page = node
            .get(
                &format!("/api/v1/events?after={after}&limit=50&wait=5"),
                Some(&node.admin_token),
            )
            .await;
        page.assert_status(200);
        for e in page.body["items"].as_array().unwrap() {
            let seq = e["seq"].as_u64().unwrap();
            assert_eq!(seq, after + 1, "the feed skipped or repeated a seq");
            after = seq;
            seen.push(e.clone());
        }
    }
    seen
}

#[actix_web::test]
async fn the_feed_tailed_on_one_node_while_three_commit_misses_nothing() {
    let nodes = spawn_nodes(3).await;
    let skus: Vec<String> = (0..3).map(|n| format!("FEED-{n}")).collect();
    for (node, sku) in nodes.iter().zip(&skus) {
        node.create_product(sku, 100, 0).await;
    }
    let before = nodes[0].all_events().await.len();
    let per_node = 40;
    let reader = tail(&nodes[0], before + 3 * per_node);
    let writers = join_all(nodes.iter().enumerate().map(|(n, node)| {
        let sku = skus[n % skus.len()].clone();
        async move {
            for _ in 0..per_node {
                node.post(
                    &format!("/api/v1/products/{sku}/stock"),
                    Some(&node.admin_token),
                    json!({"delta": 1, "reason": "restock"}),
                )
                .await
                .assert_status(201);
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }
    }));
    let (seen, _) = tokio::join!(reader, writers);
    assert_eq!(seen.len(), before + 3 * per_node);
    let ids: BTreeSet<&str> = seen.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), seen.len(), "no event twice");
}

#[actix_web::test]
async fn backups_answer_501_on_postgresql() {
    let nodes = spawn_nodes(1).await;
    let node = &nodes[0];
    node.post("/api/v1/admin/backup", Some(&node.admin_token), json!({}))
        .await
        .assert_problem(501, "not-on-this-backend");
}

#[actix_web::test]
async fn an_api_key_made_on_one_node_opens_every_node_until_revoked_on_any() {
    let nodes = spawn_nodes(3).await;
    let made = nodes[0]
        .post(
            "/api/v1/api-keys",
            Some(&nodes[0].admin_token),
            json!({"name": "shared", "scopes": ["events:read"]}),
        )
        .await;
    made.assert_status(201);
    let key = made.body["key"].as_str().unwrap().to_owned();
    let id = made.body["id"].as_u64().unwrap();
    for node in &nodes {
        node.get("/api/v1/events?limit=1", Some(&key))
            .await
            .assert_status(200);
        // Its scope only.
        node.get("/api/v1/orders", Some(&key))
            .await
            .assert_status(403);
    }
    let listed = nodes[2]
        .get("/api/v1/api-keys", Some(&nodes[2].admin_token))
        .await;
    listed.assert_status(200);
    assert_eq!(
        listed.body["items"].as_array().map(Vec::len),
        Some(1),
        "{}",
        listed.body
    );
    nodes[1]
        .call(
            reqwest::Method::DELETE,
            &format!("/api/v1/api-keys/{id}"),
            Some(&nodes[1].admin_token),
            None,
        )
        .await
        .assert_status(204);
    for node in &nodes {
        node.get("/api/v1/events?limit=1", Some(&key))
            .await
            .assert_problem(401, "unauthorized");
    }
}

#[actix_web::test]
async fn a_node_whose_connections_are_cut_serves_again_by_itself() {
    let nodes = spawn_nodes(1).await;
    let node = &nodes[0];
    let url = node._db.as_ref().unwrap().url.clone();
    node.create_product("CUT-1", 100, 100).await;
    let (_, token) = node.customer("dave").await;
    let db = orderflow_actors::pg::connect(&url).await.unwrap();
    let mut placed = BTreeSet::new();
    for round in 0..3 {
        // Every connection of the node: its ledger's, its pool's, its listener's.
        let cut: i64 = db
            .query_one(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
                 WHERE datname = current_database() AND pid <> pg_backend_pid()",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert!(cut >= 1, "round {round}: no connection of the node was cut");
        let mut served = false;
        for _ in 0..100 {
            let r = node
                .checkout(&token, json!([{"sku": "CUT-1", "quantity": 1}]), None)
                .await;
            match r.status.as_u16() {
                201 => {
                    placed.insert(r.body["id"].as_u64().unwrap());
                    served = true;
                    break;
                }
                // Refused while reconnecting: retryable, nothing written.
                503 => assert!(r.header("retry-after").is_some(), "{}", r.body),
                other => panic!("round {round}: {other} {}", r.body),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(served, "round {round}: the node never served again");
    }
    node.get("/readyz", None).await.assert_status(200);
    assert_eq!(node.stock_of("CUT-1").await, 100 - placed.len() as u64);
    let report = node.verify_ledger().await;
    assert_eq!(report["problems"], json!([]), "{report}");
}

#[actix_web::test]
async fn one_node_delivers_each_event_once_and_another_takes_over_when_it_stops() {
    use crate::webhooks::{accepted, register, start_receiver, until};
    let mut nodes = crate::helpers::spawn_nodes_with(3, |a| {
        a.webhook_allow_private = true;
        a.webhook_retry_unit_ms = 20;
    })
    .await;
    let (url, receiver) = start_receiver();
    let (_, secret) = register(&nodes[1], &url, json!(["order.placed"])).await;
    receiver.lock().unwrap().secrets = vec![secret];
    nodes[0].create_product("HOOK-1", 100, 1_000).await;
    let (_, token) = nodes[0].customer("erin").await;
    let mut placed = Vec::new();
    for i in 0..30 {
        let r = nodes[i % 3]
            .checkout(&token, json!([{"sku": "HOOK-1", "quantity": 1}]), None)
            .await;
        r.assert_status(201);
        placed.push(r.body["id"].as_u64().unwrap());
    }
    until(&receiver, "30 orders delivered", |r| {
        accepted(r).len() >= 30
    })
    .await;
    // Three nodes running, one delivering: nothing arrives twice (two delivering
    // nodes would each send the same events).
    tokio::time::sleep(Duration::from_millis(500)).await;
    let twice = {
        let r = receiver.lock().unwrap();
        r.seen.iter().filter(|s| (200..300).contains(&s.3)).count() - accepted(&r).len()
    };
    assert_eq!(twice, 0, "events sent twice while three nodes run");
    // The nodes one by one stop; whichever held the delivery lock, a survivor
    // takes it over and delivers what comes next.
    for round in 0..2 {
        drop(nodes.remove(0));
        for _ in 0..5 {
            let r = nodes[0]
                .checkout(&token, json!([{"sku": "HOOK-1", "quantity": 1}]), None)
                .await;
            r.assert_status(201);
            placed.push(r.body["id"].as_u64().unwrap());
        }
        let want = placed.len();
        until(
            &receiver,
            &format!("round {round}: every order delivered"),
            |r| accepted(r).len() >= want,
        )
        .await;
    }
    let r = receiver.lock().unwrap();
    assert!(r.seen.iter().all(|s| s.2), "every delivery verifies");
    let delivered: Vec<u64> = accepted(&r)
        .iter()
        .map(|e| e["data"]["id"].as_u64().unwrap())
        .collect();
    assert_eq!(delivered, placed, "each order once, in seq order");
    let seqs: Vec<u64> = accepted(&r)
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
}

/// One variant created twenty-one times across three nodes at once, each time
/// under its own SKU, is one product: the group's advisory lock orders the
/// batches of every node, and the unique index stands behind the rule.
#[actix_web::test]
async fn one_variant_created_across_nodes_at_once_is_one_product() {
    let nodes = spawn_nodes(3).await;
    for round in 0..3 {
        let replies = join_all((0..21).map(|i| {
            let node = &nodes[i % 3];
            node.post(
                "/api/v1/products",
                Some(&node.admin_token),
                json!({"sku": format!("V{round}-{i}"), "name": "Tee", "price_cents": 100,
                       "group": format!("tee-{round}"), "options": {"Size": "M"}}),
            )
        }))
        .await;
        let created = replies.iter().filter(|r| r.status == 201).count();
        let taken = replies
            .iter()
            .filter(|r| r.status == 409 && r.body["type"] == "/problems/variant-exists")
            .count();
        assert_eq!((created, taken), (1, 20), "round {round}");
        let listed = nodes[round % 3]
            .get(&format!("/api/v1/products?group=tee-{round}"), None)
            .await;
        assert_eq!(listed.body["items"].as_array().unwrap().len(), 1);
    }
}
