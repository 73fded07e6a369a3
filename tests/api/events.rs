//! The product-events flow end to end: the products service's outbox, the bus,
//! and the carts service's consumer keeping denormalized lines fresh; and carts
//! under concurrent adds.

use std::time::Duration;

use agora::carts::domain::CartLine;
use agora::contracts::product_events::{EventType, ProductEvent};
use agora::kernel::money::Money;
use agora::ports::events::Record;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{EVENT_BOUND, TestApp, eventually, spawn_app};

fn id(v: &Value) -> Uuid {
    Uuid::parse_str(v["id"].as_str().unwrap()).unwrap()
}

async fn lines(app: &TestApp, user: Uuid) -> Vec<CartLine> {
    app.app.adapters.carts.lines(user).await.unwrap()
}

#[tokio::test]
async fn an_update_rewrites_the_denormalized_fields_of_every_line() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let product = app.create_product(&admin, "Lamp", 10.00, 50).await;
    let (alice, a) = app.register("Alice").await;
    let (bob, b) = app.register("Bob").await;
    for token in [&alice, &bob] {
        app.post("/api/cart/add", Some(token), json!({"productId": product["id"], "quantity": 2})).await.expect(200);
    }
    let path = format!("/api/products/{}", product["id"].as_str().unwrap());
    app.put(
        &path,
        Some(&admin),
        json!({"price": 12.5, "name": "Lamp II", "imageUrl": "https://img.example.com/2.jpg"}),
    )
    .await
    .expect(200);
    for user in [id(&a), id(&b)] {
        assert!(
            eventually(EVENT_BOUND, || async {
                let l = lines(&app, user).await;
                l.len() == 1 && l[0].price == Money::from_cents(1250) && l[0].name == "Lamp II"
            })
            .await,
            "the line was rewritten"
        );
        let line = &lines(&app, user).await[0];
        assert_eq!(line.price_at_add, Money::from_cents(1000));
        assert_eq!(line.image_url.as_deref(), Some("https://img.example.com/2.jpg"));
        assert_eq!(line.product_version, 2);
    }
    let cart = app.cart(&alice).await;
    assert_eq!(cart["items"][0]["unitPrice"], json!(12.5));
    assert_eq!(cart["items"][0]["priceAtAdd"], json!(10));
    assert_eq!(cart["items"][0]["priceChanged"], json!(true));
    assert_eq!(cart["subtotal"], json!(25));
}

#[tokio::test]
async fn a_deletion_removes_the_lines() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let gone = app.create_product(&admin, "Gone", 5.0, 5).await;
    let kept = app.create_product(&admin, "Kept", 7.0, 5).await;
    let (token, user) = app.register("Cleo").await;
    for p in [&gone, &kept] {
        app.post("/api/cart/add", Some(&token), json!({"productId": p["id"]})).await.expect(200);
    }
    app.delete(&format!("/api/products/{}", gone["id"].as_str().unwrap()), Some(&admin)).await.expect(200);
    assert!(eventually(EVENT_BOUND, || async { lines(&app, id(&user)).await.len() == 1 }).await);
    let cart = app.cart(&token).await;
    assert_eq!(cart["items"].as_array().unwrap().len(), 1);
    assert_eq!(cart["items"][0]["name"], "Kept");
}

#[tokio::test]
async fn updates_made_while_the_consumer_is_stopped_are_all_applied_after_restart() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let product = app.create_product(&admin, "Clock", 1.00, 10).await;
    let (token, user) = app.register("Dan").await;
    app.post("/api/cart/add", Some(&token), json!({"productId": product["id"]})).await.expect(200);
    app.app.stop_consumer().await;
    let path = format!("/api/products/{}", product["id"].as_str().unwrap());
    for i in 1..=100 {
        let price = f64::from(100 + i) / 100.0;
        app.put(&path, Some(&admin), json!({"price": price})).await.expect(200);
    }
    // Let the relay publish everything; the stopped consumer must not move.
    assert!(eventually(EVENT_BOUND, || async { app.app.adapters.outbox.pending().await.unwrap() == 0 }).await);
    assert_eq!(lines(&app, id(&user)).await[0].product_version, 1);
    app.app.start_consumer().await;
    assert!(
        eventually(EVENT_BOUND, || async {
            let l = lines(&app, id(&user)).await;
            l[0].product_version == 101 && l[0].price == Money::from_cents(200)
        })
        .await,
        "all 100 updates were applied: {:?}",
        lines(&app, id(&user)).await
    );
}

