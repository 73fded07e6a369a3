//! The `CartStore` contract. Every test uses fresh user and product ids, so the tests can share a
//! database with other tests and earlier runs.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use agora::adapters::memory::MemoryCartStore;
use agora::carts::domain::{CartLine, ProductSnapshot};
use agora::carts::ports::{CartStore, CartWriteError, Refresh, Removal};
use agora::kernel::money::Money;
use chrono::Utc;
use tokio::sync::Barrier;
use tokio::time::timeout;
use uuid::Uuid;

use super::WAIT;

/// `cart_store_contract!(name, || async { ... as Arc<dyn CartStore> })`: a module `name` with one
/// `#[tokio::test]` per contract test, each on a store from the factory. Attributes before `name`
/// (e.g. `#[ignore = "needs PostgreSQL"]`) go on every test.
macro_rules! cart_store_contract {
    ($(#[$attr:meta])* $name:ident, $make:expr) => {
        $crate::contract::port_contract!(carts, [$(#[$attr])*] $name, $make;
            ping_answers,
            add_creates_a_line_from_the_snapshot,
            a_second_add_sums_the_quantities,
            add_with_a_newer_snapshot_refreshes_the_line,
            add_beyond_the_maximum_is_refused,
            concurrent_adds_stop_exactly_at_the_maximum,
            concurrent_adds_lose_no_update,
            set_quantity_changes_an_existing_line_only,
            remove_reports_whether_there_was_a_line,
            clear_empties_one_cart,
            lines_are_oldest_first,
            refresh_product_rewrites_older_lines_only,
            remove_product_removes_every_users_lines,
            a_removed_product_can_never_be_added,
            adds_racing_a_removal_leave_no_line,
        );
    };
}

cart_store_contract!(memory, || async { Some(Arc::new(MemoryCartStore::new()) as Arc<dyn CartStore>) });
// The same contract on the real server (scripts/infra up).
cart_store_contract!(postgres, || async { crate::real::cart_store().await.map(|s| Arc::new(s) as Arc<dyn CartStore>) });

fn snapshot(price_cents: i64, version: u64) -> ProductSnapshot {
    snapshot_of(Uuid::new_v4(), price_cents, version)
}

fn snapshot_of(id: Uuid, price_cents: i64, version: u64) -> ProductSnapshot {
    ProductSnapshot {
        id,
        name: format!("Product v{version}"),
        price: Money::from_cents(price_cents),
        stock: 100,
        image_url: Some(format!("https://img.example.com/{id}/v{version}.png")),
        version,
    }
}

/// An add, and the line it made or changed as the add returned it.
async fn add(
    store: &dyn CartStore,
    user: Uuid,
    product: &ProductSnapshot,
    quantity: u32,
    max: u32,
) -> Result<CartLine, CartWriteError> {
    let cart = timeout(WAIT, store.add(user, product, quantity, max)).await.expect("add timed out")?;
    Ok(cart.into_iter().find(|l| l.product_id == product.id).expect("the added line is in the cart"))
}

/// A successful add, alone on the cart, which must return what `lines` gives then; it then waits a
/// little, so that lines added one after another have distinct times even on a clock that counts
/// milliseconds.
async fn added(store: &dyn CartStore, user: Uuid, product: &ProductSnapshot, quantity: u32) -> CartLine {
    let cart =
        timeout(WAIT, store.add(user, product, quantity, 999)).await.expect("add timed out").expect("add failed");
    assert_eq!(cart, lines(store, user).await, "an add returns the user's lines");
    let line = cart.into_iter().find(|l| l.product_id == product.id).expect("the added line is in the cart");
    tokio::time::sleep(Duration::from_millis(3)).await;
    line
}

async fn lines(store: &dyn CartStore, user: Uuid) -> Vec<CartLine> {
    timeout(WAIT, store.lines(user)).await.expect("lines timed out").expect("lines failed")
}

async fn set_quantity(store: &dyn CartStore, user: Uuid, product: Uuid, quantity: u32) -> Result<(), CartWriteError> {
    timeout(WAIT, store.set_quantity(user, product, quantity)).await.expect("set_quantity timed out")
}

async fn remove(store: &dyn CartStore, user: Uuid, product: Uuid) -> bool {
    timeout(WAIT, store.remove(user, product)).await.expect("remove timed out").expect("remove failed")
}

async fn refresh(store: &dyn CartStore, product: &ProductSnapshot) -> Refresh {
    timeout(WAIT, store.refresh_product(product)).await.expect("refresh timed out").expect("refresh failed")
}

async fn remove_product(store: &dyn CartStore, product: Uuid) -> Removal {
    timeout(WAIT, store.remove_product(product))
        .await
        .expect("remove_product timed out")
        .expect("remove_product failed")
}

/// The line with `product`'s quantity set to `quantity` and the rest as it was.
fn with_quantity(line: &CartLine, quantity: u32) -> CartLine {
    CartLine { quantity, ..line.clone() }
}

pub async fn ping_answers(store: Arc<dyn CartStore>) {
    timeout(Duration::from_secs(1), store.ping()).await.expect("ping took over a second").expect("ping failed");
}

pub async fn add_creates_a_line_from_the_snapshot(store: Arc<dyn CartStore>) {
    let user = Uuid::new_v4();
    assert_eq!(lines(&*store, user).await, [], "a new user has lines");
    let product = snapshot(1999, 3);
    let before = Utc::now();
    let line = added(&*store, user, &product, 2).await;
    let after = Utc::now();
    assert_eq!(
        (
            line.product_id,
            line.quantity,
            &line.name,
            &line.image_url,
            line.price,
            line.price_at_add,
            line.product_version
        ),
        (product.id, 2, &product.name, &product.image_url, product.price, product.price, product.version),
        "{line:?}"
    );
    // The server's clock may differ a little from ours.
    let slack = chrono::Duration::minutes(5);
    assert!(line.added_at > before - slack && line.added_at < after + slack, "added_at {} is not now", line.added_at);
    assert_eq!(lines(&*store, user).await, [line], "lines() differs from what add returned");

    // A line without an image.
    let plain = ProductSnapshot { image_url: None, ..snapshot(5, 1) };
    let line = added(&*store, user, &plain, 1).await;
    assert_eq!(line.image_url, None);
    assert_eq!(lines(&*store, user).await.iter().find(|l| l.product_id == plain.id), Some(&line));
}

pub async fn a_second_add_sums_the_quantities(store: Arc<dyn CartStore>) {
    let user = Uuid::new_v4();
    let product = snapshot(1000, 1);
    let first = added(&*store, user, &product, 2).await;
    let second = added(&*store, user, &product, 3).await;
    assert_eq!(second, with_quantity(&first, 5), "the second add changed more than the quantity");
    assert_eq!(lines(&*store, user).await, [second]);
}

pub async fn add_with_a_newer_snapshot_refreshes_the_line(store: Arc<dyn CartStore>) {
    let user = Uuid::new_v4();
    let v2 = snapshot(1000, 2);
    let first = added(&*store, user, &v2, 1).await;

    // An older snapshot adds the quantity but leaves the details alone.
    let v1 = ProductSnapshot { name: "Old name".into(), price: Money::from_cents(1), ..snapshot_of(v2.id, 0, 1) };
    let line = added(&*store, user, &v1, 1).await;
    assert_eq!(line, with_quantity(&first, 2), "an older snapshot changed the line");

    // A newer one takes its name, price, image and version; the price at add stays.
    let v3 = ProductSnapshot { name: "New name".into(), image_url: None, ..snapshot_of(v2.id, 1500, 3) };
    let line = added(&*store, user, &v3, 1).await;
    let expected = CartLine {
        quantity: 3,
        name: v3.name.clone(),
        image_url: None,
        price: v3.price,
        product_version: 3,
        ..first.clone()
    };
    assert_eq!(line, expected);
    assert_eq!(line.price_at_add, Money::from_cents(1000));
    assert_eq!(lines(&*store, user).await, [expected]);
}

pub async fn add_beyond_the_maximum_is_refused(store: Arc<dyn CartStore>) {
    let user = Uuid::new_v4();
    let product = snapshot(250, 1);
    let line = add(&*store, user, &product, 5, 10).await.expect("add failed");
    match add(&*store, user, &product, 6, 10).await {
        Err(CartWriteError::LimitExceeded { current: 5 }) => {}
        other => panic!("expected LimitExceeded {{ current: 5 }}, got {other:?}"),
    }
    assert_eq!(lines(&*store, user).await, std::slice::from_ref(&line), "the refused add changed the line");
    // Up to the maximum itself is fine.
    let full = add(&*store, user, &product, 5, 10).await.expect("adding up to the maximum failed");
    assert_eq!(full, with_quantity(&line, 10));
    match add(&*store, user, &product, 1, 10).await {
        Err(CartWriteError::LimitExceeded { current: 10 }) => {}
        other => panic!("expected LimitExceeded {{ current: 10 }}, got {other:?}"),
    }

    // A new line above the maximum is refused too, and not created.
    let other = snapshot(100, 1);
    match add(&*store, user, &other, 11, 10).await {
        Err(CartWriteError::LimitExceeded { current: 0 }) => {}
        other => panic!("expected LimitExceeded {{ current: 0 }}, got {other:?}"),
    }
    assert_eq!(lines(&*store, user).await, [full], "the refused add created a line");
}

/// Runs `n` adds of 1 at once; returns the successful lines' quantities and the refusals' `current`s.
async fn concurrent_adds(
    store: &Arc<dyn CartStore>,
    user: Uuid,
    product: &ProductSnapshot,
    n: usize,
    max: u32,
) -> (Vec<u32>, Vec<u32>) {
    let barrier = Arc::new(Barrier::new(n));
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let (store, product, barrier) = (store.clone(), product.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                add(&*store, user, &product, 1, max).await
            })
        })
        .collect();
    let (mut done, mut refused) = (Vec::new(), Vec::new());
    for task in tasks {
        match task.await.expect("add task panicked") {
            Ok(line) => done.push(line.quantity),
            Err(CartWriteError::LimitExceeded { current }) => refused.push(current),
            Err(e) => panic!("add failed: {e:?}"),
        }
    }
    (done, refused)
}

