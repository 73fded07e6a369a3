//! Races made to happen: a catalogue that holds its answer until told, so that
//! an event is handled between a cart's read of a product and what it does
//! with it. Each runs on the in-memory adapters and on the real ones (Redis,
//! PostgreSQL) when they are there.

use std::sync::Arc;
use std::time::Duration;

use agora::adapters::memory::{MemoryCache, MemoryCartStore};
use agora::carts::CartService;
use agora::carts::consumer::EventHandler;
use agora::carts::domain::ProductSnapshot;
use agora::carts::ports::{CartStore, ProductCatalog};
use agora::carts::service::{CartError, product_key};
use agora::contracts::product_events::{EventType, ProductEvent};
use agora::kernel::money::Money;
use agora::ports::cache::Cache;
use agora::ports::events::Record;
use agora::ports::{PortError, Probe};
use parking_lot::Mutex;
use serde_json::json;
use tokio::sync::Notify;
use uuid::Uuid;

const TTL: Duration = Duration::from_secs(3600);

/// The products service, as the carts see it: answers with what it holds now,
/// but only once `release` is notified (after saying it was asked).
struct Pausing {
    product: Mutex<Option<ProductSnapshot>>,
    asked: Notify,
    release: Notify,
    paused: Mutex<bool>,
}

#[async_trait::async_trait]
impl Probe for Pausing {
    async fn ping(&self) -> Result<(), PortError> {
        Ok(())
    }
}

#[async_trait::async_trait]
impl ProductCatalog for Pausing {
    async fn get_many(&self, ids: &[Uuid]) -> Result<Vec<ProductSnapshot>, PortError> {
        let answer: Vec<ProductSnapshot> =
            self.product.lock().iter().filter(|p| ids.contains(&p.id)).cloned().collect();
        if *self.paused.lock() {
            self.asked.notify_one();
            self.release.notified().await;
        }
        Ok(answer)
    }
}

fn snapshot(id: Uuid, version: u64, cents: i64) -> ProductSnapshot {
    ProductSnapshot {
        id,
        name: format!("v{version}"),
        price: Money::from_cents(cents),
        stock: 50,
        image_url: None,
        version,
    }
}

fn record(event: &ProductEvent) -> Record {
    Record {
        topic: "t".into(),
        partition: 0,
        offset: 0,
        key: String::new(),
        payload: serde_json::to_vec(event).unwrap(),
        headers: Vec::new(),
    }
}

fn event(event_type: EventType, version: u64, data: serde_json::Value) -> ProductEvent {
    ProductEvent { event_id: Uuid::new_v4(), event_type, occurred_at: chrono::Utc::now(), version, data }
}

struct Rig {
    service: Arc<CartService>,
    handler: EventHandler,
    catalog: Arc<Pausing>,
    store: Arc<dyn CartStore>,
    cache: Arc<dyn Cache>,
    namespace: String,
}

fn rig(store: Arc<dyn CartStore>, cache: Arc<dyn Cache>, product: ProductSnapshot) -> Rig {
    let namespace = crate::contract::unique("races");
    let catalog = Arc::new(Pausing {
        product: Mutex::new(Some(product)),
        asked: Notify::new(),
        release: Notify::new(),
        paused: Mutex::new(false),
    });
    let service = Arc::new(CartService::new(store.clone(), cache.clone(), catalog.clone(), TTL, &namespace));
    let handler = EventHandler {
        store: store.clone(),
        cache: cache.clone(),
        namespace: namespace.clone(),
        cache_ttl: TTL,
        metrics: agora::telemetry::Metrics::new(),
    };
    Rig { service, handler, catalog, store, cache, namespace }
}

/// The adapters to run on: memory, and the real ones when configured.
async fn adapters() -> Vec<(Arc<dyn CartStore>, Arc<dyn Cache>)> {
    let mut all: Vec<(Arc<dyn CartStore>, Arc<dyn Cache>)> =
        vec![(Arc::new(MemoryCartStore::new()), Arc::new(MemoryCache::new()))];
    if let (Some(store), Some(cache)) = (crate::real::cart_store().await, crate::real::cache().await) {
        all.push((Arc::new(store), Arc::new(cache)));
    }
    all
}

/// A cart view reads v1 from the products service; v2's event is handled meanwhile; the view's
/// cache fill of v1 must not land, so the next view shows v2 (not v1 for an hour).
#[tokio::test]
async fn a_cart_view_racing_an_update_leaves_no_stale_cache_entry() {
    for (store, cache) in adapters().await {
        let (user, id) = (Uuid::new_v4(), Uuid::new_v4());
        let rig = rig(store, cache, snapshot(id, 1, 1000));
        rig.store.add(user, &snapshot(id, 1, 1000), 1, 10).await.unwrap();
        *rig.catalog.paused.lock() = true;
        let view = {
            let service = rig.service.clone();
            tokio::spawn(async move { service.view(user).await })
        };
        rig.catalog.asked.notified().await;
        // v2 is committed and its event handled while the view holds v1.
        *rig.catalog.product.lock() = Some(snapshot(id, 2, 1500));
        let v2 = json!({"id": id, "name": "v2", "price": 15, "stock": 50, "imageUrl": null, "version": 2});
        rig.handler.handle(&record(&event(EventType::ProductUpdated, 2, v2))).await.unwrap();
        *rig.catalog.paused.lock() = false;
        rig.catalog.release.notify_one();
        view.await.unwrap().unwrap();
        let cached = rig.cache.get_many(&[product_key(&rig.namespace, id)]).await.unwrap();
        assert!(
            cached[0].as_deref().is_none_or(|b| !String::from_utf8_lossy(b).contains("\"v1\"")),
            "v1 went back into the cache"
        );
        let after = rig.service.view(user).await.unwrap();
        assert_eq!(after.items[0].unit_price, Money::from_cents(1500), "the next view shows v2");
        assert_eq!(after.items[0].name, "v2");
    }
}

/// An add reads the product (it exists); its DELETED event is handled meanwhile; the add must not
/// then create a line that no later event removes.
#[tokio::test]
async fn an_add_racing_a_deletion_leaves_no_line() {
    for (store, cache) in adapters().await {
        let (user, id) = (Uuid::new_v4(), Uuid::new_v4());
        let rig = rig(store, cache, snapshot(id, 3, 1000));
        *rig.catalog.paused.lock() = true;
        let add = {
            let service = rig.service.clone();
            tokio::spawn(async move { service.add(user, id, 1).await })
        };
        rig.catalog.asked.notified().await;
        *rig.catalog.product.lock() = None;
        rig.handler.handle(&record(&event(EventType::ProductDeleted, 4, json!({"id": id})))).await.unwrap();
        *rig.catalog.paused.lock() = false;
        rig.catalog.release.notify_one();
        let answer = add.await.unwrap();
        assert!(matches!(answer, Err(CartError::ProductNotFound)), "{answer:?}");
        assert!(rig.store.lines(user).await.unwrap().is_empty(), "a line outlived its product's deletion");
    }
}
