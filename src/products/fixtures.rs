//! The demo catalogue (`fixtures/products.json`, built into the binary), loaded
//! into an empty store at start-up.

use serde::Deserialize;

use super::ProductService;
use super::domain::{ProductFields, ProductQuery};
use crate::kernel::money::Money;

const CATALOGUE: &str = include_str!("../../fixtures/products.json");

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Entry {
    name: String,
    description: String,
    price: Money,
    stock: i64,
    category: String,
    image_url: Option<String>,
}

/// Seeds the catalogue if the store holds no product; returns how many were added.
pub async fn seed(products: &ProductService) -> anyhow::Result<usize> {
    let empty = ProductQuery::parse(&Default::default()).map_err(|e| anyhow::anyhow!("{e:?}"))?;
    if products.list(&empty).await?.total > 0 {
        return Ok(0);
    }
    let entries: Vec<Entry> = serde_json::from_str(CATALOGUE)?;
    for e in &entries {
        let fields = ProductFields {
            name: Some(e.name.clone()),
            description: Some(e.description.clone()),
            price: Some(e.price),
            stock: Some(e.stock),
            category: Some(e.category.clone()),
            image_url: e.image_url.clone(),
        };
        products.create(fields).await.map_err(|e| anyhow::anyhow!("seeding the catalogue: {e}"))?;
    }
    Ok(entries.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalogue_parses_and_is_valid() {
        let entries: Vec<Entry> = serde_json::from_str(CATALOGUE).unwrap();
        assert!(entries.len() >= 20);
        for e in entries {
            let fields = ProductFields {
                name: Some(e.name),
                description: Some(e.description),
                price: Some(e.price),
                stock: Some(e.stock),
                category: Some(e.category),
                image_url: e.image_url,
            };
            fields.check(true).unwrap();
        }
    }
}