pub async fn concurrent_adds_stop_exactly_at_the_maximum(store: Arc<dyn CartStore>) {
    let user = Uuid::new_v4();
    let product = snapshot(100, 1);
    let (done, refused) = concurrent_adds(&store, user, &product, 50, 30).await;
    assert_eq!((done.len(), refused.len()), (30, 20), "accepted {done:?}, refused {refused:?}");
    // Each accepted add saw the line after its own increment, and each refusal saw it full.
    let seen: BTreeSet<u32> = done.iter().copied().collect();
    assert_eq!(seen, (1..=30).collect(), "the accepted adds did not each see their own increment");
    assert!(refused.iter().all(|&current| current == 30), "refusals reported {refused:?}");
    let lines = lines(&*store, user).await;
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0].quantity, 30);
}

pub async fn concurrent_adds_lose_no_update(store: Arc<dyn CartStore>) {
    let user = Uuid::new_v4();
    let product = snapshot(100, 1);
    let (done, refused) = concurrent_adds(&store, user, &product, 20, 999).await;
    assert!(refused.is_empty(), "refused {refused:?}");
    let seen: BTreeSet<u32> = done.iter().copied().collect();
    assert_eq!(seen, (1..=20).collect(), "the adds did not each see their own increment");
    let lines = lines(&*store, user).await;
    assert_eq!(lines.len(), 1, "concurrent adds created {} lines", lines.len());
    assert_eq!(lines[0].quantity, 20);
}

