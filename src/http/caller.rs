//! The caller's identity as the gateway forwards it (`x-user-id`,
//! `x-user-role`), and the bearer token of a request. Services trust these
//! headers: the gateway strips any a client sends and sets them only after
//! validating the token.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use uuid::Uuid;

use super::{ApiError, USER_ID_HEADER, USER_ROLE_HEADER};
use crate::kernel::identity::Role;

/// An authenticated caller; a request without one is refused with 401.
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

/// An authenticated caller with the admin role: 401 without a caller, 403 for
/// anyone else. Checked before anything else of the request, so that a
/// non-admin learns nothing (not even whether an id exists).
#[derive(Debug, Clone, Copy)]
pub struct Admin(pub Caller);

impl<S: Send + Sync> FromRequestParts<S> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let caller = Caller::from_request_parts(parts, state).await?;
        if caller.role == Role::Admin { Ok(Admin(caller)) } else { Err(ApiError::Forbidden) }
    }
}

/// The bearer token of the request, if it has exactly one.
pub fn bearer(headers: &axum::http::HeaderMap) -> Option<&str> {
    let mut all = headers.get_all(axum::http::header::AUTHORIZATION).iter();
    let (value, None) = (all.next()?, all.next()) else { return None };
    let value = value.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}
