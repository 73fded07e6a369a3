//! The catalogue routes (`/api/products*`) through the gateway: listing with
//! paging, filters and sorts; reading one or a batch; and the admin-only writes
//! with their validation.

use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{TestApp, assert_shape, spawn_app, spawn_with, test_config};

/// Creates a product from a full body as the admin; returns its JSON.
async fn create(app: &TestApp, admin: &str, body: Value) -> Value {
    app.post("/api/products", Some(admin), body).await.expect(201).data().clone()
}

/// A product body with the given name, price and category.
fn body(name: &str, price: f64, category: &str) -> Value {
    json!({ "name": name, "description": format!("about {name}"), "price": price, "stock": 10,
        "category": category, "imageUrl": "https://img.example.com/p.jpg" })
}

/// Lists with the given query parameters; asserts 200.
async fn list(app: &TestApp, query: &[(&str, &str)]) -> Value {
    app.send(app.request(Method::GET, "/api/products", None).query(query)).await.expect(200).body
}

fn names(body: &Value) -> Vec<&str> {
    body["data"].as_array().expect("a list").iter().map(|p| p["name"].as_str().unwrap()).collect()
}

fn time(v: &Value) -> chrono::DateTime<chrono::FixedOffset> {
    chrono::DateTime::parse_from_rfc3339(v.as_str().expect("a timestamp")).expect("RFC 3339")
}

fn id(product: &Value) -> &str {
    product["id"].as_str().unwrap()
}

/// Asserts a 400 `VALIDATION` whose `details` name `field`.
#[track_caller]
fn assert_validation(reply: crate::helpers::Reply, field: &str) -> crate::helpers::Reply {
    let reply = reply.expect_error(400, "VALIDATION");
    let details = reply.body["details"].as_array().unwrap_or_else(|| panic!("no details: {:#}", reply.body));
    assert!(
        details.iter().any(|d| d["field"] == json!(field) && d["message"].as_str().is_some_and(|m| !m.is_empty())),
        "no detail for {field}: {:#}",
        reply.body
    );
    reply
}

#[tokio::test]
async fn list_answers_the_products_with_meta() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    create(&app, &admin, body("Desk lamp", 24.5, "home")).await;
    create(&app, &admin, body("Notebook", 3.99, "office")).await;

    let reply = list(&app, &[("sort", "name")]).await;
    assert_eq!(reply["success"], json!(true));
    assert_eq!(names(&reply), ["Desk lamp", "Notebook"]);
    assert_eq!(reply["meta"], json!({ "page": 1, "limit": 20, "total": 2, "totalPages": 1 }));
    assert_shape("products_list", &reply);

    let empty = spawn_app().await;
    let reply = list(&empty, &[]).await;
    assert_eq!(reply["data"], json!([]));
    assert_eq!(reply["meta"], json!({ "page": 1, "limit": 20, "total": 0, "totalPages": 0 }));
}

/// The demo catalogue (`demo.seed_catalogue`, on by default) goes only into a system whose
/// every adapter is in memory: a production database never gets it.
#[tokio::test]
async fn the_demo_catalogue_is_loaded_only_when_everything_is_in_memory() {
    let mut config = test_config();
    config.demo.seed_catalogue = true;
    let app = spawn_with(config).await;
    let in_memory = !crate::real::e2e_on_real() && !crate::real::e2e_in_processes();
    let reply = list(&app, &[("limit", "100")]).await;
    assert_eq!(reply["meta"]["total"], json!(if in_memory { 24 } else { 0 }), "in memory: {in_memory}");
}