pub async fn set_quantity_changes_an_existing_line_only(store: Arc<dyn CartStore>) {
    let (user, neighbour) = (Uuid::new_v4(), Uuid::new_v4());
    let (a, b) = (snapshot(100, 1), snapshot(200, 1));
    let line_a = added(&*store, user, &a, 1).await;
    let line_b = added(&*store, user, &b, 2).await;
    let theirs = added(&*store, neighbour, &a, 4).await;

    set_quantity(&*store, user, a.id, 7).await.expect("set_quantity failed");
    assert_eq!(lines(&*store, user).await, [with_quantity(&line_a, 7), line_b.clone()]);
    assert_eq!(lines(&*store, neighbour).await, std::slice::from_ref(&theirs), "another user's line changed");

    let missing = Uuid::new_v4();
    assert!(matches!(set_quantity(&*store, user, missing, 3).await, Err(CartWriteError::NotFound)), "no such product");
    assert!(
        matches!(set_quantity(&*store, Uuid::new_v4(), a.id, 3).await, Err(CartWriteError::NotFound)),
        "no such user"
    );
    assert_eq!(lines(&*store, user).await, [with_quantity(&line_a, 7), line_b], "set_quantity created a line");
    assert_eq!(lines(&*store, neighbour).await, [theirs]);
}

