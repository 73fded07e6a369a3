//! The cart routes (`/api/cart*`) through the gateway: adding, setting and
//! removing lines, exact money, per-user carts, and the lines following the
//! catalogue's changes (via product events).

use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{EVENT_BOUND, Reply, TestApp, assert_shape, eventually, spawn_app};

struct Shop {
    app: TestApp,
    admin: String,
    user: String,
}

async fn shop() -> Shop {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let (user, _) = app.register("Shopper").await;
    Shop { app, admin, user }
}

impl Shop {
    async fn product(&self, name: &str, price: f64, stock: i64) -> String {
        let p = self.app.create_product(&self.admin, name, price, stock).await;
        p["id"].as_str().unwrap().to_string()
    }

    async fn add(&self, body: Value) -> Reply {
        self.app.post("/api/cart/add", Some(&self.user), body).await
    }

    async fn set(&self, product: &str, body: Value) -> Reply {
        self.app.put(&format!("/api/cart/items/{product}"), Some(&self.user), body).await
    }

    async fn remove(&self, product: &str) -> Reply {
        self.app.delete(&format!("/api/cart/items/{product}"), Some(&self.user)).await
    }

    async fn cart(&self) -> Value {
        self.app.cart(&self.user).await
    }
}

/// The cart's line for `product`, if any.
fn line<'a>(cart: &'a Value, product: &str) -> Option<&'a Value> {
    cart["items"].as_array().expect("items").iter().find(|l| l["productId"] == json!(product))
}

