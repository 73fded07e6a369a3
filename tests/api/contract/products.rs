//! The `ProductStore` and `Outbox` contracts, together: in every adapter they are one store (one
//! database), and a write and its event are stored atomically.
//!
//! A real store may hold other tests' and earlier runs' products and events, so every test uses fresh
//! ids and its own category, and looks only at the events of its own products: claims ask for up to
//! `ALL` events and keep those whose key is one of the test's. Other tests' claims may lease this
//! test's events for a while, so a test waits (up to `WAIT`) for the events it expects rather than
//! expecting them in one claim, and its own claims lease for at most `LEASE`, so that what it
//! happens to take from another test comes back well within that test's `WAIT`. Each test marks
//! its events sent when done, so that they do not pile up in the store.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use agora::adapters::memory::MemoryProductStore;
use agora::kernel::money::Money;
use agora::ports::{Page, WriteError};
use agora::products::domain::{Product, ProductChange, ProductQuery};
use agora::products::ports::{Outbox, OutboxEvent, ProductStore};
use chrono::{DateTime, Utc};
use tokio::sync::Barrier;
use tokio::time::{Instant, timeout};
use uuid::Uuid;

use super::{WAIT, now_ms, unique};

/// `product_store_contract!(name, || async { ... (Arc<dyn ProductStore>, Arc<dyn Outbox>) })`: a
/// module `name` with one `#[tokio::test]` per contract test, each on a store and its outbox from the
/// factory (two handles on the same store). Attributes before `name` (e.g. `#[ignore = "needs
/// MySQL"]`) go on every test.
macro_rules! product_store_contract {
    ($(#[$attr:meta])* $name:ident, $make:expr) => {
        $crate::contract::port_contract!(products, [$(#[$attr])*] $name, $make;
            ping_answers,
            create_then_get,
            get_many_skips_unknown_ids_and_repeats,
            create_with_an_existing_id_is_a_duplicate,
            update_checks_the_expected_version,
            delete_checks_the_expected_version,
            list_filters_by_category,
            list_searches_name_and_description,
            list_filters_by_price,
            list_sorts_with_ties_broken_by_id,
            list_pages,
            claim_returns_oldest_first_up_to_limit,
            claimed_events_are_not_claimable_during_their_lease,
            an_owner_claims_its_own_events_again_at_once,
            expired_leases_make_events_claimable_again,
            sent_events_are_never_claimed_again,
            pending_counts_unsent_events,
            concurrent_claimers_never_share_an_event,
            a_key_waits_while_its_older_event_is_leased,
        );
    };
}

/// What a product-store contract test gets: the store and its outbox, one database.
pub type Stores = (Arc<dyn ProductStore>, Arc<dyn Outbox>);

product_store_contract!(memory, || async {
    let store = Arc::new(MemoryProductStore::new());
    Some((store.clone() as Arc<dyn ProductStore>, store as Arc<dyn Outbox>))
});
// The same contract on the real server (scripts/infra up).
product_store_contract!(mysql, || async {
    let store = Arc::new(crate::real::product_store().await?);
    Some((store.clone() as Arc<dyn ProductStore>, store as Arc<dyn Outbox>))
});

/// A claim limit above anything a test store holds: "every claimable event".
const ALL: usize = 10_000;
/// The lease of claims that must hold their events while the test checks something.
const LEASE: Duration = Duration::from_secs(3);
/// The lease of claims that only look, and of the expiry test.
const SHORT_LEASE: Duration = Duration::from_millis(300);
/// Pause between two claims that wait for events.
const POLL: Duration = Duration::from_millis(20);

// ---------------------------------------------------------------------------------------------
// Products and events

fn product(category: &str, name: &str, price_cents: i64) -> Product {
    let now = now_ms();
    let id = Uuid::new_v4();
    Product {
        id,
        name: name.into(),
        description: format!("All about {name}."),
        price: Money::from_cents(price_cents),
        stock: 10,
        category: category.into(),
        image_url: Some(format!("https://img.example.com/{id}.png")),
        version: 1,
        created_at: now,
        updated_at: now,
    }
}

/// The next version of `product`, renamed and repriced.
fn changed(product: &Product, name: &str, price_cents: i64) -> Product {
    let change =
        ProductChange { name: Some(name.into()), price: Some(Money::from_cents(price_cents)), ..Default::default() };
    product.changed(&change, now_ms())
}

/// A fresh event about the product `key`, with a payload that is not plain ASCII.
fn event(key: Uuid, kind: &str) -> OutboxEvent {
    let id = Uuid::new_v4();
    let payload = serde_json::json!({ "eventId": id, "type": kind, "productId": key, "note": "café ☕ \"quoted\"" });
    OutboxEvent {
        id,
        key: key.to_string(),
        payload: serde_json::to_vec(&payload).unwrap(),
        headers: vec![(
            "traceparent".into(),
            format!("00-{}-{}-01", Uuid::new_v4().simple(), &id.simple().to_string()[..16]),
        )],
        created_at: now_ms(),
    }
}

async fn try_create(store: &dyn ProductStore, product: &Product, event: &OutboxEvent) -> Result<(), WriteError> {
    timeout(WAIT, store.create(product, event)).await.expect("create timed out")
}

/// Creates `product`; returns its event.
async fn create(store: &dyn ProductStore, product: &Product) -> OutboxEvent {
    let event = event(product.id, "product.created");
    try_create(store, product, &event).await.expect("create failed");
    event
}

/// Creates every product; returns their events in order.
async fn create_all(store: &dyn ProductStore, products: &[Product]) -> Vec<OutboxEvent> {
    let mut events = Vec::with_capacity(products.len());
    for product in products {
        events.push(create(store, product).await);
    }
    events
}

async fn try_update(
    store: &dyn ProductStore,
    product: &Product,
    expected_version: u64,
    event: &OutboxEvent,
) -> Result<(), WriteError> {
    timeout(WAIT, store.update(product, expected_version, event)).await.expect("update timed out")
}

async fn try_delete(
    store: &dyn ProductStore,
    id: Uuid,
    expected_version: u64,
    event: &OutboxEvent,
) -> Result<(), WriteError> {
    timeout(WAIT, store.delete(id, expected_version, event)).await.expect("delete timed out")
}

async fn get(store: &dyn ProductStore, id: Uuid) -> Option<Product> {
    timeout(WAIT, store.get(id)).await.expect("get timed out").expect("get failed")
}

async fn get_many(store: &dyn ProductStore, ids: &[Uuid]) -> Vec<Product> {
    let mut found = timeout(WAIT, store.get_many(ids)).await.expect("get_many timed out").expect("get_many failed");
    found.sort_by_key(|p| p.id);
    found
}

/// Lists with query-string parameters, as the HTTP layer would.
async fn list(store: &dyn ProductStore, params: &[(&str, &str)]) -> Page<Product> {
    let map: HashMap<String, String> = params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let query = ProductQuery::parse(&map).unwrap_or_else(|e| panic!("bad query {params:?}: {e:?}"));
    timeout(WAIT, store.list(&query)).await.expect("list timed out").expect("list failed")
}

/// The ids of a listing, in order, and its total.
async fn list_ids(store: &dyn ProductStore, params: &[(&str, &str)]) -> (Vec<Uuid>, u64) {
    let page = list(store, params).await;
    (page.items.iter().map(|p| p.id).collect(), page.total)
}

fn ids(products: &[&Product]) -> Vec<Uuid> {
    products.iter().map(|p| p.id).collect()
}

// ---------------------------------------------------------------------------------------------
// Outbox helpers

/// A claim by a caller of its own, as every claim of these tests is unless it says otherwise.
async fn claim(outbox: &dyn Outbox, limit: usize, lease: Duration) -> Vec<OutboxEvent> {
    claim_as(outbox, &unique("owner"), limit, lease).await
}

async fn claim_as(outbox: &dyn Outbox, owner: &str, limit: usize, lease: Duration) -> Vec<OutboxEvent> {
    timeout(WAIT, outbox.claim(owner, limit, lease)).await.expect("claim timed out").expect("claim failed")
}

async fn mark_sent(outbox: &dyn Outbox, ids: &[Uuid]) {
    timeout(WAIT, outbox.mark_sent(ids)).await.expect("mark_sent timed out").expect("mark_sent failed");
}

async fn pending(outbox: &dyn Outbox) -> u64 {
    timeout(WAIT, outbox.pending()).await.expect("pending timed out").expect("pending failed")
}

fn keys_of(events: &[&OutboxEvent]) -> HashSet<String> {
    events.iter().map(|e| e.key.clone()).collect()
}

fn ids_of(events: &[OutboxEvent]) -> Vec<Uuid> {
    events.iter().map(|e| e.id).collect()
}

/// This test's events in a claim: those with one of its keys.
fn mine(claimed: Vec<OutboxEvent>, keys: &HashSet<String>) -> Vec<OutboxEvent> {
    claimed.into_iter().filter(|e| keys.contains(&e.key)).collect()
}

/// Claims with `limit` and `lease` until every event of `wanted` has come out; returns this test's
/// events (by `keys`) of each claim that had any, each event only the first time it came out.
async fn claim_until(
    outbox: &dyn Outbox,
    keys: &HashSet<String>,
    wanted: &[Uuid],
    limit: usize,
    lease: Duration,
) -> Vec<Vec<OutboxEvent>> {
    let deadline = Instant::now() + WAIT;
    let mut seen: HashSet<Uuid> = HashSet::new();
    let mut batches = Vec::new();
    loop {
        let claimed = claim(outbox, limit, lease).await;
        assert!(claimed.len() <= limit, "claim({limit}) returned {} events", claimed.len());
        let batch: Vec<OutboxEvent> = mine(claimed, keys).into_iter().filter(|e| seen.insert(e.id)).collect();
        if !batch.is_empty() {
            batches.push(batch);
        }
        let missing: Vec<&Uuid> = wanted.iter().filter(|id| !seen.contains(id)).collect();
        if missing.is_empty() {
            return batches;
        }
        assert!(Instant::now() < deadline, "events {missing:?} were never claimed");
        tokio::time::sleep(POLL).await;
    }
}

/// Checks that the outbox holds exactly `expected` for `keys` (every key of `expected` and any
/// other key a failed write used): each event whole, each key's in order, and nothing else. Then
/// marks them sent.
async fn assert_outbox(outbox: &dyn Outbox, keys: &[String], expected: &[&OutboxEvent]) {
    let keys: HashSet<String> = keys.iter().cloned().chain(keys_of(expected)).collect();
    let wanted: Vec<Uuid> = expected.iter().map(|e| e.id).collect();
    let got: Vec<OutboxEvent> = claim_until(outbox, &keys, &wanted, ALL, SHORT_LEASE).await.concat();
    let unexpected: Vec<&OutboxEvent> = got.iter().filter(|e| !wanted.contains(&e.id)).collect();
    assert!(unexpected.is_empty(), "events of failed writes were stored: {unexpected:?}");
    for key in &keys {
        let got: Vec<&OutboxEvent> = got.iter().filter(|e| &e.key == key).collect();
        let want: Vec<&OutboxEvent> = expected.iter().copied().filter(|e| &e.key == key).collect();
        assert_eq!(got, want, "the events of {key}");
    }
    mark_sent(outbox, &wanted).await;
    // Anything still there for these keys (e.g. queued behind an event that was leased) is a stray.
    let strays = mine(claim(outbox, ALL, SHORT_LEASE).await, &keys);
    assert!(strays.is_empty(), "events of failed writes were stored: {strays:?}");
}

// ---------------------------------------------------------------------------------------------
// The store

pub async fn ping_answers((store, outbox): Stores) {
    timeout(Duration::from_secs(1), store.ping()).await.expect("ping took over a second").expect("ping failed");
    timeout(Duration::from_secs(1), outbox.ping()).await.expect("ping took over a second").expect("ping failed");
}

pub async fn create_then_get((store, outbox): Stores) {
    let category = unique("cat");
    let full = product(&category, "lamp", 1999);
    let bare = Product { description: String::new(), image_url: None, stock: 0, ..product(&category, "bare", 0) };
    let events = create_all(&*store, &[full.clone(), bare.clone()]).await;
    assert_eq!(get(&*store, full.id).await, Some(full));
    assert_eq!(get(&*store, bare.id).await, Some(bare));
    assert_eq!(get(&*store, Uuid::new_v4()).await, None);
    assert_outbox(&*outbox, &[], &events.iter().collect::<Vec<_>>()).await;
}

pub async fn get_many_skips_unknown_ids_and_repeats((store, outbox): Stores) {
    let category = unique("cat");
    let (a, b, c) = (product(&category, "a", 100), product(&category, "b", 200), product(&category, "c", 300));
    let events = create_all(&*store, &[a.clone(), b.clone(), c.clone()]).await;
    let mut expected = vec![a.clone(), b.clone()];
    expected.sort_by_key(|p| p.id);
    assert_eq!(get_many(&*store, &[b.id, Uuid::new_v4(), a.id, b.id, a.id]).await, expected);
    assert_eq!(get_many(&*store, &[c.id]).await, [c]);
    assert_eq!(get_many(&*store, &[Uuid::new_v4()]).await, []);
    assert_eq!(get_many(&*store, &[]).await, []);
    mark_sent(&*outbox, &ids_of(&events)).await;
}

pub async fn create_with_an_existing_id_is_a_duplicate((store, outbox): Stores) {
    let category = unique("cat");
    let original = product(&category, "original", 100);
    let created = create(&*store, &original).await;
    let copy = Product { id: original.id, ..product(&category, "copy", 200) };
    let refused = event(original.id, "product.created");
    assert!(
        matches!(try_create(&*store, &copy, &refused).await, Err(WriteError::Duplicate)),
        "created a product with an existing id"
    );
    assert_eq!(get(&*store, original.id).await, Some(original));
    assert_outbox(&*outbox, &[], &[&created]).await;
}

pub async fn update_checks_the_expected_version((store, outbox): Stores) {
    let category = unique("cat");
    let v1 = product(&category, "chair", 4000);
    let created = create(&*store, &v1).await;

    let v2 = changed(&v1, "armchair", 4500);
    let updated = event(v1.id, "product.updated");
    try_update(&*store, &v2, 1, &updated).await.expect("update with the right version failed");
    assert_eq!(get(&*store, v1.id).await, Some(v2.clone()));

    // The stored version is 2 now: 1 is stale, and a version from the future is wrong too.
    let v3 = changed(&v2, "stool", 10);
    for stale in [1, 3] {
        let refused = event(v1.id, "product.updated");
        assert!(
            matches!(try_update(&*store, &v3, stale, &refused).await, Err(WriteError::Conflict)),
            "updated with expected version {stale} while the stored one is 2"
        );
    }
    assert_eq!(get(&*store, v1.id).await, Some(v2.clone()), "a refused update changed the product");

    let ghost = changed(&product(&category, "ghost", 1), "ghost", 2);
    let refused = event(ghost.id, "product.updated");
    assert!(
        matches!(try_update(&*store, &ghost, 1, &refused).await, Err(WriteError::NotFound)),
        "updated a product that does not exist"
    );
    assert_eq!(get(&*store, ghost.id).await, None, "the update created the product");

    let updated_again = event(v1.id, "product.updated");
    try_update(&*store, &v3, 2, &updated_again).await.expect("the next update failed");
    assert_eq!(get(&*store, v1.id).await, Some(v3));
    assert_outbox(&*outbox, &[ghost.id.to_string()], &[&created, &updated, &updated_again]).await;
}

pub async fn delete_checks_the_expected_version((store, outbox): Stores) {
    let category = unique("cat");
    let v1 = product(&category, "desk", 9000);
    let kept = product(&category, "shelf", 3000);
    let created = create(&*store, &v1).await;
    let kept_created = create(&*store, &kept).await;
    let v2 = changed(&v1, "standing desk", 12000);
    let updated = event(v1.id, "product.updated");
    try_update(&*store, &v2, 1, &updated).await.expect("update failed");

    for stale in [1, 3] {
        let refused = event(v1.id, "product.deleted");
        assert!(
            matches!(try_delete(&*store, v1.id, stale, &refused).await, Err(WriteError::Conflict)),
            "deleted with expected version {stale} while the stored one is 2"
        );
    }
    assert_eq!(get(&*store, v1.id).await, Some(v2), "a refused delete removed the product");

    let deleted = event(v1.id, "product.deleted");
    try_delete(&*store, v1.id, 2, &deleted).await.expect("delete with the right version failed");
    assert_eq!(get(&*store, v1.id).await, None);
    assert_eq!(get_many(&*store, &[v1.id, kept.id]).await, std::slice::from_ref(&kept));
    assert_eq!(list_ids(&*store, &[("category", category.as_str())]).await, (vec![kept.id], 1));

    let refused = event(v1.id, "product.deleted");
    assert!(
        matches!(try_delete(&*store, v1.id, 2, &refused).await, Err(WriteError::NotFound)),
        "deleted a product twice"
    );
    let ghost = Uuid::new_v4();
    let refused = event(ghost, "product.deleted");
    assert!(
        matches!(try_delete(&*store, ghost, 1, &refused).await, Err(WriteError::NotFound)),
        "deleted a product that does not exist"
    );
    assert_outbox(&*outbox, &[ghost.to_string()], &[&created, &kept_created, &updated, &deleted]).await;
}

pub async fn list_filters_by_category((store, outbox): Stores) {
    let category = unique("cat");
    let other = format!("{category}-other");
    let ours = [product(&category, "one", 100), product(&category, "two", 200), product(&category, "three", 300)];
    let theirs = product(&other, "four", 400);
    let mut events = create_all(&*store, &ours).await;
    events.push(create(&*store, &theirs).await);

    let by_price = |ps: &[Product]| ps.iter().map(|p| p.id).collect::<Vec<_>>();
    let expected = (by_price(&ours), 3);
    assert_eq!(list_ids(&*store, &[("category", category.as_str()), ("sort", "price")]).await, expected);
    // Exact but case-insensitive.
    let upper = category.to_uppercase();
    assert_eq!(list_ids(&*store, &[("category", upper.as_str()), ("sort", "price")]).await, expected);
    assert_eq!(list_ids(&*store, &[("category", other.as_str())]).await, (vec![theirs.id], 1));
    let prefix = &category[..category.len() - 1];
    assert_eq!(list_ids(&*store, &[("category", prefix)]).await, (vec![], 0), "category matched a prefix");
    let page = list(&*store, &[("category", category.as_str()), ("sort", "price")]).await;
    assert_eq!(page.items, ours, "listed products differ from those stored");
    mark_sent(&*outbox, &ids_of(&events)).await;
}

pub async fn list_searches_name_and_description((store, outbox): Stores) {
    let category = unique("cat");
    let red = Product { description: "Fresh and crisp".into(), ..product(&category, "Red Apple", 100) };
    let pear = Product { description: "Tastes like APPLE, almost".into(), ..product(&category, "Green pear", 200) };
    let banana = Product { description: "Yellow".into(), ..product(&category, "Banana", 300) };
    let sale = Product { description: "Half price".into(), ..product(&category, "50%_off bundle", 400) };
    let events = create_all(&*store, &[red.clone(), pear.clone(), banana.clone(), sale.clone()]).await;

    let search = |q: &'static str| {
        let (store, category) = (store.clone(), category.clone());
        async move { list_ids(&*store, &[("category", category.as_str()), ("q", q), ("sort", "price")]).await }
    };
    assert_eq!(search("apple").await, (ids(&[&red, &pear]), 2), "name or description, any case");
    assert_eq!(search("APPLE").await, (ids(&[&red, &pear]), 2));
    assert_eq!(search("pEAR").await, (ids(&[&pear]), 1));
    assert_eq!(search("yellow").await, (ids(&[&banana]), 1), "description only");
    assert_eq!(search("an").await, (ids(&[&red, &banana]), 2), "a substring anywhere");
    // The text is matched literally, not as a pattern.
    assert_eq!(search("%").await, (ids(&[&sale]), 1), "% is a wildcard");
    assert_eq!(search("_").await, (ids(&[&sale]), 1), "_ is a wildcard");
    assert_eq!(search("0%_o").await, (ids(&[&sale]), 1));
    assert_eq!(search("kiwi").await, (vec![], 0));
    mark_sent(&*outbox, &ids_of(&events)).await;
}

pub async fn list_filters_by_price((store, outbox): Stores) {
    let category = unique("cat");
    let ps: Vec<Product> =
        [100, 500, 999, 1000, 1001, 2000].iter().map(|&cents| product(&category, "thing", cents)).collect();
    let events = create_all(&*store, &ps).await;
    let range = |from: usize, to: usize| (ps[from..to].iter().map(|p| p.id).collect::<Vec<_>>(), (to - from) as u64);
    let cat = category.as_str();
    let by_price = ("sort", "price");
    // Both bounds are inclusive.
    assert_eq!(
        list_ids(&*store, &[("category", cat), by_price, ("minPrice", "5"), ("maxPrice", "10")]).await,
        range(1, 4)
    );
    assert_eq!(list_ids(&*store, &[("category", cat), by_price, ("minPrice", "10")]).await, range(3, 6));
    assert_eq!(list_ids(&*store, &[("category", cat), by_price, ("maxPrice", "9.99")]).await, range(0, 3));
    assert_eq!(
        list_ids(&*store, &[("category", cat), by_price, ("minPrice", "10"), ("maxPrice", "10")]).await,
        range(3, 4)
    );
    assert_eq!(list_ids(&*store, &[("category", cat), by_price, ("minPrice", "20.01")]).await, range(6, 6));
    // With the other filters.
    assert_eq!(
        list_ids(&*store, &[("category", cat), by_price, ("minPrice", "9.99"), ("q", "THING"), ("maxPrice", "10.01")])
            .await,
        range(2, 5)
    );
    mark_sent(&*outbox, &ids_of(&events)).await;
}

/// The order the contract asks for: by the key, ties by id, and a descending sort is the exact reverse.
fn sorted(products: &[Product], sort: &str) -> Vec<Uuid> {
    let (field, descending) = match sort.strip_prefix('-') {
        Some(field) => (field, true),
        None => (sort, false),
    };
    let mut products: Vec<&Product> = products.iter().collect();
    products.sort_by(|a, b| {
        let order = match field {
            "price" => a.price.cmp(&b.price),
            "name" => a.name.cmp(&b.name),
            "createdAt" => a.created_at.cmp(&b.created_at),
            _ => unreachable!("{sort}"),
        }
        .then_with(|| a.id.cmp(&b.id));
        if descending { order.reverse() } else { order }
    });
    products.iter().map(|p| p.id).collect()
}

pub async fn list_sorts_with_ties_broken_by_id((store, outbox): Stores) {
    let category = unique("cat");
    let base: DateTime<Utc> = now_ms() - chrono::Duration::minutes(1);
    // Every key has a tie; lowercase ASCII names, so that collations agree. Ids fall as the
    // products are created, so that neither insertion order nor an id-only order passes.
    let rows = [
        ("mango", 500, 0),
        ("apple", 300, 10),
        ("kiwi", 500, 10),
        ("apple", 100, 20),
        ("cherry", 300, 30),
        ("banana", 900, 40),
    ];
    let mut new_ids: Vec<Uuid> = rows.iter().map(|_| Uuid::new_v4()).collect();
    new_ids.sort_unstable_by(|a, b| b.cmp(a));
    let ps: Vec<Product> = rows
        .iter()
        .zip(new_ids)
        .map(|(&(name, cents, ms), id)| {
            let at = base + chrono::Duration::milliseconds(ms);
            Product { id, created_at: at, updated_at: at, ..product(&category, name, cents) }
        })
        .collect();
    let events = create_all(&*store, &ps).await;
    for sort in ["price", "-price", "name", "-name", "createdAt", "-createdAt"] {
        let got = list_ids(&*store, &[("category", category.as_str()), ("sort", sort)]).await;
        assert_eq!(got, (sorted(&ps, sort), 6), "sort={sort}");
    }
    // The default is the newest first.
    assert_eq!(list_ids(&*store, &[("category", category.as_str())]).await, (sorted(&ps, "-createdAt"), 6));
    mark_sent(&*outbox, &ids_of(&events)).await;
}

pub async fn list_pages((store, outbox): Stores) {
    let category = unique("cat");
    let ps: Vec<Product> =
        [700, 100, 300, 300, 500, 200, 600].iter().map(|&cents| product(&category, "item", cents)).collect();
    let events = create_all(&*store, &ps).await;
    let all = sorted(&ps, "price");
    let cat = category.as_str();
    for limit in [3, 5, 7, 100] {
        // Every page, and one past the end.
        for page in 1..=all.len().div_ceil(limit) + 1 {
            let range = ((page - 1) * limit).min(all.len())..(page * limit).min(all.len());
            let (page_text, limit_text) = (page.to_string(), limit.to_string());
            let params =
                [("category", cat), ("sort", "price"), ("limit", limit_text.as_str()), ("page", page_text.as_str())];
            assert_eq!(list_ids(&*store, &params).await, (all[range].to_vec(), 7), "limit={limit} page={page}");
        }
    }
    // Far beyond the end: nothing, but the total still counts.
    let got = list_ids(&*store, &[("category", cat), ("limit", "100"), ("page", "1000000")]).await;
    assert_eq!(got, (vec![], 7));
    mark_sent(&*outbox, &ids_of(&events)).await;
}

// ---------------------------------------------------------------------------------------------
// The outbox

/// `n` products of a fresh category, created one after the other; their events in order.
async fn fresh_events(store: &dyn ProductStore, n: usize) -> Vec<OutboxEvent> {
    let category = unique("cat");
    let ps: Vec<Product> = (0..n).map(|i| product(&category, &format!("item {i}"), 100)).collect();
    create_all(store, &ps).await
}

/// The same events, whatever their order.
fn assert_same_events(got: Vec<OutboxEvent>, want: &[OutboxEvent], what: &str) {
    let mut got = got;
    let mut want = want.to_vec();
    got.sort_by_key(|e| e.id);
    want.sort_by_key(|e| e.id);
    assert_eq!(got, want, "{what}");
}

fn key_set(events: &[OutboxEvent]) -> HashSet<String> {
    events.iter().map(|e| e.key.clone()).collect()
}

/// Every batch lists `events` in their order (as a subsequence).
fn assert_in_order(batches: &[Vec<OutboxEvent>], events: &[OutboxEvent]) {
    let position: HashMap<Uuid, usize> = events.iter().enumerate().map(|(i, e)| (e.id, i)).collect();
    for batch in batches {
        let positions: Vec<usize> = batch.iter().filter_map(|e| position.get(&e.id).copied()).collect();
        assert!(positions.windows(2).all(|w| w[0] < w[1]), "a claim returned events out of order: {positions:?}");
    }
}

pub async fn claim_returns_oldest_first_up_to_limit((store, outbox): Stores) {
    let events = fresh_events(&*store, 5).await;
    let keys = key_set(&events);
    let batches = claim_until(&*outbox, &keys, &ids_of(&events), ALL, SHORT_LEASE).await;
    assert_in_order(&batches, &events);
    assert_same_events(batches.concat(), &events, "claimed events differ from those written");
    mark_sent(&*outbox, &ids_of(&events)).await;

    // Three claimable events: a claim of 2 returns 2 (older ones of other tests, maybe), in order.
    let events = fresh_events(&*store, 3).await;
    let keys = key_set(&events);
    let mut full_claims = 0;
    let deadline = Instant::now() + WAIT;
    let mut seen: HashSet<Uuid> = HashSet::new();
    while seen.len() < events.len() {
        assert!(Instant::now() < deadline, "events were never claimed");
        let claimed = claim(&*outbox, 2, LEASE).await;
        assert!(claimed.len() <= 2, "claim(2) returned {} events", claimed.len());
        full_claims += usize::from(claimed.len() == 2);
        let batch = mine(claimed, &keys);
        assert_in_order(std::slice::from_ref(&batch), &events);
        if batch.is_empty() {
            tokio::time::sleep(POLL).await;
        }
        seen.extend(batch.iter().map(|e| e.id));
    }
    assert!(full_claims > 0, "a claim of 2 with 3 events claimable did not return 2");
    mark_sent(&*outbox, &ids_of(&events)).await;
}

pub async fn claimed_events_are_not_claimable_during_their_lease((store, outbox): Stores) {
    let events = fresh_events(&*store, 3).await;
    let keys = key_set(&events);
    let started = Instant::now();
    claim_until(&*outbox, &keys, &ids_of(&events), ALL, LEASE).await;
    for _ in 0..3 {
        let again = mine(claim(&*outbox, ALL, LEASE).await, &keys);
        assert!(again.is_empty(), "leased events were claimed again: {again:?}");
    }
    assert!(started.elapsed() < LEASE, "too slow to tell: the lease may have run out");
    mark_sent(&*outbox, &ids_of(&events)).await;
}

/// A relay whose publish failed takes its events back at once; nobody else can meanwhile.
/// (Events keep their headers through the outbox: `assert_same_events` compares them whole.)
pub async fn an_owner_claims_its_own_events_again_at_once((store, outbox): Stores) {
    let events = fresh_events(&*store, 3).await;
    let keys = key_set(&events);
    let owner = unique("relay");
    let started = Instant::now();
    let got = mine(claim_as(&*outbox, &owner, ALL, LEASE).await, &keys);
    assert_same_events(got, &events, "the first claim takes every event");
    let stranger = mine(claim(&*outbox, ALL, LEASE).await, &keys);
    assert!(stranger.is_empty(), "another owner took leased events: {stranger:?}");
    let again = mine(claim_as(&*outbox, &owner, ALL, LEASE).await, &keys);
    assert_same_events(again, &events, "the owner takes its own events back at once");
    assert!(started.elapsed() < LEASE, "too slow to tell: the lease may have run out");
    mark_sent(&*outbox, &ids_of(&events)).await;
}

pub async fn expired_leases_make_events_claimable_again((store, outbox): Stores) {
    let events = fresh_events(&*store, 3).await;
    let keys = key_set(&events);
    claim_until(&*outbox, &keys, &ids_of(&events), ALL, SHORT_LEASE).await;
    tokio::time::sleep(SHORT_LEASE + Duration::from_millis(200)).await;
    let again = claim_until(&*outbox, &keys, &ids_of(&events), ALL, SHORT_LEASE).await;
    assert_same_events(again.concat(), &events, "events came back different");
    mark_sent(&*outbox, &ids_of(&events)).await;
}

pub async fn sent_events_are_never_claimed_again((store, outbox): Stores) {
    let events = fresh_events(&*store, 4).await;
    let keys = key_set(&events);
    claim_until(&*outbox, &keys, &ids_of(&events), ALL, SHORT_LEASE).await;
    let (sent, unsent) = (ids_of(&events[..2]), ids_of(&events[2..]));
    mark_sent(&*outbox, &sent).await;
    // An event that was never claimed can be marked too.
    let never_claimed = fresh_events(&*store, 1).await;
    mark_sent(&*outbox, &ids_of(&never_claimed)).await;
    let keys: HashSet<String> = keys.into_iter().chain(key_set(&never_claimed)).collect();

    tokio::time::sleep(SHORT_LEASE + Duration::from_millis(200)).await;
    let again = claim_until(&*outbox, &keys, &unsent, ALL, SHORT_LEASE).await.concat();
    assert_same_events(again, &events[2..], "sent events were claimed again");

    mark_sent(&*outbox, &unsent).await;
    // Marking again, or unknown ids, or none, is harmless.
    mark_sent(&*outbox, &[sent[0], Uuid::new_v4()]).await;
    mark_sent(&*outbox, &[]).await;
    tokio::time::sleep(SHORT_LEASE + Duration::from_millis(200)).await;
    let left = mine(claim(&*outbox, ALL, SHORT_LEASE).await, &keys);
    assert!(left.is_empty(), "sent events were claimed again: {left:?}");
}

/// Other tests may write or send events meanwhile, so a step is retried until `pending` moved by
/// exactly its own effect around it once.
const ATTEMPTS: usize = 20;

pub async fn pending_counts_unsent_events((store, outbox): Stores) {
    let category = unique("cat");
    let mut unsent: Vec<Uuid> = Vec::new();

    // A write adds one.
    for attempt in 1.. {
        let before = pending(&*outbox).await;
        unsent.push(create(&*store, &product(&category, "pending", 100)).await.id);
        let after = pending(&*outbox).await;
        assert!(after >= unsent.len() as u64, "{after} pending, but this test alone left {}", unsent.len());
        if after == before + 1 {
            break;
        }
        assert!(attempt < ATTEMPTS, "a write never added exactly one pending event ({before} -> {after})");
    }

    // A failed write adds nothing.
    let existing = product(&category, "existing", 100);
    unsent.push(create(&*store, &existing).await.id);
    for attempt in 1.. {
        let before = pending(&*outbox).await;
        let refused = event(existing.id, "product.created");
        assert!(matches!(try_create(&*store, &existing, &refused).await, Err(WriteError::Duplicate)));
        let after = pending(&*outbox).await;
        if after == before {
            break;
        }
        assert!(attempt < ATTEMPTS, "a failed write changed the pending count ({before} -> {after})");
    }

    // A claimed event is still pending: it is not sent yet.
    for attempt in 1.. {
        unsent.push(create(&*store, &product(&category, "pending", 100)).await.id);
        let before = pending(&*outbox).await;
        claim(&*outbox, ALL, SHORT_LEASE).await;
        let after = pending(&*outbox).await;
        if after == before {
            break;
        }
        assert!(attempt < ATTEMPTS, "a claim changed the pending count ({before} -> {after})");
    }

    // Marking one sent removes one; marking it again, or an unknown id, removes nothing.
    for attempt in 1.. {
        if unsent.is_empty() {
            unsent.push(create(&*store, &product(&category, "pending", 100)).await.id);
        }
        let one = unsent.pop().unwrap();
        let before = pending(&*outbox).await;
        mark_sent(&*outbox, &[one]).await;
        let after = pending(&*outbox).await;
        if after + 1 == before {
            let before = pending(&*outbox).await;
            mark_sent(&*outbox, &[one, Uuid::new_v4()]).await;
            let after = pending(&*outbox).await;
            if after == before {
                break;
            }
        }
        assert!(attempt < ATTEMPTS, "marking one event sent did not remove exactly one ({before} -> {after})");
    }
    assert!(pending(&*outbox).await >= unsent.len() as u64);
    mark_sent(&*outbox, &unsent).await;
}

pub async fn concurrent_claimers_never_share_an_event((store, outbox): Stores) {
    const ROUNDS: usize = 20;
    const EVENTS: usize = 10;
    for round in 0..ROUNDS {
        let events = fresh_events(&*store, EVENTS).await;
        let keys = Arc::new(key_set(&events));
        let started = Instant::now();
        let barrier = Arc::new(Barrier::new(2));
        let claimers: Vec<_> = (0..2)
            .map(|_| {
                let (outbox, keys, barrier) = (outbox.clone(), keys.clone(), barrier.clone());
                tokio::spawn(async move {
                    barrier.wait().await;
                    mine(claim(&*outbox, ALL, LEASE).await, &keys)
                })
            })
            .collect();
        let mut claims = Vec::new();
        for claimer in claimers {
            claims.push(claimer.await.expect("claimer panicked"));
        }
        // Whatever the two did not get (another test may hold it for a while) comes later.
        let claimed: HashSet<Uuid> = claims.iter().flatten().map(|e| e.id).collect();
        let rest: Vec<Uuid> = ids_of(&events).into_iter().filter(|id| !claimed.contains(id)).collect();
        let mut later = Vec::new();
        let deadline = Instant::now() + WAIT;
        while later.len() < rest.len() {
            assert!(Instant::now() < deadline, "round {round}: events were never claimed");
            later.extend(mine(claim(&*outbox, ALL, LEASE).await, &keys).into_iter().filter(|e| rest.contains(&e.id)));
            tokio::time::sleep(POLL).await;
        }
        let all: Vec<Uuid> = claims.iter().flatten().chain(&later).map(|e| e.id).collect();
        let distinct: HashSet<&Uuid> = all.iter().collect();
        if started.elapsed() < LEASE {
            assert_eq!(
                distinct.len(),
                all.len(),
                "round {round}: an event went to two claimers: {:?} and {:?}",
                ids_of(&claims[0]),
                ids_of(&claims[1])
            );
        }
        assert_eq!(distinct.len(), EVENTS, "round {round}: events were lost");
        mark_sent(&*outbox, &ids_of(&events)).await;
    }
}

pub async fn a_key_waits_while_its_older_event_is_leased((store, outbox): Stores) {
    let category = unique("cat");
    let (p, q) = (product(&category, "p", 100), product(&category, "q", 200));
    let first = create(&*store, &p).await;
    let keys: HashSet<String> = [p.id.to_string(), q.id.to_string()].into();
    // One relay holds the first event of p...
    claim_until(&*outbox, &keys, &[first.id], ALL, LEASE).await;
    let leased_at = Instant::now();
    // ...while p changes again and q is created.
    let second = event(p.id, "product.updated");
    try_update(&*store, &changed(&p, "p2", 150), 1, &second).await.expect("update failed");
    let other = create(&*store, &q).await;

    // Another relay gets q's event, which is newer than p's second, but not p's second.
    let batches = claim_until(&*outbox, &keys, &[other.id], ALL, LEASE).await;
    let got: Vec<Uuid> = ids_of(&batches.concat());
    assert!(leased_at.elapsed() < LEASE, "too slow to tell: the lease may have run out");
    assert_eq!(got, [other.id], "an event was handed out while an older one of its key was leased");

    // Once the first is sent, the second comes.
    mark_sent(&*outbox, &[first.id]).await;
    let p_key: HashSet<String> = [p.id.to_string()].into();
    let batches = claim_until(&*outbox, &p_key, &[second.id], ALL, LEASE).await;
    assert_eq!(batches.concat(), std::slice::from_ref(&second));
    mark_sent(&*outbox, &[second.id, other.id]).await;
}
