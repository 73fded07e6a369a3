//! `ProductStore` and `Outbox` on MySQL: every change and its event in one
//! transaction. Claims lock the pending rows they read (`FOR UPDATE`), so two
//! relays see each other's leases and never take the same event, nor a later
//! event of a key whose earlier event the other holds.

use std::collections::HashSet;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDateTime, Utc};
use sqlx::mysql::{MySqlConnectOptions, MySqlPool};
use sqlx::{ConnectOptions, FromRow, MySql, QueryBuilder, Transaction};
use uuid::Uuid;

use crate::adapters::sql::{Liveness, is_unique_violation};
use crate::kernel::money::Money;
use crate::ports::{Page, PortError, Probe, WriteError};
use crate::products::domain::{Product, ProductQuery, SortKey};
use crate::products::ports::{Outbox, OutboxEvent, ProductStore};

const DEPENDENCY: &str = "MySQL";
/// How many pending events one claim looks at (leased ones included).
const CLAIM_SCAN: i64 = 1000;

#[derive(Clone)]
pub struct MySqlProductStore {
    pool: MySqlPool,
    liveness: Liveness,
}

#[derive(FromRow)]
struct Row {
    id: String,
    name: String,
    description: String,
    price_cents: i64,
    stock: u32,
    category: String,
    image_url: Option<String>,
    version: u64,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
}

impl TryFrom<Row> for Product {
    type Error = PortError;
    fn try_from(r: Row) -> Result<Self, PortError> {
        Ok(Product {
            id: Uuid::parse_str(&r.id).map_err(|e| PortError::Unexpected(e.into()))?,
            name: r.name,
            description: r.description,
            price: Money::from_cents(r.price_cents),
            stock: r.stock,
            category: r.category,
            image_url: r.image_url,
            version: r.version,
            created_at: r.created_at.and_utc(),
            updated_at: r.updated_at.and_utc(),
        })
    }
}

const COLUMNS: &str = "id, name, description, price_cents, stock, category, image_url, version, created_at, updated_at";

fn naive(t: DateTime<Utc>) -> NaiveDateTime {
    t.naive_utc()
}

impl MySqlProductStore {
    /// Connects (failing within `timeout`) and runs the migrations.
    pub async fn connect(url: &str, timeout: Duration) -> anyhow::Result<Self> {
        let options: MySqlConnectOptions = url.parse()?;
        let options = options.log_statements(tracing::log::LevelFilter::Trace).timezone(Some("+00:00".into()));
        let liveness = Liveness::default();
        let pool = liveness.pool_options().connect_with(options).await?;
        let store = MySqlProductStore { pool, liveness };
        tokio::time::timeout(timeout, store.migrate()).await??;
        Ok(store)
    }

    pub async fn migrate(&self) -> anyhow::Result<()> {
        sqlx::migrate!("adapters/mysql/migrations").run(&self.pool).await?;
        Ok(())
    }

    fn err(&self, e: sqlx::Error) -> PortError {
        self.liveness.error(DEPENDENCY, e)
    }

    async fn insert_event(&self, tx: &mut Transaction<'_, MySql>, event: &OutboxEvent) -> Result<(), PortError> {
        let headers = if event.headers.is_empty() {
            None
        } else {
            Some(serde_json::to_string(&event.headers).map_err(|e| PortError::Unexpected(e.into()))?)
        };
        sqlx::query("INSERT INTO outbox (id, event_key, payload, headers, created_at) VALUES (?, ?, ?, ?, ?)")
            .bind(event.id.to_string())
            .bind(&event.key)
            .bind(&event.payload)
            .bind(headers)
            .bind(naive(event.created_at))
            .execute(&mut **tx)
            .await
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// After a write that matched no row: was it missing, or changed meanwhile?
    async fn missing_or_conflict(&self, tx: &mut Transaction<'_, MySql>, id: Uuid) -> Result<WriteError, PortError> {
        let exists: Option<u64> = sqlx::query_scalar("SELECT version FROM products WHERE id = ?")
            .bind(id.to_string())
            .fetch_optional(&mut **tx)
            .await
            .map_err(|e| self.err(e))?;
        Ok(if exists.is_some() { WriteError::Conflict } else { WriteError::NotFound })
    }
}

fn filtered<'a>(qb: &mut QueryBuilder<'a, MySql>, q: &'a ProductQuery) {
    qb.push(" WHERE 1 = 1");
    if let Some(c) = &q.category {
        qb.push(" AND category = ").push_bind(c);
    }
    if let Some(text) = &q.q {
        let pattern = format!("%{}%", text.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_"));
        qb.push(" AND (name LIKE ")
            .push_bind(pattern.clone())
            .push(" OR description LIKE ")
            .push_bind(pattern)
            .push(")");
    }
    if let Some(m) = q.min_price {
        qb.push(" AND price_cents >= ").push_bind(m.cents());
    }
    if let Some(m) = q.max_price {
        qb.push(" AND price_cents <= ").push_bind(m.cents());
    }
}

#[async_trait]
impl Probe for MySqlProductStore {
    async fn ping(&self) -> Result<(), PortError> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map_err(|e| self.err(e))?;
        Ok(())
    }
}