pub async fn remove_reports_whether_there_was_a_line(store: Arc<dyn CartStore>) {
    let (user, neighbour) = (Uuid::new_v4(), Uuid::new_v4());
    let (a, b) = (snapshot(100, 1), snapshot(200, 1));
    added(&*store, user, &a, 1).await;
    let line_b = added(&*store, user, &b, 1).await;
    let theirs = added(&*store, neighbour, &a, 1).await;

    assert!(remove(&*store, user, a.id).await, "removing an existing line answered false");
    assert_eq!(lines(&*store, user).await, std::slice::from_ref(&line_b));
    assert!(!remove(&*store, user, a.id).await, "removing it again answered true");
    assert!(!remove(&*store, Uuid::new_v4(), a.id).await, "removing from an unknown cart answered true");
    assert_eq!(lines(&*store, user).await, [line_b]);
    assert_eq!(lines(&*store, neighbour).await, [theirs], "another user's line was removed");
}

pub async fn clear_empties_one_cart(store: Arc<dyn CartStore>) {
    let (user, neighbour) = (Uuid::new_v4(), Uuid::new_v4());
    let (a, b) = (snapshot(100, 1), snapshot(200, 1));
    added(&*store, user, &a, 1).await;
    added(&*store, user, &b, 2).await;
    let theirs = added(&*store, neighbour, &a, 3).await;

    timeout(WAIT, store.clear(user)).await.expect("clear timed out").expect("clear failed");
    assert_eq!(lines(&*store, user).await, []);
    assert_eq!(lines(&*store, neighbour).await, [theirs], "another user's cart was cleared");
    timeout(WAIT, store.clear(user)).await.expect("clear timed out").expect("clearing an empty cart failed");

    // The cart is usable again.
    let line = added(&*store, user, &a, 1).await;
    assert_eq!(lines(&*store, user).await, [line]);
}

pub async fn lines_are_oldest_first(store: Arc<dyn CartStore>) {
    let user = Uuid::new_v4();
    // Added in descending id order, so that an order by product id would show.
    let mut ids: Vec<Uuid> = (0..4).map(|_| Uuid::new_v4()).collect();
    ids.sort_unstable_by(|a, b| b.cmp(a));
    let products: Vec<ProductSnapshot> = ids.iter().map(|&id| snapshot_of(id, 100, 1)).collect();
    let mut expected = Vec::new();
    for product in &products {
        expected.push(added(&*store, user, product, 1).await);
    }
    assert_eq!(lines(&*store, user).await, expected);

    // Changing a line does not move it.
    expected[0] = added(&*store, user, &products[0], 1).await;
    set_quantity(&*store, user, products[1].id, 9).await.expect("set_quantity failed");
    expected[1].quantity = 9;
    assert_eq!(lines(&*store, user).await, expected);
}

