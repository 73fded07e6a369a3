//! `CartStore` on PostgreSQL. An add is one `INSERT … ON CONFLICT DO UPDATE`
//! guarded by the quantity limit, so concurrent adds neither lose an update
//! nor pass the limit.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgPool};
use sqlx::{ConnectOptions, FromRow};
use uuid::Uuid;

use crate::adapters::sql::Liveness;
use crate::carts::domain::{CartLine, ProductSnapshot};
use crate::carts::ports::{CartStore, CartWriteError, Refresh, Removal};
use crate::kernel::money::Money;
use crate::ports::{PortError, Probe};

const DEPENDENCY: &str = "PostgreSQL";

#[derive(Clone)]
pub struct PostgresCartStore {
    pool: PgPool,
    liveness: Liveness,
}

#[derive(FromRow)]
struct Row {
    product_id: Uuid,
    quantity: i32,
    name: String,
    image_url: Option<String>,
    price_cents: i64,
    price_at_add_cents: i64,
    product_version: i64,
    added_at: DateTime<Utc>,
}

#[derive(FromRow)]
struct RowAndRemoval {
    #[sqlx(flatten)]
    line: Row,
    removed: bool,
}

impl From<Row> for CartLine {
    fn from(r: Row) -> Self {
        CartLine {
            product_id: r.product_id,
            quantity: r.quantity.max(0) as u32,
            name: r.name,
            image_url: r.image_url,
            price: Money::from_cents(r.price_cents),
            price_at_add: Money::from_cents(r.price_at_add_cents),
            product_version: r.product_version.max(0) as u64,
            added_at: r.added_at,
        }
    }
}

const COLUMNS: &str =
    "product_id, quantity, name, image_url, price_cents, price_at_add_cents, product_version, added_at";

impl PostgresCartStore {
    /// Connects (failing within `timeout`) and runs the migrations.
    pub async fn connect(url: &str, timeout: Duration) -> anyhow::Result<Self> {
        let options: PgConnectOptions = url.parse()?;
        let options = options.log_statements(tracing::log::LevelFilter::Trace);
        let liveness = Liveness::default();
        let pool = liveness.pool_options().connect_with(options).await?;
        let store = PostgresCartStore { pool, liveness };
        tokio::time::timeout(timeout, store.migrate()).await??;
        Ok(store)
    }

    async fn is_removed(&self, product_id: Uuid) -> Result<bool, PortError> {
        self.liveness
            .read(DEPENDENCY, || {
                sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM removed_products WHERE product_id = $1)")
                    .bind(product_id)
                    .fetch_one(&self.pool)
            })
            .await
    }

    /// The user's lines, and whether `product_id` was removed, in one statement.
    async fn lines_and_removal(&self, user: Uuid, product_id: Uuid) -> Result<(Vec<CartLine>, bool), PortError> {
        let sql = format!(
            "SELECT {COLUMNS}, EXISTS (SELECT 1 FROM removed_products WHERE product_id = $2) AS removed
             FROM cart_items WHERE user_id = $1 ORDER BY added_at, seq"
        );
        let rows: Vec<RowAndRemoval> = self
            .liveness
            .read(DEPENDENCY, || sqlx::query_as(&sql).bind(user).bind(product_id).fetch_all(&self.pool))
            .await?;
        let removed = match rows.first() {
            Some(row) => row.removed,
            // No line at all (a clear, or the removal itself, went by): ask on its own.
            None => self.is_removed(product_id).await?,
        };
        Ok((rows.into_iter().map(|r| r.line.into()).collect(), removed))
    }

    fn err(&self, e: sqlx::Error) -> PortError {
        self.liveness.error(DEPENDENCY, e)
    }

    pub async fn migrate(&self) -> anyhow::Result<()> {
        sqlx::migrate!("adapters/postgres/migrations").run(&self.pool).await?;
        Ok(())
    }
}

#[async_trait]
impl Probe for PostgresCartStore {
    async fn ping(&self) -> Result<(), PortError> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map_err(|e| self.err(e))?;
        Ok(())
    }
}

#[async_trait]
impl CartStore for PostgresCartStore {
    async fn lines(&self, user: Uuid) -> Result<Vec<CartLine>, PortError> {
        let sql = format!("SELECT {COLUMNS} FROM cart_items WHERE user_id = $1 ORDER BY added_at, seq");
        let rows: Vec<Row> =
            self.liveness.read(DEPENDENCY, || sqlx::query_as(&sql).bind(user).fetch_all(&self.pool)).await?;
        Ok(rows.into_iter().map(CartLine::from).collect())
    }

