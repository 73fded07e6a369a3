//! Keeps this instance's read cache exact across instances: it follows the
//! product events from the end of the topic (outside any group, so every
//! instance sees every event) and announces each product's new version to the
//! cache. The cache serves only once the follower is positioned.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::read_cache::ReadCache;
use crate::contracts::product_events::ProductEvent;
use crate::ports::events::{EventBus, EventFollower, Record};

/// Pause after the bus failed, before asking again.
const RETRY: Duration = Duration::from_secs(1);

pub struct CacheFollower {
    pub bus: Arc<dyn EventBus>,
    pub topic: String,
    pub cache: Arc<ReadCache>,
}

impl CacheFollower {
    pub async fn run(self, cancel: CancellationToken) {
        let Some(mut follower) = self.position(&cancel).await else { return };
        self.cache.serve();
        tracing::debug!(topic = %self.topic, "products read cache serving");
        let mut failing = false;
        loop {
            let next = tokio::select! {
                _ = cancel.cancelled() => return,
                next = follower.next() => next,
            };
            match next {
                Ok(record) => {
                    if std::mem::take(&mut failing) {
                        tracing::info!("products read cache: the product events flow again");
                    }
                    self.apply(&record);
                }
                Err(e) => {
                    // The client reconnects by itself and resumes at its position; meanwhile
                    // entries expire, which bounds what another instance's change can leave stale.
                    if !std::mem::replace(&mut failing, true) {
                        tracing::warn!(error = %e, "products read cache: cannot read the product events");
                    }
                    tokio::select! {
                        _ = cancel.cancelled() => return,
                        _ = tokio::time::sleep(RETRY) => {}
                    }
                }
            }
        }
    }

    /// A follower at the end of the topic, asked for until the bus answers.
    async fn position(&self, cancel: &CancellationToken) -> Option<Box<dyn EventFollower>> {
        loop {
            let attempt = tokio::select! {
                _ = cancel.cancelled() => return None,
                attempt = self.bus.follow(&self.topic) => attempt,
            };
            match attempt {
                Ok(follower) => return Some(follower),
                Err(e) => {
                    tracing::warn!(error = %e, "products read cache: cannot follow the product events yet; reading through");
                    tokio::select! {
                        _ = cancel.cancelled() => return None,
                        _ = tokio::time::sleep(RETRY) => {}
                    }
                }
            }
        }
    }

    fn apply(&self, record: &Record) {
        let Ok(id) = Uuid::parse_str(&record.key) else { return };
        match serde_json::from_slice::<ProductEvent>(&record.payload) {
            Ok(event) => self.cache.announce(id, event.version),
            // Some change, of an unknown version: drop the entry rather than keep it.
            Err(_) => self.cache.forget(id),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::adapters::memory::{MemoryEventBus, MemoryProductStore};
    use crate::products::ProductService;
    use crate::products::domain::ProductFields;
    use crate::products::read_cache::Lookup;
    use crate::products::relay::OutboxRelay;
    use crate::runtime::tasks::Task;
    use tokio::sync::Notify;

    const TOPIC: &str = "product-events";

    /// One instance of the products service on the shared store and bus, with its cache and follower.
    struct Instance {
        service: Arc<ProductService>,
        cache: Arc<ReadCache>,
        _follower: Task,
        _relay: Task,
    }

    async fn instance(store: &Arc<MemoryProductStore>, bus: &Arc<MemoryEventBus>) -> Instance {
        let wake = Arc::new(Notify::new());
        let cache = Arc::new(ReadCache::new(Duration::from_secs(60)));
        let service = Arc::new(ProductService::new(store.clone(), wake.clone()).with_read_cache(cache.clone()));
        let follower = CacheFollower { bus: bus.clone(), topic: TOPIC.into(), cache: cache.clone() };
        let relay = OutboxRelay::new(store.clone(), bus.clone(), TOPIC, wake, Duration::from_millis(20));
        let instance = Instance {
            service,
            cache: cache.clone(),
            _follower: Task::spawn(|cancel| follower.run(cancel)),
            _relay: Task::spawn(|cancel| relay.run(cancel)),
        };
        tokio::time::timeout(Duration::from_secs(5), async {
            while cache.lookup(Uuid::nil()) == Lookup::Off {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .expect("the cache starts serving once its follower is positioned");
        instance
    }

    fn named(name: &str) -> ProductFields {
        ProductFields { name: Some(name.into()), ..Default::default() }
    }

    /// Reads through `reader` until it shows `name`.
    async fn shows(reader: &Instance, id: Uuid, name: &str) {
        tokio::time::timeout(Duration::from_secs(5), async {
            while reader.service.get(id).await.map(|p| p.name).ok().as_deref() != Some(name) {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("the other instance never showed {name:?}"));
    }

    #[tokio::test]
    async fn an_instance_sees_the_changes_another_instance_makes() {
        let store = Arc::new(MemoryProductStore::new());
        let bus = Arc::new(MemoryEventBus::default());
        let (writer, reader) = (instance(&store, &bus).await, instance(&store, &bus).await);
        let fields = ProductFields {
            name: Some("first".into()),
            price: Some(crate::kernel::money::Money::from_cents(100)),
            stock: Some(3),
            ..Default::default()
        };
        let id = writer.service.create(fields).await.unwrap().id;
        assert_eq!(reader.service.get(id).await.unwrap().name, "first");
        assert!(matches!(reader.cache.lookup(id), Lookup::Hit(_)), "the read was kept");
        assert!(matches!(writer.cache.lookup(id), Lookup::Hit(_)), "the write was kept where it was made");

        writer.service.update(id, named("second")).await.unwrap();
        assert_eq!(writer.service.get(id).await.unwrap().name, "second", "the writer reads its own write at once");
        shows(&reader, id, "second").await;

        writer.service.delete(id).await.unwrap();
        tokio::time::timeout(Duration::from_secs(5), async {
            while reader.service.get(id).await.is_ok() {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .expect("the other instance stops showing a deleted product");
        assert!(writer.service.get(id).await.is_err(), "the writer forgets its deleted product at once");
    }
}