#[tokio::test]
async fn list_pages_through_the_catalogue() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    for name in ["A1", "A2", "A3", "A4", "A5"] {
        create(&app, &admin, body(name, 1.0, "test")).await;
    }

    let page1 = list(&app, &[("sort", "name"), ("limit", "2")]).await;
    assert_eq!(names(&page1), ["A1", "A2"]);
    assert_eq!(page1["meta"], json!({ "page": 1, "limit": 2, "total": 5, "totalPages": 3 }));
    let page2 = list(&app, &[("sort", "name"), ("limit", "2"), ("page", "2")]).await;
    assert_eq!(names(&page2), ["A3", "A4"]);
    assert_eq!(page2["meta"], json!({ "page": 2, "limit": 2, "total": 5, "totalPages": 3 }));
    let page3 = list(&app, &[("sort", "name"), ("limit", "2"), ("page", "3")]).await;
    assert_eq!(names(&page3), ["A5"]);
    // Past the end: no items, the same totals.
    let page4 = list(&app, &[("sort", "name"), ("limit", "2"), ("page", "4")]).await;
    assert_eq!(page4["data"], json!([]));
    assert_eq!(page4["meta"], json!({ "page": 4, "limit": 2, "total": 5, "totalPages": 3 }));
    // The limit bounds are inclusive.
    let all = list(&app, &[("limit", "100")]).await;
    assert_eq!(all["meta"]["limit"], json!(100));
    assert_eq!(all["data"].as_array().unwrap().len(), 5);
    let one = list(&app, &[("limit", "1")]).await;
    assert_eq!(one["meta"], json!({ "page": 1, "limit": 1, "total": 5, "totalPages": 5 }));
}

#[tokio::test]
async fn list_filters_by_category_case_insensitively() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    create(&app, &admin, body("Chair", 40.0, "furniture")).await;
    create(&app, &admin, body("Table", 90.0, "Furniture")).await;
    create(&app, &admin, body("Pen", 1.0, "office")).await;

    let reply = list(&app, &[("category", "FURNITURE"), ("sort", "name")]).await;
    assert_eq!(names(&reply), ["Chair", "Table"]);
    assert_eq!(reply["meta"]["total"], json!(2));
    // Exact match, not a substring.
    let reply = list(&app, &[("category", "furn")]).await;
    assert_eq!(reply["data"], json!([]));
    assert_eq!(reply["meta"]["total"], json!(0));
}

#[tokio::test]
async fn list_searches_name_and_description_case_insensitively() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    create(&app, &admin, json!({ "name": "Blue Mug", "description": "ceramic", "price": 8, "stock": 3 })).await;
    create(&app, &admin, json!({ "name": "Teapot", "description": "Holds a BLUE tea", "price": 20, "stock": 3 })).await;
    create(&app, &admin, json!({ "name": "Red Mug", "description": "ceramic", "price": 8, "stock": 3 })).await;

    let reply = list(&app, &[("q", "blue"), ("sort", "name")]).await;
    assert_eq!(names(&reply), ["Blue Mug", "Teapot"]);
    assert_eq!(reply["meta"]["total"], json!(2));
    let reply = list(&app, &[("q", "MUG"), ("sort", "name")]).await;
    assert_eq!(names(&reply), ["Blue Mug", "Red Mug"]);
    let reply = list(&app, &[("q", "blue tea")]).await;
    assert_eq!(names(&reply), ["Teapot"]);
    let reply = list(&app, &[("q", "nothing like this")]).await;
    assert_eq!(reply["data"], json!([]));
}

#[tokio::test]
async fn list_filters_by_price_range_inclusively() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    for (name, price) in [("P5", 5.0), ("P10", 10.0), ("P19.99", 19.99), ("P20", 20.0), ("P50", 50.0)] {
        create(&app, &admin, body(name, price, "test")).await;
    }

    let reply = list(&app, &[("minPrice", "10"), ("sort", "price")]).await;
    assert_eq!(names(&reply), ["P10", "P19.99", "P20", "P50"]);
    let reply = list(&app, &[("maxPrice", "19.99"), ("sort", "price")]).await;
    assert_eq!(names(&reply), ["P5", "P10", "P19.99"]);
    let reply = list(&app, &[("minPrice", "10.00"), ("maxPrice", "20"), ("sort", "price")]).await;
    assert_eq!(names(&reply), ["P10", "P19.99", "P20"]);
    assert_eq!(reply["meta"]["total"], json!(3));
    let reply = list(&app, &[("minPrice", "19.99"), ("maxPrice", "19.99")]).await;
    assert_eq!(names(&reply), ["P19.99"]);
    // Filters combine.
    let reply = list(&app, &[("minPrice", "6"), ("q", "p2")]).await;
    assert_eq!(names(&reply), ["P20"]);
}

