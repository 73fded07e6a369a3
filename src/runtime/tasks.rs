//! Background work (the outbox relay, the events consumer) as tasks that can
//! be stopped and awaited, and the consumer's slot, which tests and operators
//! can stop and start again.

use std::sync::Arc;

use tokio::sync::Mutex;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::wiring;
use crate::carts::consumer::{ConsumerHealth, EventHandler};
use crate::config::Config;
use crate::ports::events::EventBus;

/// A background task that can be stopped and awaited.
pub struct Task {
    cancel: CancellationToken,
    handle: JoinHandle<()>,
}

impl Task {
    pub fn spawn<F: Future<Output = ()> + Send + 'static>(run: impl FnOnce(CancellationToken) -> F) -> Task {
        let cancel = CancellationToken::new();
        let handle = tokio::spawn(run(cancel.clone()));
        Task { cancel, handle }
    }

    /// Cancels the task and waits until it has finished its own clean-up.
    pub async fn stop(self) {
        self.cancel.cancel();
        if let Err(e) = self.handle.await {
            tracing::error!(error = %e, "background task failed");
        }
    }
}

/// The product-events consumer of a carts service.
pub struct ConsumerSlot {
    config: Config,
    bus: Arc<dyn EventBus>,
    handler: EventHandler,
    health: ConsumerHealth,
    running: Mutex<Option<Task>>,
}

impl ConsumerSlot {
    pub fn new(config: &Config, bus: Arc<dyn EventBus>, handler: EventHandler, health: ConsumerHealth) -> Self {
        ConsumerSlot { config: config.clone(), bus, handler, health, running: Mutex::new(None) }
    }

    /// Starts consuming (if not already); it resumes from the group's committed offsets.
    pub async fn start(&self) {
        let mut running = self.running.lock().await;
        if running.is_none() {
            let consumer = wiring::consumer(&self.config, self.bus.clone(), self.handler.clone(), self.health.clone());
            *running = Some(Task::spawn(|cancel| consumer.run(cancel)));
        }
    }

    /// Stops consuming after the last commit.
    pub async fn stop(&self) {
        if let Some(task) = self.running.lock().await.take() {
            task.stop().await;
        }
    }
}
