//! Seeding through the API: products as the admin, then users, each with a 10-line cart.

use std::future::Future;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, anyhow, bail};
use bytes::Bytes;
use http::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::client::Api;

/// Lines in every seeded cart.
pub const CART_LINES: usize = 10;
/// Stock of every seeded product: cart lines never run out.
pub const STOCK: u64 = 1_000_000;
/// Password of every seeded user.
const USER_PASSWORD: &str = "load-test-password";

/// What the scenarios run on.
#[derive(Debug)]
pub struct Seed {
    pub run_id: String,
    /// The admin's token (the price-change probe changes prices).
    pub admin_token: String,
    /// Product ids as the server gave them (a string or a number).
    pub products: Vec<Value>,
    pub users: Vec<SeedUser>,
}

#[derive(Debug)]
pub struct SeedUser {
    pub token: String,
    /// Indices into `Seed::products`, one per cart line.
    pub cart: Vec<usize>,
}

pub struct SeedPlan<'a> {
    pub products: usize,
    pub users: usize,
    pub concurrency: usize,
    pub admin_email: &'a str,
    pub admin_password: &'a str,
}

/// A name that differs between runs, so emails never collide on a server that is reused.
pub fn run_id() -> String {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    format!("{:x}{:x}", nanos % (1 << 48), std::process::id())
}

/// Price of the i-th product: 1.00 to 99.99, always two decimals, as JSON text.
pub fn price(i: usize) -> String {
    let cents = 100 + (i * 7919) % 9900;
    format!("{}.{:02}", cents / 100, cents % 100)
}

/// The products in user `user`'s cart: CART_LINES distinct indices (needs `products >= CART_LINES`).
pub fn cart_of(user: usize, products: usize) -> Vec<usize> {
    (0..CART_LINES).map(|line| (user * CART_LINES + line) % products).collect()
}

pub async fn seed(api: &Api, plan: &SeedPlan<'_>) -> anyhow::Result<Seed> {
    let run_id = run_id();

    eprintln!("seeding: logging in as {}", plan.admin_email);
    let login = json!({"email": plan.admin_email, "password": plan.admin_password});
    let answer = api.call(Method::POST, "/api/users/login", None, json_body(&login)).await?;
    if answer.status == StatusCode::UNAUTHORIZED {
        bail!(
            "the server refused the admin login of {} (401): give the admin account with --admin-email and \
             --admin-password (or AGORA_USERS__ADMIN_EMAIL and AGORA_USERS__ADMIN_PASSWORD)",
            plan.admin_email
        );
    }
    let admin = answer.data(StatusCode::OK, "admin login")?;
    let admin_token: Arc<str> = token_of(&admin)?.into();

    eprintln!("seeding: creating {} products", plan.products);
    let products = parallel(plan.products, plan.concurrency, |i| {
        let api = api.clone();
        let token = admin_token.clone();
        let body = product_body(&run_id, i);
        async move {
            let data = api
                .call(Method::POST, "/api/products", Some(&token), Bytes::from(body))
                .await?
                .data(StatusCode::CREATED, "create product")?;
            // Agora's ids are strings (UUIDs); other servers of the contract may use numbers.
            data.get("id")
                .filter(|id| id.is_string() || id.is_number())
                .cloned()
                .ok_or_else(|| anyhow!("product without id: {data}"))
        }
    })
    .await?;
    let products = Arc::new(products);

    eprintln!("seeding: registering {} users with {CART_LINES}-line carts", plan.users);
    let users = parallel(plan.users, plan.concurrency, |i| {
        let api = api.clone();
        let products = products.clone();
        let register =
            json!({"name": format!("Load User {i}"), "email": format!("load-{run_id}-{i}@example.com"), "password": USER_PASSWORD});
        async move {
            let data = api
                .call(Method::POST, "/api/users/register", None, json_body(&register))
                .await?
                .data(StatusCode::CREATED, "register")?;
            let token = token_of(&data)?;
            let cart = cart_of(i, products.len());
            let mut items = 0;
            for &p in &cart {
                let add = json!({"productId": products[p], "quantity": 1});
                let data = api
                    .call(Method::POST, "/api/cart/add", Some(&token), json_body(&add))
                    .await?
                    .data(StatusCode::OK, "cart add")?;
                items = data.get("items").and_then(Value::as_array).map_or(0, Vec::len);
            }
            if items != CART_LINES {
                bail!("user {i}'s cart has {items} lines after seeding, expected {CART_LINES}");
            }
            Ok(SeedUser { token, cart })
        }
    })
    .await?;

    let products = Arc::try_unwrap(products).unwrap_or_else(|shared| shared.as_ref().clone());
    Ok(Seed { run_id, admin_token: admin_token.to_string(), products, users })
}