#[async_trait]
impl ProductStore for MySqlProductStore {
    async fn list(&self, q: &ProductQuery) -> Result<Page<Product>, PortError> {
        let mut count = QueryBuilder::<MySql>::new("SELECT COUNT(*) FROM products");
        filtered(&mut count, q);
        let total: i64 = count.build_query_scalar().fetch_one(&self.pool).await.map_err(|e| self.err(e))?;
        let mut select = QueryBuilder::<MySql>::new(format!("SELECT {COLUMNS} FROM products"));
        filtered(&mut select, q);
        let column = match q.sort.key {
            SortKey::Price => "price_cents",
            SortKey::Name => "name",
            SortKey::CreatedAt => "created_at",
        };
        let dir = if q.sort.descending { "DESC" } else { "ASC" };
        select.push(format!(" ORDER BY {column} {dir}, id {dir} LIMIT "));
        select.push_bind(i64::from(q.limit)).push(" OFFSET ").push_bind(q.offset() as i64);
        let rows: Vec<Row> = select.build_query_as().fetch_all(&self.pool).await.map_err(|e| self.err(e))?;
        let items = rows.into_iter().map(Product::try_from).collect::<Result<_, _>>()?;
        Ok(Page { items, total: total.max(0) as u64 })
    }

    async fn get(&self, id: Uuid) -> Result<Option<Product>, PortError> {
        let (sql, id) = (format!("SELECT {COLUMNS} FROM products WHERE id = ?"), id.to_string());
        let row: Option<Row> =
            self.liveness.read(DEPENDENCY, || sqlx::query_as(&sql).bind(&id).fetch_optional(&self.pool)).await?;
        row.map(Product::try_from).transpose()
    }

    async fn get_many(&self, ids: &[Uuid]) -> Result<Vec<Product>, PortError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let unique: HashSet<String> = ids.iter().map(Uuid::to_string).collect();
        let mut qb = QueryBuilder::<MySql>::new(format!("SELECT {COLUMNS} FROM products WHERE id IN ("));
        let mut list = qb.separated(", ");
        for id in unique {
            list.push_bind(id);
        }
        qb.push(")");
        let rows: Vec<Row> = qb.build_query_as().fetch_all(&self.pool).await.map_err(|e| self.err(e))?;
        rows.into_iter().map(Product::try_from).collect()
    }

    async fn create(&self, p: &Product, event: &OutboxEvent) -> Result<(), WriteError> {
        let mut tx = self.pool.begin().await.map_err(|e| self.err(e))?;
        let inserted = sqlx::query(&format!("INSERT INTO products ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"))
            .bind(p.id.to_string())
            .bind(&p.name)
            .bind(&p.description)
            .bind(p.price.cents())
            .bind(p.stock)
            .bind(&p.category)
            .bind(&p.image_url)
            .bind(p.version)
            .bind(naive(p.created_at))
            .bind(naive(p.updated_at))
            .execute(&mut *tx)
            .await;
        match inserted {
            Err(e) if is_unique_violation(&e) => return Err(WriteError::Duplicate),
            Err(e) => return Err(self.err(e).into()),
            Ok(_) => {}
        }
        self.insert_event(&mut tx, event).await?;
        tx.commit().await.map_err(|e| self.err(e))?;
        Ok(())
    }

    async fn update(&self, p: &Product, expected_version: u64, event: &OutboxEvent) -> Result<(), WriteError> {
        let mut tx = self.pool.begin().await.map_err(|e| self.err(e))?;
        let done = sqlx::query(
            "UPDATE products SET name = ?, description = ?, price_cents = ?, stock = ?, category = ?, image_url = ?,
                 version = ?, updated_at = ? WHERE id = ? AND version = ?",
        )
        .bind(&p.name)
        .bind(&p.description)
        .bind(p.price.cents())
        .bind(p.stock)
        .bind(&p.category)
        .bind(&p.image_url)
        .bind(p.version)
        .bind(naive(p.updated_at))
        .bind(p.id.to_string())
        .bind(expected_version)
        .execute(&mut *tx)
        .await
        .map_err(|e| self.err(e))?;
        if done.rows_affected() == 0 {
            return Err(self.missing_or_conflict(&mut tx, p.id).await?);
        }
        self.insert_event(&mut tx, event).await?;
        tx.commit().await.map_err(|e| self.err(e))?;
        Ok(())
    }

    async fn delete(&self, id: Uuid, expected_version: u64, event: &OutboxEvent) -> Result<(), WriteError> {
        let mut tx = self.pool.begin().await.map_err(|e| self.err(e))?;
        let done = sqlx::query("DELETE FROM products WHERE id = ? AND version = ?")
            .bind(id.to_string())
            .bind(expected_version)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.err(e))?;
        if done.rows_affected() == 0 {
            return Err(self.missing_or_conflict(&mut tx, id).await?);
        }
        self.insert_event(&mut tx, event).await?;
        tx.commit().await.map_err(|e| self.err(e))?;
        Ok(())
    }
}