#[tokio::test]
async fn replaying_the_topic_from_the_start_leaves_the_same_state() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let (token, user) = app.register("Eli").await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let p = app.create_product(&admin, &format!("R{i}"), 3.0, 20).await;
        app.post("/api/cart/add", Some(&token), json!({"productId": p["id"], "quantity": i + 1})).await.expect(200);
        ids.push(p["id"].as_str().unwrap().to_string());
    }
    for (i, pid) in ids.iter().enumerate() {
        app.put(&format!("/api/products/{pid}"), Some(&admin), json!({"price": 4.0 + i as f64})).await.expect(200);
    }
    app.delete(&format!("/api/products/{}", ids[0]), Some(&admin)).await.expect(200);
    assert!(
        eventually(EVENT_BOUND, || async {
            let l = lines(&app, id(&user)).await;
            l.len() == 4 && l.iter().all(|l| l.product_version == 2)
        })
        .await
    );
    let before = lines(&app, id(&user)).await;
    let group = format!("replay-{}", Uuid::new_v4());
    let mut replay = app.app.adapters.bus.subscribe(&app.config.kafka.topic, &group).await.unwrap();
    let mut seen = 0;
    // A new group starts at the beginning: all 11 events (5 creates, 5 updates, 1 delete).
    while seen < 11 {
        let record =
            tokio::time::timeout(EVENT_BOUND, replay.next()).await.expect("the replay gets every event").unwrap();
        app.app.cart_events.handle(&record).await.unwrap();
        replay.commit(&record).await.unwrap();
        seen += 1;
    }
    let extra = tokio::time::timeout(Duration::from_millis(500), replay.next()).await;
    assert!(extra.is_err(), "no event beyond the 11");
    replay.close().await;
    assert_eq!(lines(&app, id(&user)).await, before);
}

#[tokio::test]
async fn an_older_version_changes_nothing() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let product = app.create_product(&admin, "Vase", 9.0, 5).await;
    let (token, user) = app.register("Flo").await;
    let path = format!("/api/products/{}", product["id"].as_str().unwrap());
    app.put(&path, Some(&admin), json!({"price": 11.0})).await.expect(200);
    let v2 = app.get(&path, None).await.expect(200).data().clone();
    app.post("/api/cart/add", Some(&token), json!({"productId": product["id"]})).await.expect(200);
    let before = lines(&app, id(&user)).await;
    assert_eq!(before[0].product_version, 2);
    // A late duplicate of version 1 (as after a relay crash) arrives.
    let stale = ProductEvent {
        event_id: Uuid::new_v4(),
        event_type: EventType::ProductUpdated,
        occurred_at: chrono::Utc::now(),
        version: 1,
        data: json!({"id": product["id"], "name": "Old name", "price": 9.0, "stock": 5, "imageUrl": null, "version": 1,
            "description": "", "category": "test", "createdAt": v2["createdAt"], "updatedAt": v2["createdAt"]}),
    };
    let record = Record {
        topic: app.config.kafka.topic.clone(),
        partition: 0,
        offset: 0,
        key: product["id"].as_str().unwrap().into(),
        payload: serde_json::to_vec(&stale).unwrap(),
        headers: Vec::new(),
    };
    app.app.cart_events.handle(&record).await.unwrap();
    assert_eq!(lines(&app, id(&user)).await, before);
    // The same event twice is absorbed too.
    let fresh = ProductEvent { version: 3, event_type: EventType::ProductUpdated, ..stale.clone() };
    let mut fresh_data = fresh.clone();
    fresh_data.data["version"] = json!(3);
    fresh_data.data["name"] = json!("New name");
    let record = Record { payload: serde_json::to_vec(&fresh_data).unwrap(), ..record };
    app.app.cart_events.handle(&record).await.unwrap();
    app.app.cart_events.handle(&record).await.unwrap();
    let after = lines(&app, id(&user)).await;
    assert_eq!(after[0].name, "New name");
    assert_eq!(after[0].product_version, 3);
}

#[tokio::test]
async fn parallel_adds_by_one_user_never_lose_an_update() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let product = app.create_product(&admin, "Pen", 1.5, 100).await;
    let (token, _) = app.register("Gil").await;
    let adds = (0..20).map(|_| app.post("/api/cart/add", Some(&token), json!({"productId": product["id"]})));
    for r in futures::future::join_all(adds).await {
        r.expect(200);
    }
    let cart = app.cart(&token).await;
    assert_eq!(cart["items"][0]["quantity"], 20);
    assert_eq!(cart["itemCount"], 20);
    assert_eq!(cart["subtotal"], json!(30));
}

#[tokio::test]
async fn parallel_adds_over_the_stock_never_exceed_it() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let product = app.create_product(&admin, "Rare", 100.0, 5).await;
    let (token, _) = app.register("Hap").await;
    let adds = (0..20).map(|_| app.post("/api/cart/add", Some(&token), json!({"productId": product["id"]})));
    let replies = futures::future::join_all(adds).await;
    let ok = replies.iter().filter(|r| r.status == 200).count();
    let refused = replies.iter().filter(|r| r.status == 409 && r.body["code"] == "INSUFFICIENT_STOCK").count();
    assert_eq!((ok, refused), (5, 15));
    assert_eq!(app.cart(&token).await["items"][0]["quantity"], 5);
}