/// Money as a number: exact, since the JSON shows at most two decimals.
fn money(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

fn assert_empty(cart: &Value) {
    assert_eq!(cart["items"], json!([]), "{cart:#}");
    assert_eq!(cart["itemCount"], json!(0), "{cart:#}");
    assert_eq!(money(&cart["subtotal"]), 0.0, "{cart:#}");
}

#[track_caller]
fn assert_validation(reply: Reply, field: &str) {
    let reply = reply.expect_error(400, "VALIDATION");
    let details = reply.body["details"].as_array().unwrap_or_else(|| panic!("no details: {:#}", reply.body));
    assert!(details.iter().any(|d| d["field"] == json!(field)), "no detail for {field}: {:#}", reply.body);
}

#[tokio::test]
async fn a_new_cart_is_empty() {
    let s = shop().await;
    let reply = s.app.get("/api/cart", Some(&s.user)).await.expect(200);
    assert_eq!(reply.body["success"], json!(true));
    assert_empty(reply.data());
    assert_eq!(reply.data().as_object().unwrap().len(), 3, "{:#}", reply.data());
}

#[tokio::test]
async fn add_puts_a_priced_line_in_the_cart() {
    let s = shop().await;
    let p = s.product("Headphones", 19.99, 10).await;

    let reply = s.add(json!({ "productId": p })).await.expect(200);
    assert_eq!(reply.body["success"], json!(true));
    let cart = reply.data();
    assert_eq!(
        line(cart, &p).unwrap(),
        &json!({ "productId": p, "name": "Headphones", "imageUrl": "https://img.example.com/p.jpg",
            "quantity": 1, "unitPrice": 19.99, "priceAtAdd": 19.99, "priceChanged": false,
            "available": true, "inStock": true, "lineTotal": 19.99 })
    );
    assert_eq!(cart["itemCount"], json!(1));
    assert_eq!(money(&cart["subtotal"]), 19.99);

    let cart = s.add(json!({ "productId": p, "quantity": 2 })).await.expect(200).data().clone();
    let l = line(&cart, &p).unwrap();
    assert_eq!(l["quantity"], json!(3));
    assert_eq!(money(&l["lineTotal"]), 59.97);
    assert_eq!(cart["itemCount"], json!(3));
    assert_eq!(money(&cart["subtotal"]), 59.97);
    assert_eq!(s.cart().await, cart);
}

#[tokio::test]
async fn subtotal_is_exact_over_several_lines() {
    let s = shop().await;
    let a = s.product("Ten cents", 0.1, 100).await;
    let b = s.product("Twenty cents", 0.2, 100).await;
    let c = s.product("Headphones", 19.99, 100).await;

    s.add(json!({ "productId": a, "quantity": 3 })).await.expect(200);
    s.add(json!({ "productId": b })).await.expect(200);
    let reply = s.add(json!({ "productId": c, "quantity": 7 })).await.expect(200);
    let cart = reply.data();
    assert_eq!(money(&line(cart, &a).unwrap()["lineTotal"]), 0.3);
    assert_eq!(money(&line(cart, &b).unwrap()["lineTotal"]), 0.2);
    assert_eq!(money(&line(cart, &c).unwrap()["lineTotal"]), 139.93);
    assert_eq!(cart["itemCount"], json!(11));
    // 0.3 + 0.2 + 139.93, without binary float drift.
    assert_eq!(money(&cart["subtotal"]), 140.43);
    assert_eq!(cart["items"].as_array().unwrap().len(), 3);
    assert_shape("cart_view", &reply.body);
}

#[tokio::test]
async fn adding_the_same_product_again_adds_up_quantities() {
    let s = shop().await;
    let p = s.product("Socks", 4.5, 20).await;

    s.add(json!({ "productId": p, "quantity": 2 })).await.expect(200);
    s.add(json!({ "productId": p, "quantity": 5 })).await.expect(200);
    let cart = s.add(json!({ "productId": p })).await.expect(200).data().clone();
    assert_eq!(cart["items"].as_array().unwrap().len(), 1, "{cart:#}");
    assert_eq!(line(&cart, &p).unwrap()["quantity"], json!(8));
    assert_eq!(line(&cart, &p).unwrap()["priceAtAdd"], json!(4.5));
    assert_eq!(money(&cart["subtotal"]), 36.0);
}

#[tokio::test]
async fn adding_an_unknown_product_is_404() {
    let s = shop().await;
    let reply = s.add(json!({ "productId": Uuid::new_v4() })).await;
    let reply = reply.expect_error(404, "PRODUCT_NOT_FOUND");
    assert_shape("cart_product_not_found", &reply.body);
    s.add(json!({ "productId": "not-a-uuid" })).await.expect_error(404, "PRODUCT_NOT_FOUND");
    assert_empty(&s.cart().await);
}

#[tokio::test]
async fn adding_more_than_the_stock_is_409_and_changes_nothing() {
    let s = shop().await;
    let p = s.product("Rare", 100.0, 5).await;

    let reply = s.add(json!({ "productId": p, "quantity": 6 })).await;
    let reply = reply.expect_error(409, "INSUFFICIENT_STOCK");
    assert!(reply.body.get("details").is_none(), "{:#}", reply.body);
    assert_shape("cart_insufficient_stock", &reply.body);
    assert_empty(&s.cart().await);

    // What is already in the cart counts.
    s.add(json!({ "productId": p, "quantity": 3 })).await.expect(200);
    s.add(json!({ "productId": p, "quantity": 3 })).await.expect_error(409, "INSUFFICIENT_STOCK");
    assert_eq!(line(&s.cart().await, &p).unwrap()["quantity"], json!(3));
    // Up to the stock exactly is fine.
    let cart = s.add(json!({ "productId": p, "quantity": 2 })).await.expect(200).data().clone();
    assert_eq!(line(&cart, &p).unwrap()["quantity"], json!(5));
    assert_eq!(line(&cart, &p).unwrap()["inStock"], json!(true));

    let none = s.product("Sold out", 1.0, 0).await;
    s.add(json!({ "productId": none })).await.expect_error(409, "INSUFFICIENT_STOCK");
}

#[tokio::test]
async fn add_validates_the_quantity() {
    let s = shop().await;
    let p = s.product("Plenty", 1.0, 5000).await;
    for quantity in [json!(0), json!(1000), json!(-1), json!(1.5), json!("2"), json!(null), json!(true)] {
        let reply = s.add(json!({ "productId": p, "quantity": quantity })).await;
        if quantity.is_null() {
            // An explicit null is the default, 1.
            assert_eq!(line(reply.expect(200).data(), &p).unwrap()["quantity"], json!(1));
            continue;
        }
        assert!(reply.status == 400, "quantity {quantity}: {:#}", reply.body);
        assert_validation(reply, "quantity");
    }
    // A line never goes past 999, whatever the stock.
    s.add(json!({ "productId": p, "quantity": 998 })).await.expect(200);
    assert_validation(s.add(json!({ "productId": p, "quantity": 2 })).await, "quantity");
    assert_eq!(line(&s.cart().await, &p).unwrap()["quantity"], json!(999));
}

#[tokio::test]
async fn add_requires_a_product_id() {
    let s = shop().await;
    assert_validation(s.add(json!({ "quantity": 2 })).await, "productId");
    assert_validation(s.add(json!({})).await, "productId");
    assert_validation(s.add(json!({ "productId": 42 })).await, "productId");
    assert_empty(&s.cart().await);
}

#[tokio::test]
async fn put_sets_the_quantity_and_zero_removes() {
    let s = shop().await;
    let p = s.product("Cups", 2.5, 10).await;
    let other = s.product("Plates", 3.0, 10).await;
    s.add(json!({ "productId": p, "quantity": 2 })).await.expect(200);
    s.add(json!({ "productId": other })).await.expect(200);

    let cart = s.set(&p, json!({ "quantity": 7 })).await.expect(200).data().clone();
    assert_eq!(line(&cart, &p).unwrap()["quantity"], json!(7));
    assert_eq!(money(&line(&cart, &p).unwrap()["lineTotal"]), 17.5);
    assert_eq!(cart["itemCount"], json!(8));
    assert_eq!(money(&cart["subtotal"]), 20.5);
    // Lower too; it sets, never adds.
    let cart = s.set(&p, json!({ "quantity": 1 })).await.expect(200).data().clone();
    assert_eq!(line(&cart, &p).unwrap()["quantity"], json!(1));

    let cart = s.set(&p, json!({ "quantity": 0 })).await.expect(200).data().clone();
    assert!(line(&cart, &p).is_none(), "{cart:#}");
    assert_eq!(cart["itemCount"], json!(1));
    assert_eq!(money(&cart["subtotal"]), 3.0);
    assert_eq!(s.cart().await, cart);
}

#[tokio::test]
async fn put_over_the_stock_is_409() {
    let s = shop().await;
    let p = s.product("Limited", 10.0, 4).await;
    s.add(json!({ "productId": p, "quantity": 2 })).await.expect(200);

    s.set(&p, json!({ "quantity": 5 })).await.expect_error(409, "INSUFFICIENT_STOCK");
    assert_eq!(line(&s.cart().await, &p).unwrap()["quantity"], json!(2));
    s.set(&p, json!({ "quantity": 4 })).await.expect(200);
}

#[tokio::test]
async fn put_validates_the_quantity() {
    let s = shop().await;
    let p = s.product("Cups", 2.5, 5000).await;
    s.add(json!({ "productId": p })).await.expect(200);
    for body in [
        json!({ "quantity": 1000 }),
        json!({ "quantity": -1 }),
        json!({ "quantity": 1.5 }),
        json!({ "quantity": "2" }),
        json!({}),
    ] {
        let reply = s.set(&p, body.clone()).await;
        assert!(reply.status == 400, "{body}: {:#}", reply.body);
        assert_validation(reply, "quantity");
    }
    assert_eq!(line(&s.cart().await, &p).unwrap()["quantity"], json!(1));
    s.set(&p, json!({ "quantity": 999 })).await.expect(200);
}

#[tokio::test]
async fn put_of_a_product_not_in_the_cart_is_404() {
    let s = shop().await;
    let p = s.product("Elsewhere", 1.0, 10).await;
    let reply = s.set(&p, json!({ "quantity": 2 })).await.expect_error(404, "CART_ITEM_NOT_FOUND");
    assert_shape("cart_item_not_found", &reply.body);
    s.set("not-a-uuid", json!({ "quantity": 2 })).await.expect_error(404, "CART_ITEM_NOT_FOUND");
    assert_empty(&s.cart().await);
}

#[tokio::test]
async fn put_of_any_id_not_in_the_cart_is_cart_item_not_found() {
    let s = shop().await;
    let p = s.product("Scarce", 1.0, 2).await;
    s.set(&Uuid::new_v4().to_string(), json!({ "quantity": 1 })).await.expect_error(404, "CART_ITEM_NOT_FOUND");
    s.set(&p, json!({ "quantity": 3 })).await.expect_error(404, "CART_ITEM_NOT_FOUND");
}

#[tokio::test]
async fn delete_item_removes_the_line_once() {
    let s = shop().await;
    let p = s.product("Cups", 2.5, 10).await;
    let other = s.product("Plates", 3.0, 10).await;
    s.add(json!({ "productId": p, "quantity": 2 })).await.expect(200);
    s.add(json!({ "productId": other })).await.expect(200);

    let reply = s.remove(&p).await.expect(200);
    let cart = reply.data();
    assert!(line(cart, &p).is_none(), "{cart:#}");
    assert!(line(cart, &other).is_some(), "{cart:#}");
    assert_eq!(cart["itemCount"], json!(1));
    assert_eq!(money(&cart["subtotal"]), 3.0);

    s.remove(&p).await.expect_error(404, "CART_ITEM_NOT_FOUND");
    s.remove(&Uuid::new_v4().to_string()).await.expect_error(404, "CART_ITEM_NOT_FOUND");
    s.remove("not-a-uuid").await.expect_error(404, "CART_ITEM_NOT_FOUND");
    let cart = s.remove(&other).await.expect(200).data().clone();
    assert_empty(&cart);
}

#[tokio::test]
async fn delete_cart_empties_it() {
    let s = shop().await;
    let p = s.product("Cups", 2.5, 10).await;
    let other = s.product("Plates", 3.0, 10).await;
    s.add(json!({ "productId": p, "quantity": 2 })).await.expect(200);
    s.add(json!({ "productId": other })).await.expect(200);

    let reply = s.app.delete("/api/cart", Some(&s.user)).await.expect(200);
    assert_eq!(reply.body["success"], json!(true));
    assert_empty(reply.data());
    assert_empty(&s.cart().await);
    // Clearing an empty cart is fine too.
    assert_empty(s.app.delete("/api/cart", Some(&s.user)).await.expect(200).data());
}

#[tokio::test]
async fn carts_belong_to_their_user() {
    let s = shop().await;
    let p = s.product("Mine", 5.0, 10).await;
    s.add(json!({ "productId": p, "quantity": 2 })).await.expect(200);

    let (other, _) = s.app.register("Other").await;
    assert_empty(&s.app.cart(&other).await);
    s.app
        .put(&format!("/api/cart/items/{p}"), Some(&other), json!({ "quantity": 1 }))
        .await
        .expect_error(404, "CART_ITEM_NOT_FOUND");
    s.app.delete(&format!("/api/cart/items/{p}"), Some(&other)).await.expect_error(404, "CART_ITEM_NOT_FOUND");
    s.app.delete("/api/cart", Some(&other)).await.expect(200);
    s.app.post("/api/cart/add", Some(&other), json!({ "productId": p, "quantity": 5 })).await.expect(200);

    // The first user's cart is untouched by all of that.
    let cart = s.cart().await;
    assert_eq!(line(&cart, &p).unwrap()["quantity"], json!(2));
    assert_eq!(cart["itemCount"], json!(2));
    assert_eq!(line(&s.app.cart(&other).await, &p).unwrap()["quantity"], json!(5));
}

#[tokio::test]
async fn cart_routes_need_a_token() {
    let s = shop().await;
    let p = s.product("Guarded", 1.0, 10).await;
    s.add(json!({ "productId": p })).await.expect(200);
    let item = format!("/api/cart/items/{p}");

    for token in [None, Some("not.a.jwt"), Some("")] {
        let calls = [
            s.app.request(Method::GET, "/api/cart", token),
            s.app.request(Method::DELETE, "/api/cart", token),
            s.app.request(Method::POST, "/api/cart/add", token).json(&json!({ "productId": p })),
            s.app.request(Method::PUT, &item, token).json(&json!({ "quantity": 3 })),
            s.app.request(Method::DELETE, &item, token),
        ];
        for call in calls {
            s.app.send(call).await.expect_error(401, "UNAUTHORIZED");
        }
    }
    // The cart is as it was.
    assert_eq!(line(&s.cart().await, &p).unwrap()["quantity"], json!(1));
}

#[tokio::test]
async fn a_price_change_shows_in_the_cart() {
    let s = shop().await;
    let p = s.product("Headphones", 19.99, 10).await;
    s.add(json!({ "productId": p, "quantity": 3 })).await.expect(200);

    let reply = s.app.put(&format!("/api/products/{p}"), Some(&s.admin), json!({ "price": 24.99 })).await;
    reply.expect(200);

    let updated = eventually(EVENT_BOUND, || async {
        let cart = s.cart().await;
        line(&cart, &p).is_some_and(|l| l["unitPrice"] == json!(24.99))
    })
    .await;
    assert!(updated, "the new price never showed: {:#}", s.cart().await);
    let cart = s.cart().await;
    let l = line(&cart, &p).unwrap();
    assert_eq!(money(&l["unitPrice"]), 24.99);
    assert_eq!(money(&l["priceAtAdd"]), 19.99);
    assert_eq!(l["priceChanged"], json!(true));
    assert_eq!(money(&l["lineTotal"]), 74.97);
    assert_eq!(money(&cart["subtotal"]), 74.97);
    assert_eq!(l["available"], json!(true));

    // Adding more keeps the first price as priceAtAdd.
    let cart = s.add(json!({ "productId": p })).await.expect(200).data().clone();
    let l = line(&cart, &p).unwrap();
    assert_eq!(money(&l["priceAtAdd"]), 19.99);
    assert_eq!(money(&l["lineTotal"]), 99.96);

    // Back to the first price: no longer changed.
    s.app.put(&format!("/api/products/{p}"), Some(&s.admin), json!({ "price": 19.99 })).await.expect(200);
    let restored = eventually(EVENT_BOUND, || async {
        let cart = s.cart().await;
        line(&cart, &p).is_some_and(|l| l["priceChanged"] == json!(false) && l["unitPrice"] == json!(19.99))
    })
    .await;
    assert!(restored, "{:#}", s.cart().await);
}

#[tokio::test]
async fn name_and_stock_changes_show_in_the_cart() {
    let s = shop().await;
    let p = s.product("Old name", 5.0, 10).await;
    s.add(json!({ "productId": p, "quantity": 3 })).await.expect(200);

    let path = format!("/api/products/{p}");
    s.app.put(&path, Some(&s.admin), json!({ "name": "New name", "stock": 2 })).await.expect(200);
    let seen = eventually(EVENT_BOUND, || async {
        let cart = s.cart().await;
        line(&cart, &p).is_some_and(|l| l["name"] == json!("New name"))
    })
    .await;
    assert!(seen, "{:#}", s.cart().await);
    let cart = s.cart().await;
    let l = line(&cart, &p).unwrap();
    assert_eq!(l["inStock"], json!(false), "{l:#}");
    assert_eq!(l["available"], json!(true));
    assert_eq!(l["priceChanged"], json!(false));
}

#[tokio::test]
async fn a_deleted_product_leaves_the_cart() {
    let s = shop().await;
    let gone = s.product("Discontinued", 7.5, 10).await;
    let kept = s.product("Staple", 2.25, 10).await;
    s.add(json!({ "productId": gone, "quantity": 2 })).await.expect(200);
    s.add(json!({ "productId": kept })).await.expect(200);

    s.app.delete(&format!("/api/products/{gone}"), Some(&s.admin)).await.expect(200);
    let left = eventually(EVENT_BOUND, || async { line(&s.cart().await, &gone).is_none() }).await;
    assert!(left, "the deleted product's line stayed: {:#}", s.cart().await);
    let cart = s.cart().await;
    assert!(line(&cart, &kept).is_some(), "{cart:#}");
    assert_eq!(cart["itemCount"], json!(1));
    assert_eq!(money(&cart["subtotal"]), 2.25);
    // And it can no longer be added.
    s.add(json!({ "productId": gone })).await.expect_error(404, "PRODUCT_NOT_FOUND");
}
