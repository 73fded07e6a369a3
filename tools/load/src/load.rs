//! Driving load: the requests of each scenario, the closed loop and the fixed rate.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use http::{HeaderValue, Method, Request, Uri};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::client::{Body, Conn, Target, request};
use crate::report::Tally;
use crate::seed::{CART_LINES, Seed};

/// A cart line is set back to quantity 1 every this many adds, so it never nears the limit of
/// 999 per line (the margin absorbs adds whose outcome is unknown, e.g. timeouts).
pub const RESET_EVERY: u64 = 900;

/// Pause after a transport error, so a refused connection does not spin a closed loop.
const ERROR_PAUSE: Duration = Duration::from_millis(10);

/// A scenario driven as load: many connections, requests that do not wait for each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Load {
    Health,
    Browse,
    CartView,
    CartAdd,
}

/// Everything the requests are made of, built once after seeding.
pub struct Workload {
    host: HeaderValue,
    health: Uri,
    cart: Uri,
    cart_add: Uri,
    /// GET /api/products/:id, per product.
    product: Vec<Uri>,
    /// PUT /api/cart/items/:id, per product.
    cart_item: Vec<Uri>,
    /// `{"productId": id, "quantity": 1}`, per product.
    add_body: Vec<Bytes>,
    /// `Bearer <token>`, per user.
    auth: Vec<HeaderValue>,
    /// Product indices of each user's cart lines.
    carts: Vec<Vec<usize>>,
    /// Cart adds handed out so far (all scenarios, warm-up included).
    adds: AtomicU64,
}

impl Workload {
    pub fn new(target: &Target, seed: &Seed) -> anyhow::Result<Workload> {
        let mut product = Vec::with_capacity(seed.products.len());
        let mut cart_item = Vec::with_capacity(seed.products.len());
        let mut add_body = Vec::with_capacity(seed.products.len());
        for id in &seed.products {
            let text = id.as_str().map_or_else(|| id.to_string(), str::to_string);
            product.push(target.path(&format!("/api/products/{text}"))?);
            cart_item.push(target.path(&format!("/api/cart/items/{text}"))?);
            add_body.push(Bytes::from(serde_json::json!({"productId": id, "quantity": 1}).to_string()));
        }
        let auth = seed
            .users
            .iter()
            .map(|u| HeaderValue::from_str(&format!("Bearer {}", u.token)).context("token is not a header value"))
            .collect::<anyhow::Result<_>>()?;
        Ok(Workload {
            host: target.host.clone(),
            health: target.path("/health")?,
            cart: target.path("/api/cart")?,
            cart_add: target.path("/api/cart/add")?,
            product,
            cart_item,
            add_body,
            auth,
            carts: seed.users.iter().map(|u| u.cart.clone()).collect(),
            adds: AtomicU64::new(0),
        })
    }

    /// The next request of a scenario, and for cart-add sometimes an unmeasured request to send
    /// first (setting the line back to quantity 1).
    fn next(&self, scenario: Load, rng: &mut Rng) -> (Option<Request<Body>>, Request<Body>) {
        let get = |uri: &Uri, auth: Option<&HeaderValue>| request(Method::GET, uri, &self.host, auth, Bytes::new());
        match scenario {
            Load::Health => (None, get(&self.health, None)),
            Load::Browse => (None, get(&self.product[rng.below(self.product.len())], None)),
            Load::CartView => (None, get(&self.cart, Some(&self.auth[rng.below(self.auth.len())]))),
            Load::CartAdd => {
                let k = self.adds.fetch_add(1, Ordering::Relaxed);
                let slot = cart_add_slot(k, self.carts.len());
                let product = self.carts[slot.user][slot.line];
                let auth = &self.auth[slot.user];
                let reset = slot.reset.then(|| {
                    let body = Bytes::from_static(br#"{"quantity":1}"#);
                    request(Method::PUT, &self.cart_item[product], &self.host, Some(auth), body)
                });
                let add = request(Method::POST, &self.cart_add, &self.host, Some(auth), self.add_body[product].clone());
                (reset, add)
            }
        }
    }
}

/// Which cart line the k-th add goes to: round robin over every (user, line), users first, so
/// each line gets one add per round; `reset` on every add of every RESET_EVERY-th round (each
/// line's first add after RESET_EVERY rounds).
#[derive(Debug, PartialEq, Eq)]
pub struct Slot {
    pub user: usize,
    pub line: usize,
    pub reset: bool,
}

pub fn cart_add_slot(k: u64, users: usize) -> Slot {
    let users = users.max(1) as u64;
    let pairs = users * CART_LINES as u64;
    let pair = k % pairs;
    let round = k / pairs;
    Slot {
        user: (pair % users) as usize,
        line: (pair / users) as usize,
        reset: round > 0 && round.is_multiple_of(RESET_EVERY),
    }
}

/// When connection `conn` of `connections` should send its k-th request, for a total `rate` per
/// second: requests are spaced 1/rate apart overall, interleaved across the connections.
pub fn intended_offset(rate: f64, connections: usize, conn: usize, k: u64) -> Duration {
    let slot = k as f64 * connections as f64 + conn as f64;
    Duration::try_from_secs_f64(slot / rate).unwrap_or(Duration::MAX)
}

/// How a scenario is driven.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    pub scenario: Load,
    pub connections: usize,
    /// Total requests per second; `None` for the closed loop.
    pub rate: Option<f64>,
    pub warmup: Duration,
    pub duration: Duration,
    pub timeout: Duration,
}