fn json_body(value: &Value) -> Bytes {
    Bytes::from(value.to_string())
}

fn token_of(data: &Value) -> anyhow::Result<String> {
    data.get("token").and_then(Value::as_str).map(str::to_string).ok_or_else(|| anyhow!("answer without a token"))
}

/// The create-product body; the price is written as JSON text so it keeps exactly two decimals.
pub fn product_body(run_id: &str, i: usize) -> String {
    let name = serde_json::to_string(&format!("Load product {run_id}-{i}")).unwrap_or_default();
    format!(
        r#"{{"name":{name},"description":"Seeded by agora-load","price":{},"stock":{STOCK},"category":"load"}}"#,
        price(i)
    )
}

/// Runs `count` jobs with at most `concurrency` in flight; results in job order, first error wins.
async fn parallel<T, F, Fut>(count: usize, concurrency: usize, job: F) -> anyhow::Result<Vec<T>>
where
    T: Send + 'static,
    F: Fn(usize) -> Fut,
    Fut: Future<Output = anyhow::Result<T>> + Send + 'static,
{
    let permits = Arc::new(Semaphore::new(concurrency));
    let mut running = JoinSet::new();
    let mut results: Vec<Option<T>> = (0..count).map(|_| None).collect();
    let mut store = |joined: Result<(usize, anyhow::Result<T>), tokio::task::JoinError>| -> anyhow::Result<()> {
        let (i, result) = joined.context("seeding task")?;
        results[i] = Some(result?);
        Ok(())
    };
    for i in 0..count {
        let permit = permits.clone().acquire_owned().await.context("semaphore")?;
        let fut = job(i);
        running.spawn(async move {
            let result = fut.await;
            drop(permit);
            (i, result)
        });
        while let Some(joined) = running.try_join_next() {
            store(joined)?;
        }
    }
    while let Some(joined) = running.join_next().await {
        store(joined)?;
    }
    results.into_iter().enumerate().map(|(i, r)| r.ok_or_else(|| anyhow!("seeding job {i} gave nothing"))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_have_two_decimals_and_stay_in_range() {
        for i in 0..20_000 {
            let p = price(i);
            let (whole, cents) = p.split_once('.').unwrap();
            assert_eq!(cents.len(), 2, "{p}");
            let whole: u32 = whole.parse().unwrap();
            assert!((1..=99).contains(&whole), "{p}");
        }
    }

    #[test]
    fn product_bodies_are_valid_json() {
        let body: Value = serde_json::from_str(&product_body("abc", 3)).unwrap();
        assert_eq!(body["category"], "load");
        assert_eq!(body["stock"], STOCK);
        assert_eq!(body["name"], "Load product abc-3");
        assert!(body["price"].is_number());
        assert!(product_body("abc", 3).contains(&format!("\"price\":{},", price(3))));
    }

    #[test]
    fn carts_have_distinct_lines() {
        for products in [10, 11, 1000] {
            for user in 0..300 {
                let mut cart = cart_of(user, products);
                assert!(cart.iter().all(|&p| p < products));
                cart.sort_unstable();
                cart.dedup();
                assert_eq!(cart.len(), CART_LINES);
            }
        }
    }

    #[test]
    fn run_ids_are_hex() {
        assert!(!run_id().is_empty());
        assert!(run_id().chars().all(|c| c.is_ascii_hexdigit()));
    }

    #[tokio::test]
    async fn parallel_keeps_order_and_reports_errors() {
        let squares = parallel(50, 4, |i| async move { anyhow::Ok(i * i) }).await.unwrap();
        assert_eq!(squares, (0..50).map(|i| i * i).collect::<Vec<_>>());
        let failed = parallel(10, 3, |i| async move { if i == 7 { bail!("job 7") } else { Ok(i) } }).await;
        assert!(failed.unwrap_err().to_string().contains("job 7"));
    }
}