#[derive(FromRow)]
struct OutboxRow {
    seq: u64,
    id: String,
    event_key: String,
    payload: Vec<u8>,
    headers: Option<String>,
    created_at: NaiveDateTime,
    /// Under a live lease of another owner.
    held: i64,
}

#[async_trait]
impl Outbox for MySqlProductStore {
    async fn claim(&self, owner: &str, limit: usize, lease: Duration) -> Result<Vec<OutboxEvent>, PortError> {
        let mut tx = self.pool.begin().await.map_err(|e| self.err(e))?;
        // Locking what we read makes a second claimer wait for our leases.
        let rows: Vec<OutboxRow> = sqlx::query_as(
            "SELECT seq, id, event_key, payload, headers, created_at,
                    (leased_until IS NOT NULL AND leased_until > NOW(6) AND NOT (leased_by <=> ?)) AS held
             FROM outbox ORDER BY seq LIMIT ? FOR UPDATE",
        )
        .bind(owner)
        .bind(CLAIM_SCAN)
        .fetch_all(&mut *tx)
        .await
        .map_err(|e| self.err(e))?;
        let mut blocked: HashSet<String> = HashSet::new();
        let mut claimed = Vec::new();
        let mut seqs = Vec::new();
        for row in rows {
            if claimed.len() >= limit {
                break;
            }
            if row.held != 0 || blocked.contains(&row.event_key) {
                blocked.insert(row.event_key);
                continue;
            }
            seqs.push(row.seq);
            let headers = match row.headers {
                Some(json) => serde_json::from_str(&json).map_err(|e| PortError::Unexpected(e.into()))?,
                None => Vec::new(),
            };
            claimed.push(OutboxEvent {
                id: Uuid::parse_str(&row.id).map_err(|e| PortError::Unexpected(e.into()))?,
                key: row.event_key,
                payload: row.payload,
                headers,
                created_at: row.created_at.and_utc(),
            });
        }
        if !seqs.is_empty() {
            let mut qb = QueryBuilder::<MySql>::new("UPDATE outbox SET leased_by = ");
            qb.push_bind(owner).push(", leased_until = NOW(6) + INTERVAL ");
            qb.push_bind(lease.as_micros() as i64).push(" MICROSECOND WHERE seq IN (");
            let mut list = qb.separated(", ");
            for s in &seqs {
                list.push_bind(*s);
            }
            qb.push(")");
            qb.build().execute(&mut *tx).await.map_err(|e| self.err(e))?;
        }
        tx.commit().await.map_err(|e| self.err(e))?;
        Ok(claimed)
    }

    async fn mark_sent(&self, ids: &[Uuid]) -> Result<(), PortError> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut qb = QueryBuilder::<MySql>::new("DELETE FROM outbox WHERE id IN (");
        let mut list = qb.separated(", ");
        for id in ids {
            list.push_bind(id.to_string());
        }
        qb.push(")");
        qb.build().execute(&self.pool).await.map_err(|e| self.err(e))?;
        Ok(())
    }

    async fn pending(&self) -> Result<u64, PortError> {
        let n: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM outbox").fetch_one(&self.pool).await.map_err(|e| self.err(e))?;
        Ok(n.max(0) as u64)
    }
}
