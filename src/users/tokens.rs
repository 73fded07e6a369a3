//! JWTs: HS256 only (pinned, so `alg: none` or RS/HS confusion is refused), with
//! `exp`, `iat`, a unique `jti` that logout can revoke, and `ver`, the user's
//! token version when issued (a password change moves it on). A token's `nbf`,
//! when it has one, is honoured.

use chrono::{DateTime, TimeZone, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, encode};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::domain::User;
use crate::kernel::identity::Role;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Claims {
    pub sub: Uuid,
    pub email: String,
    pub role: Role,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
    /// The user's token version when this was issued.
    #[serde(default)]
    pub ver: u64,
}

impl Claims {
    pub fn expires_at(&self) -> DateTime<Utc> {
        Utc.timestamp_opt(self.exp, 0).single().unwrap_or_else(Utc::now)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TokenIssueError {
    #[error("token signing failed: {0}")]
    Sign(#[from] jsonwebtoken::errors::Error),
}

#[derive(Clone)]
pub struct TokenIssuer {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ttl_secs: u64,
}

pub struct IssuedToken {
    pub token: String,
    pub expires_in: u64,
}

impl TokenIssuer {
    pub fn new(secret: &[u8], ttl_secs: u64) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "sub"]);
        TokenIssuer {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            ttl_secs,
        }
    }

    pub fn issue(&self, user: &User) -> Result<IssuedToken, TokenIssueError> {
        let now = Utc::now().timestamp();
        let claims = Claims {
            sub: user.id,
            email: user.email.clone(),
            role: user.role,
            iat: now,
            exp: now + self.ttl_secs as i64,
            jti: Uuid::new_v4().to_string(),
            ver: user.token_version,
        };
        let token = encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)?;
        Ok(IssuedToken { token, expires_in: self.ttl_secs })
    }

    /// The claims of a well-signed, unexpired token; `None` for anything else.
    pub fn verify(&self, token: &str) -> Option<Claims> {
        decode::<Claims>(token, &self.decoding, &self.validation).ok().map(|d| d.claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user() -> User {
        User {
            id: Uuid::new_v4(),
            name: "A".into(),
            email: "a@b.co".into(),
            role: Role::User,
            password_hash: String::new(),
            token_version: 0,
            created_at: Utc::now(),
            updated_at: Utc::now(),
        }
    }

    #[test]
    fn issued_tokens_verify_and_carry_unique_ids() {
        let issuer = TokenIssuer::new(&[7u8; 32], 60);
        let u = user();
        let a = issuer.issue(&u).unwrap();
        let b = issuer.issue(&u).unwrap();
        let (ca, cb) = (issuer.verify(&a.token).unwrap(), issuer.verify(&b.token).unwrap());
        assert_eq!(ca.sub, u.id);
        assert_ne!(ca.jti, cb.jti);
        assert_eq!(ca.exp - ca.iat, 60);
    }

    #[test]
    fn foreign_expired_and_unsigned_tokens_are_refused() {
        let issuer = TokenIssuer::new(&[7u8; 32], 60);
        let other = TokenIssuer::new(&[8u8; 32], 60);
        let t = other.issue(&user()).unwrap().token;
        assert!(issuer.verify(&t).is_none());
        let mut claims = issuer.verify(&issuer.issue(&user()).unwrap().token).unwrap();
        claims.exp = Utc::now().timestamp() - 1;
        let expired = encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(&[7u8; 32])).unwrap();
        assert!(issuer.verify(&expired).is_none());
        let header = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0"; // {"alg":"none","typ":"JWT"}
        let body = t.split('.').nth(1).unwrap();
        assert!(issuer.verify(&format!("{header}.{body}.")).is_none());
        assert!(issuer.verify("garbage").is_none());
    }
}