/// Runs one scenario: warm-up, then measured time. Returns the merged tally and how long the
/// measured part really took (until the last request finished).
pub async fn run(plan: Plan, target: Arc<Target>, workload: Arc<Workload>) -> anyhow::Result<(Tally, Duration)> {
    // A short head start so every task is spawned before the first intended send.
    let start = Instant::now() + Duration::from_millis(20);
    let measure_from = start.checked_add(plan.warmup).context("warm-up too long")?;
    let end = measure_from.checked_add(plan.duration).context("duration too long")?;
    let mut tasks = JoinSet::new();
    for conn in 0..plan.connections {
        let worker = Worker {
            plan,
            conn_index: conn,
            conn: Conn::new(target.clone()),
            workload: workload.clone(),
            rng: Rng::new(0x5eed ^ ((conn as u64) << 32) ^ plan.scenario as u64),
            tally: Tally::new()?,
        };
        tasks.spawn(async move {
            match plan.rate {
                None => worker.closed(start, measure_from, end).await,
                Some(rate) => worker.fixed_rate(rate, start, measure_from, end).await,
            }
        });
    }
    let mut total = Tally::new()?;
    while let Some(tally) = tasks.join_next().await {
        total.merge(tally.context("load task")?);
    }
    Ok((total, Instant::now().saturating_duration_since(measure_from)))
}

struct Worker {
    plan: Plan,
    conn_index: usize,
    conn: Conn,
    workload: Arc<Workload>,
    rng: Rng,
    tally: Tally,
}

impl Worker {
    /// Back to back on one connection until `end`; requests started before `measure_from` are
    /// the warm-up and are not recorded.
    async fn closed(mut self, start: Instant, measure_from: Instant, end: Instant) -> Tally {
        tokio::time::sleep_until(start).await;
        while Instant::now() < end {
            let (reset, req) = self.workload.next(self.plan.scenario, &mut self.rng);
            if let Some(reset) = reset {
                let _ = self.conn.send(reset, self.plan.timeout).await;
            }
            let sent = Instant::now();
            let outcome = self.conn.send(req, self.plan.timeout).await;
            if sent >= measure_from {
                self.tally.record(&outcome, sent.elapsed());
            }
            if outcome.is_err() {
                tokio::time::sleep(ERROR_PAUSE).await;
            }
        }
        self.tally
    }

    /// The warm-up, then the measured time, each on its own fixed schedule (a backlog left by
    /// the warm-up is dropped, not carried into the measurement).
    async fn fixed_rate(mut self, rate: f64, start: Instant, measure_from: Instant, end: Instant) -> Tally {
        if measure_from > start {
            self.paced(rate, start, measure_from, false).await;
        }
        self.paced(rate, measure_from, end, true).await;
        self.tally
    }

