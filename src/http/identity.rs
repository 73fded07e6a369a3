//! The caller's identity as the gateway forwards it (`x-user-id`, `x-user-role`).
//! Services trust these headers: the gateway strips any a client sends and sets
//! them only after validating the token.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use uuid::Uuid;

use super::{ApiError, USER_ID_HEADER, USER_ROLE_HEADER};
use crate::users::domain::Role;

#[derive(Debug, Clone, Copy)]
pub struct Caller {
    pub user_id: Uuid,
    pub role: Role,
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let header = |name| parts.headers.get(name).and_then(|v| v.to_str().ok());
        let user_id = header(USER_ID_HEADER).and_then(|v| Uuid::parse_str(v).ok());
        let role = header(USER_ROLE_HEADER).and_then(Role::parse);
        match (user_id, role) {
            (Some(user_id), Some(role)) => Ok(Caller { user_id, role }),
            _ => Err(ApiError::Unauthorized),
        }
    }
}

/// The bearer token of the request, if it has one.
pub fn bearer(headers: &axum::http::HeaderMap) -> Option<&str> {
    let value = headers.get(axum::http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}