#[tokio::test]
async fn list_sorts_by_every_key() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    // Creation, price and name orders all differ.
    create(&app, &admin, body("Banana", 5.0, "fruit")).await;
    create(&app, &admin, body("Cherry", 1.5, "fruit")).await;
    create(&app, &admin, body("Apple", 20.0, "fruit")).await;

    for (sort, expected) in [
        ("price", ["Cherry", "Banana", "Apple"]),
        ("-price", ["Apple", "Banana", "Cherry"]),
        ("name", ["Apple", "Banana", "Cherry"]),
        ("-name", ["Cherry", "Banana", "Apple"]),
        ("createdAt", ["Banana", "Cherry", "Apple"]),
        ("-createdAt", ["Apple", "Cherry", "Banana"]),
    ] {
        let reply = list(&app, &[("sort", sort)]).await;
        assert_eq!(names(&reply), expected, "sort={sort}");
    }
    // The default is newest first.
    assert_eq!(names(&list(&app, &[]).await), ["Apple", "Cherry", "Banana"]);
}

#[tokio::test]
async fn list_rejects_bad_query_values() {
    let app = spawn_app().await;
    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=ten", "limit"),
        ("page=0", "page"),
        ("page=-1", "page"),
        ("page=1.5", "page"),
        ("sort=bogus", "sort"),
        ("sort=PRICE", "sort"),
        ("minPrice=abc", "minPrice"),
        ("maxPrice=abc", "maxPrice"),
        ("minPrice=-1", "minPrice"),
        ("minPrice=1.999", "minPrice"),
        ("minPrice=20&maxPrice=10", "maxPrice"),
    ] {
        let reply = app.get(&format!("/api/products?{query}"), None).await;
        assert!(reply.status == 400, "{query}: {:#}", reply.body);
        assert_validation(reply, field);
    }
    // Every problem is reported at once.
    let reply = assert_validation(app.get("/api/products?limit=0&page=0&sort=x", None).await, "limit");
    let fields: Vec<&str> =
        reply.body["details"].as_array().unwrap().iter().map(|d| d["field"].as_str().unwrap()).collect();
    assert_eq!(fields.len(), 3, "{fields:?}");
    assert!(fields.contains(&"page") && fields.contains(&"sort"), "{fields:?}");
}

#[tokio::test]
async fn get_one_answers_the_product() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let created = create(&app, &admin, body("Kettle", 34.9, "kitchen")).await;

    let reply = app.get(&format!("/api/products/{}", id(&created)), None).await.expect(200);
    assert_eq!(reply.body["success"], json!(true));
    assert_eq!(reply.data(), &created);
    assert_eq!(reply.data()["price"], json!(34.9));
    assert_shape("products_get", &reply.body);
}

#[tokio::test]
async fn get_one_of_an_unknown_id_is_404() {
    let app = spawn_app().await;
    let reply = app.get(&format!("/api/products/{}", Uuid::new_v4()), None).await;
    let reply = reply.expect_error(404, "PRODUCT_NOT_FOUND");
    assert!(reply.body.get("details").is_none(), "{:#}", reply.body);
    assert_shape("products_not_found", &reply.body);
    // An id that is not a UUID names no product either.
    app.get("/api/products/not-a-uuid", None).await.expect_error(404, "PRODUCT_NOT_FOUND");
    app.get("/api/products/12345", None).await.expect_error(404, "PRODUCT_NOT_FOUND");
}

