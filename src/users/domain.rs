//! A user account and the rules on its fields.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::kernel::identity::Role;
use crate::kernel::validation;

#[derive(Debug, Clone, PartialEq)]
pub struct User {
    pub id: Uuid,
    pub name: String,
    /// Normalized: trimmed and lowercased; unique.
    pub email: String,
    pub role: Role,
    /// PHC string (argon2id).
    pub password_hash: String,
    /// Tokens carry the version they were issued under; a password change
    /// moves it on, which revokes every token issued before.
    pub token_version: u64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

pub fn name(raw: &str) -> Result<String, String> {
    validation::text(raw, 1, 100)
}

/// Trims and lowercases, then checks the shape `local@domain.tld`.
pub fn email(raw: &str) -> Result<String, String> {
    let email = raw.trim().to_lowercase();
    let bad = || Err("must be a valid email address".to_string());
    if email.len() > 254 || email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return bad();
    }
    let Some((local, domain)) = email.split_once('@') else { return bad() };
    if local.is_empty() || local.len() > 64 || domain.contains('@') {
        return bad();
    }
    let labels: Vec<&str> = domain.split('.').collect();
    let label_ok = |l: &&str| {
        !l.is_empty() && !l.starts_with('-') && !l.ends_with('-') && l.chars().all(|c| c.is_alphanumeric() || c == '-')
    };
    if labels.len() < 2 || !labels.iter().all(label_ok) || labels.last().is_some_and(|tld| tld.len() < 2) {
        return bad();
    }
    Ok(email)
}

/// Length only (8–128 characters); kept as typed, never trimmed.
pub fn password(raw: &str) -> Result<String, String> {
    let len = raw.chars().count();
    if len < 8 {
        return Err("must be at least 8 characters".into());
    }
    if len > 128 {
        return Err("must be at most 128 characters".into());
    }
    Ok(raw.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalized_and_checked() {
        assert_eq!(email("  Alice@Example.COM ").unwrap(), "alice@example.com");
        for bad in ["", "a", "a@", "@b.com", "a@b", "a b@c.com", "a@b@c.com", "a@-b.com", "a@b.c"] {
            assert!(email(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn names_and_passwords_have_bounds() {
        assert!(name("   ").is_err());
        assert_eq!(name(" Al ").unwrap(), "Al");
        assert!(name(&"x".repeat(101)).is_err());
        assert!(password("1234567").is_err());
        assert!(password("12345678").is_ok());
        assert!(password(&"x".repeat(129)).is_err());
    }
}