    /// Each request has an intended send time on a fixed schedule from `from`; latency runs from
    /// that time, so a server that stalls is charged for the requests that waited behind the
    /// stall (no coordinated omission). A connection that is behind sends back to back. At
    /// `until`, requests not sent yet are dropped and, when recording, counted as unsent.
    async fn paced(&mut self, rate: f64, from: Instant, until: Instant, record: bool) {
        let (connections, conn_index) = (self.plan.connections, self.conn_index);
        let schedule = |k| from.checked_add(intended_offset(rate, connections, conn_index, k));
        let mut k = 0;
        while let Some(intended) = schedule(k)
            && intended < until
        {
            if Instant::now() >= until {
                break;
            }
            tokio::time::sleep_until(intended).await;
            let (reset, req) = self.workload.next(self.plan.scenario, &mut self.rng);
            if let Some(reset) = reset {
                let _ = self.conn.send(reset, self.plan.timeout).await;
            }
            let outcome = self.conn.send(req, self.plan.timeout).await;
            if record {
                self.tally.record(&outcome, intended.elapsed());
            }
            k += 1;
        }
        if record {
            while schedule(k).is_some_and(|intended| intended < until) {
                self.tally.unsent += 1;
                k += 1;
            }
        }
    }
}

/// SplitMix64: small, fast and good enough to pick products and users.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_spreads_requests_evenly_over_connections() {
        // 1000 req/s over 4 connections: one request every millisecond overall, each connection
        // every 4 ms, offset by its index.
        let at = |conn, k| intended_offset(1000.0, 4, conn, k);
        assert_eq!(at(0, 0), Duration::ZERO);
        assert_eq!(at(1, 0), Duration::from_millis(1));
        assert_eq!(at(3, 0), Duration::from_millis(3));
        assert_eq!(at(0, 1), Duration::from_millis(4));
        assert_eq!(at(2, 5), Duration::from_millis(22));
        // Every slot of the first second is used exactly once.
        let mut slots: Vec<Duration> = (0..4).flat_map(|c| (0..250).map(move |k| at(c, k))).collect();
        slots.sort();
        slots.dedup();
        assert_eq!(slots.len(), 1000);
        assert!(slots.iter().all(|d| *d < Duration::from_secs(1)));
    }

    #[test]
    fn schedule_at_fractional_and_low_rates() {
        assert_eq!(intended_offset(0.5, 1, 0, 3), Duration::from_secs(6));
        assert_eq!(intended_offset(10.0, 64, 63, 0), Duration::from_millis(6300));
        let us = intended_offset(3.0, 1, 0, 1).as_micros();
        assert!((333_333..=333_334).contains(&us));
    }

    #[test]
    fn cart_adds_go_round_robin_and_reset_before_the_limit() {
        let users = 3;
        let pairs = (users * CART_LINES) as u64;
        assert_eq!(cart_add_slot(0, users), Slot { user: 0, line: 0, reset: false });
        assert_eq!(cart_add_slot(1, users), Slot { user: 1, line: 0, reset: false });
        assert_eq!(cart_add_slot(3, users), Slot { user: 0, line: 1, reset: false });
        assert_eq!(cart_add_slot(pairs - 1, users), Slot { user: 2, line: CART_LINES - 1, reset: false });
        // Each round touches every line once.
        let mut round: Vec<(usize, usize)> =
            (0..pairs).map(|k| cart_add_slot(k, users)).map(|s| (s.user, s.line)).collect();
        round.sort_unstable();
        round.dedup();
        assert_eq!(round.len(), pairs as usize);
        // Simulate the quantity of one line: seeded at 1, +1 per add, back to 1 on reset.
        let mut quantity = 1u64;
        let mut highest = 0;
        for k in (0..pairs * 5000).step_by(pairs as usize) {
            let slot = cart_add_slot(k, users);
            assert_eq!((slot.user, slot.line), (0, 0));
            if slot.reset {
                quantity = 1;
            }
            quantity += 1;
            highest = highest.max(quantity);
        }
        assert!(highest <= 999 - 90, "line reached {highest}");
        assert!(cart_add_slot(pairs * RESET_EVERY, users).reset);
        // In that round every line is reset once (on its one add), in the next none is.
        assert!((pairs * RESET_EVERY..pairs * (RESET_EVERY + 1)).all(|k| cart_add_slot(k, users).reset));
        assert!((pairs * (RESET_EVERY + 1)..pairs * (RESET_EVERY + 2)).all(|k| !cart_add_slot(k, users).reset));
    }

    #[test]
    fn rng_is_deterministic_and_covers_the_range() {
        let mut a = Rng::new(7);
        let mut b = Rng::new(7);
        assert_eq!(a.next_u64(), b.next_u64());
        let mut seen = [0u32; 10];
        for _ in 0..10_000 {
            seen[a.below(10)] += 1;
        }
        assert!(seen.iter().all(|&n| n > 800), "{seen:?}");
        assert_eq!(Rng::new(1).below(1), 0);
    }
}
