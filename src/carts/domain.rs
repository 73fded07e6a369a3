//! Cart lines, the product details a cart needs, and the priced view of a cart.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::kernel::money::Money;

/// Quantities per line run from 1 to this.
pub const MAX_QUANTITY: u32 = 999;

/// One product in one user's cart, with the product's details as last seen.
#[derive(Debug, Clone, PartialEq)]
pub struct CartLine {
    pub product_id: Uuid,
    pub quantity: u32,
    /// Denormalized from the product (kept fresh by events).
    pub name: String,
    pub image_url: Option<String>,
    pub price: Money,
    /// The price when the line was first added; never changes.
    pub price_at_add: Money,
    /// The product version the denormalized fields reflect.
    pub product_version: u64,
    pub added_at: DateTime<Utc>,
}

impl CartLine {
    pub fn new(product: &ProductSnapshot, quantity: u32, now: DateTime<Utc>) -> Self {
        CartLine {
            product_id: product.id,
            quantity,
            name: product.name.clone(),
            image_url: product.image_url.clone(),
            price: product.price,
            price_at_add: product.price,
            product_version: product.version,
            added_at: now,
        }
    }

    /// Takes the snapshot's name, price and image if it is newer than what the line reflects.
    pub fn refresh(&mut self, product: &ProductSnapshot) -> bool {
        if product.version <= self.product_version {
            return false;
        }
        self.name = product.name.clone();
        self.image_url = product.image_url.clone();
        self.price = product.price;
        self.product_version = product.version;
        true
    }
}

/// What a cart needs to know of a product; parsed from the product JSON (the
/// products service's answers, the cache, and event data alike).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProductSnapshot {
    pub id: Uuid,
    pub name: String,
    pub price: Money,
    pub stock: u32,
    pub image_url: Option<String>,
    pub version: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CartItemView {
    pub product_id: Uuid,
    pub name: String,
    pub image_url: Option<String>,
    pub quantity: u32,
    /// The live price (the line's copy when the catalogue cannot answer).
    #[schema(value_type = f64)]
    pub unit_price: Money,
    #[schema(value_type = f64)]
    pub price_at_add: Money,
    pub price_changed: bool,
    /// False when the product no longer exists.
    pub available: bool,
    /// False when the stock is below the quantity.
    pub in_stock: bool,
    #[schema(value_type = f64)]
    pub line_total: Money,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CartView {
    pub items: Vec<CartItemView>,
    /// Units of available products.
    pub item_count: u32,
    /// Sum of the line totals of available products.
    #[schema(value_type = f64)]
    pub subtotal: Money,
}

/// Live details of the cart's products, as far as the catalogue answered.
pub enum Live<'a> {
    Known(&'a HashMap<Uuid, ProductSnapshot>),
    /// The catalogue could not answer: the lines' own copies stand in.
    Unknown,
}

pub fn price(lines: &[CartLine], live: Live<'_>) -> CartView {
    let items: Vec<CartItemView> = lines
        .iter()
        .map(|line| {
            let (product, available) = match &live {
                Live::Known(map) => (map.get(&line.product_id), map.contains_key(&line.product_id)),
                Live::Unknown => (None, true),
            };
            let unit_price = product.map(|p| p.price).unwrap_or(line.price);
            CartItemView {
                product_id: line.product_id,
                name: product.map(|p| p.name.clone()).unwrap_or_else(|| line.name.clone()),
                image_url: product.map(|p| p.image_url.clone()).unwrap_or_else(|| line.image_url.clone()),
                quantity: line.quantity,
                unit_price,
                price_at_add: line.price_at_add,
                price_changed: unit_price != line.price_at_add,
                available,
                in_stock: available && product.is_none_or(|p| p.stock >= line.quantity),
                line_total: unit_price.times(line.quantity),
            }
        })
        .collect();
    let counted = || items.iter().filter(|i| i.available);
    CartView { item_count: counted().map(|i| i.quantity).sum(), subtotal: counted().map(|i| i.line_total).sum(), items }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(price: i64, stock: u32, version: u64) -> ProductSnapshot {
        ProductSnapshot {
            id: Uuid::nil(),
            name: format!("v{version}"),
            price: Money::from_cents(price),
            stock,
            image_url: None,
            version,
        }
    }

    #[test]
    fn prices_with_live_data() {
        let line = CartLine::new(&snap(1000, 5, 1), 2, Utc::now());
        let live: HashMap<_, _> = [(Uuid::nil(), snap(1200, 1, 2))].into();
        let view = price(std::slice::from_ref(&line), Live::Known(&live));
        let item = &view.items[0];
        assert_eq!(item.unit_price, Money::from_cents(1200));
        assert!(item.price_changed && item.available && !item.in_stock);
        assert_eq!(view.subtotal, Money::from_cents(2400));
        assert_eq!(view.item_count, 2);
        let gone = price(std::slice::from_ref(&line), Live::Known(&HashMap::new()));
        assert!(!gone.items[0].available);
        assert_eq!(gone.subtotal, Money::ZERO);
        let unknown = price(&[line], Live::Unknown);
        assert_eq!(unknown.items[0].unit_price, Money::from_cents(1000));
    }

    #[test]
    fn refresh_ignores_older_versions() {
        let mut line = CartLine::new(&snap(1000, 5, 3), 1, Utc::now());
        assert!(!line.refresh(&snap(1, 5, 2)));
        assert!(!line.refresh(&snap(1, 5, 3)));
        assert!(line.refresh(&snap(1, 5, 4)));
        assert_eq!(line.price, Money::from_cents(1));
        assert_eq!(line.price_at_add, Money::from_cents(1000));
    }
}