#[tokio::test]
async fn batch_answers_found_products_in_request_order() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let a = create(&app, &admin, body("Alpha", 1.0, "test")).await;
    let b = create(&app, &admin, body("Beta", 2.0, "test")).await;
    let c = create(&app, &admin, body("Gamma", 3.0, "test")).await;
    let unknown = Uuid::new_v4().to_string();

    let ids = json!([id(&c), unknown, id(&a), "not-a-uuid", id(&b)]);
    let reply = app.post("/api/products/batch", None, json!({ "ids": ids })).await.expect(200);
    assert_eq!(reply.body["success"], json!(true));
    assert_eq!(reply.data(), &json!([c, a, b]));
    assert_shape("products_batch", &reply.body);

    let reply = app.post("/api/products/batch", None, json!({ "ids": [id(&b), id(&a)] })).await.expect(200);
    assert_eq!(names(&reply.body), ["Beta", "Alpha"]);
    let reply = app.post("/api/products/batch", None, json!({ "ids": [] })).await.expect(200);
    assert_eq!(reply.data(), &json!([]));
    let reply = app.post("/api/products/batch", None, json!({ "ids": [unknown] })).await.expect(200);
    assert_eq!(reply.data(), &json!([]));
}

#[tokio::test]
async fn batch_takes_at_most_100_ids() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let p = create(&app, &admin, body("Only", 1.0, "test")).await;

    let mut ids: Vec<String> = (0..99).map(|_| Uuid::new_v4().to_string()).collect();
    ids.push(id(&p).to_string());
    let reply = app.post("/api/products/batch", None, json!({ "ids": ids })).await.expect(200);
    assert_eq!(names(&reply.body), ["Only"]);

    ids.push(Uuid::new_v4().to_string());
    assert_validation(app.post("/api/products/batch", None, json!({ "ids": ids })).await, "ids");
    assert_validation(app.post("/api/products/batch", None, json!({})).await, "ids");
    assert_validation(app.post("/api/products/batch", None, json!({ "ids": "x" })).await, "ids");
}

#[tokio::test]
async fn batch_counts_every_id_against_the_limit() {
    let app = spawn_app().await;
    let ids: Vec<String> = (0..101).map(|i| format!("not-a-uuid-{i}")).collect();
    assert_validation(app.post("/api/products/batch", None, json!({ "ids": ids })).await, "ids");
}

#[tokio::test]
async fn create_as_admin_answers_201_with_version_1_and_exact_prices() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;

    let reply = app
        .post(
            "/api/products",
            Some(&admin),
            json!({ "name": "Headphones", "description": "Over-ear", "price": 19.99, "stock": 7,
                "category": "audio", "imageUrl": "https://img.example.com/h.jpg" }),
        )
        .await
        .expect(201);
    let p = reply.data();
    assert_eq!(reply.body["success"], json!(true));
    assert!(Uuid::parse_str(id(p)).is_ok(), "{p:#}");
    assert_eq!(p["name"], json!("Headphones"));
    assert_eq!(p["description"], json!("Over-ear"));
    assert_eq!(p["price"], json!(19.99));
    assert_eq!(p["stock"], json!(7));
    assert_eq!(p["category"], json!("audio"));
    assert_eq!(p["imageUrl"], json!("https://img.example.com/h.jpg"));
    assert_eq!(p["version"], json!(1));
    assert_eq!(time(&p["createdAt"]), time(&p["updatedAt"]));
    assert_shape("products_created", &reply.body);
    // It is stored as answered.
    assert_eq!(app.get(&format!("/api/products/{}", id(p)), None).await.expect(200).data(), p);

    // Amounts a binary float cannot hold come back exactly as sent.
    for price in [0.1, 0.3, 1.1, 2.67, 1000000000.0, 0.0, 99999.99] {
        let p = create(&app, &admin, json!({ "name": "Priced", "price": price, "stock": 1 })).await;
        assert_eq!(p["price"].as_f64(), Some(price), "{p:#}");
        let again = app.get(&format!("/api/products/{}", id(&p)), None).await.expect(200);
        assert_eq!(again.data()["price"].as_f64(), Some(price));
    }
    // The price as an integer, and trailing zeros.
    let p = create(&app, &admin, json!({ "name": "Whole", "price": 20, "stock": 0 })).await;
    assert_eq!(p["price"].as_f64(), Some(20.0));
    assert_eq!(p["stock"], json!(0));
    let p = create(&app, &admin, json!({ "name": "Tenth", "price": 1.50, "stock": 1 })).await;
    assert_eq!(p["price"].as_f64(), Some(1.5));
}