    async fn add(
        &self,
        user: Uuid,
        product: &ProductSnapshot,
        quantity: u32,
        max_quantity: u32,
    ) -> Result<Vec<CartLine>, CartWriteError> {
        let sql = format!(
            "INSERT INTO cart_items AS c (user_id, product_id, quantity, name, image_url, price_cents, \
                 price_at_add_cents, product_version, added_at)
             SELECT $1, $2, $3, $4, $5, $6, $6, $7, now()
             WHERE $3 <= $8 AND NOT EXISTS (SELECT 1 FROM removed_products WHERE product_id = $2)
             ON CONFLICT (user_id, product_id) DO UPDATE SET
                 quantity = c.quantity + EXCLUDED.quantity,
                 name = CASE WHEN EXCLUDED.product_version > c.product_version THEN EXCLUDED.name ELSE c.name END,
                 image_url = CASE WHEN EXCLUDED.product_version > c.product_version THEN EXCLUDED.image_url ELSE c.image_url END,
                 price_cents = CASE WHEN EXCLUDED.product_version > c.product_version THEN EXCLUDED.price_cents ELSE c.price_cents END,
                 product_version = GREATEST(c.product_version, EXCLUDED.product_version)
             WHERE c.quantity + EXCLUDED.quantity <= $8
             RETURNING {COLUMNS}"
        );
        let upserted: Option<Row> = sqlx::query_as(&sql)
            .bind(user)
            .bind(product.id)
            .bind(quantity as i32)
            .bind(&product.name)
            .bind(&product.image_url)
            .bind(product.price.cents())
            .bind(product.version as i64)
            .bind(max_quantity as i32)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
        match upserted {
            Some(row) => {
                // A removal that began before this add committed may not have seen its line:
                // the tombstone is written first, so looking for it now settles the race. The
                // cart the add answers with comes in the same round trip.
                let (mut lines, removed) = self.lines_and_removal(user, product.id).await?;
                if removed {
                    self.remove(user, product.id).await?;
                    return Err(CartWriteError::ProductGone);
                }
                // The added line as this add left it (a concurrent add may have changed it since).
                let added = CartLine::from(row);
                if let Some(line) = lines.iter_mut().find(|l| l.product_id == added.product_id) {
                    *line = added;
                }
                Ok(lines)
            }
            None if self.is_removed(product.id).await? => Err(CartWriteError::ProductGone),
            None => {
                let current: Option<i32> =
                    sqlx::query_scalar("SELECT quantity FROM cart_items WHERE user_id = $1 AND product_id = $2")
                        .bind(user)
                        .bind(product.id)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(|e| self.err(e))?;
                Err(CartWriteError::LimitExceeded { current: current.unwrap_or(0).max(0) as u32 })
            }
        }
    }

    async fn set_quantity(&self, user: Uuid, product_id: Uuid, quantity: u32) -> Result<(), CartWriteError> {
        let done = sqlx::query("UPDATE cart_items SET quantity = $3 WHERE user_id = $1 AND product_id = $2")
            .bind(user)
            .bind(product_id)
            .bind(quantity as i32)
            .execute(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
        if done.rows_affected() == 0 { Err(CartWriteError::NotFound) } else { Ok(()) }
    }

    async fn remove(&self, user: Uuid, product_id: Uuid) -> Result<bool, PortError> {
        let done = sqlx::query("DELETE FROM cart_items WHERE user_id = $1 AND product_id = $2")
            .bind(user)
            .bind(product_id)
            .execute(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
        Ok(done.rows_affected() > 0)
    }

    async fn clear(&self, user: Uuid) -> Result<(), PortError> {
        sqlx::query("DELETE FROM cart_items WHERE user_id = $1")
            .bind(user)
            .execute(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    async fn refresh_product(&self, product: &ProductSnapshot) -> Result<Refresh, PortError> {
        // One statement: both counts come from the same snapshot, before the update.
        let (changed, current): (i64, i64) = sqlx::query_as(
            "WITH updated AS (
                 UPDATE cart_items SET name = $2, image_url = $3, price_cents = $4, product_version = $5
                 WHERE product_id = $1 AND product_version < $5
                 RETURNING 1
             )
             SELECT (SELECT count(*) FROM updated),
                    (SELECT count(*) FROM cart_items WHERE product_id = $1 AND product_version >= $5)",
        )
        .bind(product.id)
        .bind(&product.name)
        .bind(&product.image_url)
        .bind(product.price.cents())
        .bind(product.version as i64)
        .fetch_one(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        Ok(Refresh { changed: changed.max(0) as u64, current: current.max(0) as u64 })
    }

    async fn remove_product(&self, product_id: Uuid) -> Result<Removal, PortError> {
        // The tombstone first (committed on its own), then the lines: an add racing
        // this either sees the tombstone or has its line deleted here.
        let marked = sqlx::query("INSERT INTO removed_products (product_id) VALUES ($1) ON CONFLICT DO NOTHING")
            .bind(product_id)
            .execute(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
        let done = sqlx::query("DELETE FROM cart_items WHERE product_id = $1")
            .bind(product_id)
            .execute(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
        Ok(Removal { removed: done.rows_affected(), already: marked.rows_affected() == 0 })
    }
}
