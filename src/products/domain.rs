//! A catalogue product, the rules on its fields, and listing queries.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::kernel::money::Money;
use crate::kernel::validation::{FieldError, Problems, text};

pub const MAX_STOCK: i64 = 1_000_000_000;
pub const DEFAULT_CATEGORY: &str = "general";

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Product {
    pub id: Uuid,
    pub name: String,
    pub description: String,
    #[schema(value_type = f64, example = 19.99)]
    pub price: Money,
    pub stock: u32,
    pub category: String,
    pub image_url: Option<String>,
    /// 1 at creation, + 1 on every change.
    pub version: u64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The fields a client may set; `None` = not given.
#[derive(Debug, Default, Clone)]
pub struct ProductFields {
    pub name: Option<String>,
    pub description: Option<String>,
    pub price: Option<Money>,
    pub stock: Option<i64>,
    pub category: Option<String>,
    pub image_url: Option<String>,
}

/// Checked fields, ready to apply.
#[derive(Debug, Default, Clone)]
pub struct ProductChange {
    pub name: Option<String>,
    pub description: Option<String>,
    pub price: Option<Money>,
    pub stock: Option<u32>,
    pub category: Option<String>,
    pub image_url: Option<String>,
}

impl ProductFields {
    /// For a create, `name`, `price` and `stock` are required.
    pub fn check(self, creating: bool) -> Result<ProductChange, Vec<FieldError>> {
        let mut p = Problems::new();
        if creating {
            for (field, missing) in
                [("name", self.name.is_none()), ("price", self.price.is_none()), ("stock", self.stock.is_none())]
            {
                if missing {
                    p.add(field, "is required");
                }
            }
        }
        let name = self.name.and_then(|v| p.check("name", text(&v, 1, 200)));
        let description = self.description.and_then(|v| p.check("description", text(&v, 0, 5000)));
        let category = self.category.and_then(|v| p.check("category", text(&v, 1, 100)));
        let image_url = self.image_url.and_then(|v| p.check("imageUrl", image_url(&v)));
        let stock = self.stock.and_then(|s| {
            p.check(
                "stock",
                match s {
                    s if s < 0 => Err("must not be negative".into()),
                    s if s > MAX_STOCK => Err(format!("must be at most {MAX_STOCK}")),
                    s => Ok(s as u32),
                },
            )
        });
        let change = ProductChange { name, description, price: self.price, stock, category, image_url };
        if !creating && change.is_empty() && p.is_empty() {
            p.add("body", "must change at least one field");
        }
        p.finish(|| change)
    }
}

impl ProductChange {
    fn is_empty(&self) -> bool {
        self.name.is_none()
            && self.description.is_none()
            && self.price.is_none()
            && self.stock.is_none()
            && self.category.is_none()
            && self.image_url.is_none()
    }
}
fn image_url(v: &str) -> Result<String, String> {
    let v = text(v, 1, 2048)?;
    if v.chars().any(char::is_whitespace)
        || !(v.starts_with("http://") || v.starts_with("https://") || v.starts_with('/'))
    {
        return Err("must be an http(s) URL or an absolute path".into());
    }
    Ok(v)
}

impl Product {
    pub fn create(change: ProductChange, now: DateTime<Utc>) -> Product {
        Product {
            id: Uuid::now_v7(),
            name: change.name.unwrap_or_default(),
            description: change.description.unwrap_or_default(),
            price: change.price.unwrap_or_default(),
            stock: change.stock.unwrap_or_default(),
            category: change.category.unwrap_or_else(|| DEFAULT_CATEGORY.into()),
            image_url: change.image_url,
            version: 1,
            created_at: now,
            updated_at: now,
        }
    }

    /// The next version of this product with `change` applied.
    pub fn changed(&self, change: &ProductChange, now: DateTime<Utc>) -> Product {
        let mut next = self.clone();
        if let Some(v) = &change.name {
            next.name = v.clone();
        }
        if let Some(v) = &change.description {
            next.description = v.clone();
        }
        if let Some(v) = change.price {
            next.price = v;
        }
        if let Some(v) = change.stock {
            next.stock = v;
        }
        if let Some(v) = &change.category {
            next.category = v.clone();
        }
        if let Some(v) = &change.image_url {
            next.image_url = Some(v.clone());
        }
        next.version += 1;
        next.updated_at = now.max(self.updated_at);
        next
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    Price,
    Name,
    CreatedAt,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sort {
    pub key: SortKey,
    pub descending: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ProductQuery {
    pub page: u32,
    pub limit: u32,
    /// Exact match, case-insensitive.
    pub category: Option<String>,
    /// Substring of name or description, case-insensitive.
    pub q: Option<String>,
    pub min_price: Option<Money>,
    pub max_price: Option<Money>,
    pub sort: Sort,
}

pub const MAX_LIMIT: u32 = 100;
pub const DEFAULT_LIMIT: u32 = 20;

impl ProductQuery {
    pub fn offset(&self) -> u64 {
        u64::from(self.page - 1) * u64::from(self.limit)
    }

    /// From query-string parameters; unknown parameters are ignored.
    pub fn parse(params: &HashMap<String, String>) -> Result<ProductQuery, Vec<FieldError>> {
        let mut p = Problems::new();
        let get = |k: &str| params.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
        let int = |k: &str, min: u32, max: u32, default: u32| match get(k) {
            None => Ok(default),
            Some(v) => v
                .parse::<u32>()
                .ok()
                .filter(|n| (min..=max).contains(n))
                .ok_or_else(|| format!("must be a whole number from {min} to {max}")),
        };
        let page = p.check("page", int("page", 1, 1_000_000, 1));
        let limit = p.check("limit", int("limit", 1, MAX_LIMIT, DEFAULT_LIMIT));
        let money = |k: &str| get(k).map(|v| Money::parse(v).map_err(|e| e.to_string())).transpose();
        let min_price = p.check("minPrice", money("minPrice")).flatten();
        let max_price = p.check("maxPrice", money("maxPrice")).flatten();
        if let (Some(lo), Some(hi)) = (min_price, max_price)
            && lo > hi
        {
            p.add("maxPrice", "must not be below minPrice");
        }
        let sort = p.check(
            "sort",
            match get("sort").unwrap_or("-createdAt") {
                "price" => Ok(Sort { key: SortKey::Price, descending: false }),
                "-price" => Ok(Sort { key: SortKey::Price, descending: true }),
                "name" => Ok(Sort { key: SortKey::Name, descending: false }),
                "-name" => Ok(Sort { key: SortKey::Name, descending: true }),
                "createdAt" => Ok(Sort { key: SortKey::CreatedAt, descending: false }),
                "-createdAt" => Ok(Sort { key: SortKey::CreatedAt, descending: true }),
                _ => Err("must be one of price, -price, name, -name, createdAt, -createdAt".to_string()),
            },
        );
        let q = get("q").map(str::to_string);
        let category = get("category").map(str::to_string);
        p.finish(|| ProductQuery {
            page: page.unwrap_or(1),
            limit: limit.unwrap_or(DEFAULT_LIMIT),
            category,
            q,
            min_price,
            max_price,
            sort: sort.unwrap_or(Sort { key: SortKey::CreatedAt, descending: true }),
        })
    }
}