#[tokio::test]
async fn create_fills_defaults_and_ignores_unknown_fields() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let p = create(
        &app,
        &admin,
        json!({ "name": "  Plain  ", "price": 5, "stock": 2, "version": 42, "id": Uuid::new_v4(), "color": "red" }),
    )
    .await;
    assert_eq!(p["name"], json!("Plain"));
    assert_eq!(p["description"], json!(""));
    assert_eq!(p["category"], json!("general"));
    assert_eq!(p["imageUrl"], json!(null));
    assert_eq!(p["version"], json!(1));
    assert!(p.get("color").is_none());
}

#[tokio::test]
async fn create_by_a_plain_user_is_403() {
    let app = spawn_app().await;
    let (user, _) = app.register("Shopper").await;
    let reply = app.post("/api/products", Some(&user), body("Sneaky", 1.0, "test")).await;
    let reply = reply.expect_error(403, "FORBIDDEN");
    assert_shape("products_forbidden", &reply.body);
    assert_eq!(list(&app, &[]).await["meta"]["total"], json!(0));
}

#[tokio::test]
async fn writes_without_a_token_are_401() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let p = create(&app, &admin, body("Guarded", 1.0, "test")).await;
    let path = format!("/api/products/{}", id(&p));

    app.post("/api/products", None, body("Anon", 1.0, "test")).await.expect_error(401, "UNAUTHORIZED");
    app.post("/api/products", Some("not.a.jwt"), body("Anon", 1.0, "test")).await.expect_error(401, "UNAUTHORIZED");
    app.put(&path, None, json!({ "price": 2 })).await.expect_error(401, "UNAUTHORIZED");
    app.delete(&path, None).await.expect_error(401, "UNAUTHORIZED");
    // Nothing changed.
    assert_eq!(app.get(&path, None).await.expect(200).data(), &p);
}

#[tokio::test]
async fn create_validates_every_field() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let valid = json!({ "name": "Valid", "price": 1.25, "stock": 3 });
    let with = |key: &str, value: Value| {
        let mut b = valid.clone();
        b[key] = value;
        b
    };
    let without = |key: &str| {
        let mut b = valid.clone();
        b.as_object_mut().unwrap().remove(key);
        b
    };
    let cases = [
        (without("name"), "name"),
        (without("price"), "price"),
        (without("stock"), "stock"),
        (with("name", json!("")), "name"),
        (with("name", json!("   ")), "name"),
        (with("name", json!("x".repeat(201))), "name"),
        (with("price", json!(19.999)), "price"),
        (with("price", json!(-1)), "price"),
        (with("price", json!(-0.5)), "price"),
        (with("price", json!("19.99")), "price"),
        (with("price", json!(null)), "price"),
        (with("stock", json!(-1)), "stock"),
        (with("stock", json!(1.5)), "stock"),
        (with("stock", json!("3")), "stock"),
        (with("imageUrl", json!("not a url")), "imageUrl"),
        (with("category", json!("")), "category"),
    ];
    for (body, field) in cases {
        let reply = app.post("/api/products", Some(&admin), body.clone()).await;
        assert!(reply.status == 400, "{body}: {:#}", reply.body);
        assert_validation(reply, field);
    }
    // All missing fields are reported together.
    let reply = assert_validation(app.post("/api/products", Some(&admin), json!({})).await, "name");
    assert_validation(app.post("/api/products", Some(&admin), json!({})).await, "price");
    assert_validation(app.post("/api/products", Some(&admin), json!({})).await, "stock");
    assert_shape("products_validation_error", &reply.body);
    // Nothing was created.
    assert_eq!(list(&app, &[]).await["meta"]["total"], json!(0));
}