pub async fn refresh_product_rewrites_older_lines_only(store: Arc<dyn CartStore>) {
    let (old, same, newer) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let v2 = snapshot(1000, 2);
    let other = snapshot(300, 1);
    let v1 = snapshot_of(v2.id, 900, 1);
    let v3 = snapshot_of(v2.id, 1100, 3);
    let old_line = added(&*store, old, &v1, 2).await;
    let old_other = added(&*store, old, &other, 1).await;
    let same_line = added(&*store, same, &v2, 3).await;
    let newer_line = added(&*store, newer, &v3, 4).await;

    let v2_renamed = ProductSnapshot { name: "Renamed".into(), image_url: None, ..v2.clone() };
    assert_eq!(
        refresh(&*store, &v2_renamed).await,
        Refresh { changed: 1, current: 2 },
        "only the line at version 1 is older than version 2"
    );
    let refreshed =
        CartLine { name: "Renamed".into(), image_url: None, price: v2.price, product_version: 2, ..old_line.clone() };
    assert_eq!(refreshed.price_at_add, Money::from_cents(900));
    assert_eq!(lines(&*store, old).await, [refreshed.clone(), old_other.clone()]);
    assert_eq!(lines(&*store, same).await, std::slice::from_ref(&same_line), "a line at the same version changed");
    assert_eq!(lines(&*store, newer).await, std::slice::from_ref(&newer_line), "a line at a newer version changed");

    // Nothing is older now but the lines at 1 and 2, for version 3.
    assert_eq!(
        refresh(&*store, &v2_renamed).await,
        Refresh { changed: 0, current: 3 },
        "refreshing twice changed lines again"
    );
    let v3_cheap = ProductSnapshot { price: Money::from_cents(50), ..v3.clone() };
    assert_eq!(refresh(&*store, &v3_cheap).await, Refresh { changed: 2, current: 1 });
    let at_v3 = |line: &CartLine| CartLine {
        name: v3.name.clone(),
        image_url: v3.image_url.clone(),
        price: Money::from_cents(50),
        product_version: 3,
        ..line.clone()
    };
    assert_eq!(lines(&*store, old).await, [at_v3(&refreshed), old_other]);
    assert_eq!(lines(&*store, same).await, [at_v3(&same_line)]);
    assert_eq!(lines(&*store, newer).await, [newer_line]);

    // A product in no cart.
    assert_eq!(refresh(&*store, &snapshot(1, 5)).await, Refresh::default());
}

pub async fn remove_product_removes_every_users_lines(store: Arc<dyn CartStore>) {
    let users: Vec<Uuid> = (0..3).map(|_| Uuid::new_v4()).collect();
    let (gone, kept) = (snapshot(100, 1), snapshot(200, 1));
    let mut kept_lines = Vec::new();
    for (i, &user) in users.iter().enumerate() {
        added(&*store, user, &gone, 1 + i as u32).await;
        kept_lines.push(if i < 2 { Some(added(&*store, user, &kept, 1).await) } else { None });
    }
    assert_eq!(remove_product(&*store, gone.id).await, Removal { removed: 3, already: false });
    for (user, kept) in users.iter().zip(&kept_lines) {
        let expected: Vec<CartLine> = kept.iter().cloned().collect();
        assert_eq!(lines(&*store, *user).await, expected);
    }
    assert_eq!(
        remove_product(&*store, gone.id).await,
        Removal { removed: 0, already: true },
        "removing the product again removed lines, or did not know it was gone"
    );
    assert_eq!(remove_product(&*store, Uuid::new_v4()).await, Removal::default());
}

/// Once a product is removed, no add can bring a line of it back.
pub async fn a_removed_product_can_never_be_added(store: Arc<dyn CartStore>) {
    let (user, gone) = (Uuid::new_v4(), snapshot(100, 1));
    remove_product(&*store, gone.id).await;
    let refused = timeout(WAIT, store.add(user, &gone, 1, 10)).await.expect("add timed out");
    assert!(matches!(refused, Err(CartWriteError::ProductGone)), "{refused:?}");
    assert!(lines(&*store, user).await.is_empty());
}

/// Adds racing a removal: whatever the interleaving, no line of the product is left.
pub async fn adds_racing_a_removal_leave_no_line(store: Arc<dyn CartStore>) {
    let product = snapshot(100, 1);
    let users: Vec<Uuid> = (0..20).map(|_| Uuid::new_v4()).collect();
    let adds = users.iter().map(|&user| {
        let store = store.clone();
        let product = product.clone();
        tokio::spawn(async move { timeout(WAIT, store.add(user, &product, 1, 10)).await.expect("add timed out") })
    });
    let removal = {
        let store = store.clone();
        tokio::spawn(async move { remove_product(&*store, product.id).await })
    };
    for add in futures::future::join_all(adds).await {
        match add.unwrap() {
            Ok(_) | Err(CartWriteError::ProductGone) => {}
            other => panic!("{other:?}"),
        }
    }
    removal.await.unwrap();
    for user in users {
        assert!(lines(&*store, user).await.is_empty(), "a line outlived its product's removal");
    }
}
