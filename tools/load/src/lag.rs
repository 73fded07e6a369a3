//! The `price-change` probe: how long a product's new price takes to show in a cart line —
//! the outbox, the event bus, the carts consumer and the cart store — as a client sees it.
//! One change at a time: the admin sets a new price (PUT), and from its 200 the cart of a user
//! who holds the product is read back to back until its line shows the price. The figure is
//! an upper bound: it includes the last cart read's own round trip.

use std::time::Duration;

use anyhow::{Context, anyhow};
use bytes::Bytes;
use http::{Method, StatusCode};
use serde_json::Value;
use tokio::time::Instant;

use crate::client::Api;
use crate::report::Tally;
use crate::seed::{CART_LINES, Seed};

/// The k-th change: which user's cart shows it, which of the seeded products it changes, and its
/// new price in cents (never the product's seeded price, and different for consecutive changes
/// of one product, so every change is visible).
pub fn change(k: u64, seed: &Seed) -> (usize, usize, u64) {
    let users = seed.users.len().max(1) as u64;
    let user = (k % users) as usize;
    let line = ((k / users) % CART_LINES as u64) as usize;
    let product = seed.users[user].cart[line];
    // 100.00 and up: above every seeded price (at most 99.99).
    let cents = 10_000 + k % 1_000_000;
    (user, product, cents)
}

/// Runs changes for `warmup` (not recorded), then for `duration`; the tally of the lags and the
/// measured time.
pub async fn probe(
    api: &Api,
    seed: &Seed,
    warmup: Duration,
    duration: Duration,
    timeout: Duration,
) -> anyhow::Result<(Tally, Duration)> {
    let mut tally = Tally::new()?;
    let mut k = 0;
    let started = Instant::now();
    let measuring = started + warmup;
    loop {
        let now = Instant::now();
        if now >= measuring + duration {
            break;
        }
        let outcome = one_change(api, seed, k, timeout).await;
        if Instant::now() > measuring {
            match outcome {
                Ok(lag) => tally.record(&Ok(StatusCode::OK), lag),
                Err(e) => tally.record(&Err(format!("{e:#}")), Duration::ZERO),
            }
        } else if let Err(e) = outcome {
            return Err(e.context("warm-up"));
        }
        k += 1;
    }
    Ok((tally, Instant::now().saturating_duration_since(measuring)))
}

async fn one_change(api: &Api, seed: &Seed, k: u64, timeout: Duration) -> anyhow::Result<Duration> {
    let (user, product, cents) = change(k, seed);
    let id = &seed.products[product];
    let path_id = id.as_str().map_or_else(|| id.to_string(), str::to_string);
    let body = Bytes::from(format!(r#"{{"price":{}.{:02}}}"#, cents / 100, cents % 100));
    api.call(Method::PUT, &format!("/api/products/{path_id}"), Some(&seed.admin_token), body)
        .await?
        .data(StatusCode::OK, "price change")?;
    let changed = Instant::now();
    let token = &seed.users[user].token;
    loop {
        let cart = api.call(Method::GET, "/api/cart", Some(token), Bytes::new()).await?.data(StatusCode::OK, "cart")?;
        let line = cart
            .get("items")
            .and_then(Value::as_array)
            .and_then(|items| items.iter().find(|item| item.get("productId") == Some(id)))
            .context("the product left the cart")?;
        let shown = line.get("unitPrice").and_then(Value::as_f64).map(|p| (p * 100.0).round() as u64);
        if shown == Some(cents) {
            return Ok(changed.elapsed());
        }
        if changed.elapsed() > timeout {
            return Err(anyhow!("the cart did not show the new price within {timeout:?}"));
        }
        tokio::task::yield_now().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seed::SeedUser;

    #[test]
    fn every_change_shows_a_new_price_in_a_cart_that_holds_the_product() {
        let users = (0..3).map(|u| SeedUser { token: format!("t{u}"), cart: crate::seed::cart_of(u, 40) }).collect();
        let seed = Seed { run_id: "r".into(), admin_token: "a".into(), products: vec![Value::Null; 40], users };
        let mut last = std::collections::HashMap::new();
        for k in 0..100 {
            let (user, product, cents) = change(k, &seed);
            assert!(seed.users[user].cart.contains(&product));
            assert!(cents >= 10_000, "above every seeded price");
            assert_ne!(last.insert(product, cents), Some(cents), "change {k} repeats the price");
        }
    }
}