#[tokio::test]
async fn update_changes_the_given_fields_and_bumps_the_version() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let before = create(&app, &admin, body("Lamp", 24.5, "home")).await;
    let path = format!("/api/products/{}", id(&before));

    let reply = app.put(&path, Some(&admin), json!({ "price": 21.99, "stock": 4 })).await.expect(200);
    let after = reply.data().clone();
    assert_eq!(reply.body["success"], json!(true));
    assert_eq!(after["price"], json!(21.99));
    assert_eq!(after["stock"], json!(4));
    assert_eq!(after["version"], json!(2));
    for same in ["id", "name", "description", "category", "imageUrl", "createdAt"] {
        assert_eq!(after[same], before[same], "{same}");
    }
    assert!(time(&after["updatedAt"]) >= time(&before["updatedAt"]));
    assert_eq!(app.get(&path, None).await.expect(200).data(), &after);

    let again = app.put(&path, Some(&admin), json!({ "name": "Floor lamp" })).await.expect(200);
    assert_eq!(again.data()["name"], json!("Floor lamp"));
    assert_eq!(again.data()["price"], json!(21.99));
    assert_eq!(again.data()["version"], json!(3));

    // Validation as for a create; an empty change is refused.
    assert_validation(app.put(&path, Some(&admin), json!({ "price": 1.001 })).await, "price");
    assert_validation(app.put(&path, Some(&admin), json!({ "stock": -2 })).await, "stock");
    let reply = app.put(&path, Some(&admin), json!({})).await;
    reply.expect_error(400, "VALIDATION");
    assert_eq!(app.get(&path, None).await.expect(200).data()["version"], json!(3));
}

#[tokio::test]
async fn update_by_a_plain_user_is_403() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let (user, _) = app.register("Shopper").await;
    let p = create(&app, &admin, body("Lamp", 24.5, "home")).await;
    let path = format!("/api/products/{}", id(&p));

    app.put(&path, Some(&user), json!({ "price": 0.01 })).await.expect_error(403, "FORBIDDEN");
    assert_eq!(app.get(&path, None).await.expect(200).data(), &p);
}

#[tokio::test]
async fn update_of_an_unknown_product_is_404() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let reply = app.put(&format!("/api/products/{}", Uuid::new_v4()), Some(&admin), json!({ "price": 1 })).await;
    reply.expect_error(404, "PRODUCT_NOT_FOUND");
    let reply = app.put("/api/products/not-a-uuid", Some(&admin), json!({ "price": 1 })).await;
    reply.expect_error(404, "PRODUCT_NOT_FOUND");
}

#[tokio::test]
async fn delete_removes_the_product() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let p = create(&app, &admin, body("Doomed", 9.99, "test")).await;
    let keep = create(&app, &admin, body("Kept", 1.0, "test")).await;
    let path = format!("/api/products/{}", id(&p));

    let reply = app.delete(&path, Some(&admin)).await.expect(200);
    assert_eq!(reply.body["success"], json!(true));
    assert_eq!(reply.data(), &json!({ "id": id(&p), "deleted": true }));
    app.get(&path, None).await.expect_error(404, "PRODUCT_NOT_FOUND");
    assert_eq!(names(&list(&app, &[]).await), ["Kept"]);
    let reply = app.post("/api/products/batch", None, json!({ "ids": [id(&p), id(&keep)] })).await.expect(200);
    assert_eq!(names(&reply.body), ["Kept"]);
    // Gone is gone.
    app.delete(&path, Some(&admin)).await.expect_error(404, "PRODUCT_NOT_FOUND");
    app.put(&path, Some(&admin), json!({ "price": 1 })).await.expect_error(404, "PRODUCT_NOT_FOUND");
}

#[tokio::test]
async fn delete_by_a_plain_user_is_403() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let (user, _) = app.register("Shopper").await;
    let p = create(&app, &admin, body("Sturdy", 5.0, "test")).await;
    let path = format!("/api/products/{}", id(&p));

    app.delete(&path, Some(&user)).await.expect_error(403, "FORBIDDEN");
    assert_eq!(app.get(&path, None).await.expect(200).data(), &p);
}
