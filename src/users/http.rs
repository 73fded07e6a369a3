//! The users service's routes (`/api/users/*`), their JSON shapes, and the
//! mapping of the service's errors to the contract's codes.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::domain::User;
use super::service::{ProfileChange, Registration, Session, UserError, UserService};
use crate::contracts::service_api::{IdentityView, VALIDATE_TOKEN_PATH};
use crate::http::caller::{Caller, bearer};
use crate::http::{ApiError, Created, Data, JsonBody};
use crate::kernel::identity::Role;

impl From<UserError> for ApiError {
    fn from(e: UserError) -> Self {
        match e {
            UserError::Validation(d) => ApiError::Validation(d),
            UserError::EmailTaken => {
                ApiError::refused(StatusCode::CONFLICT, "EMAIL_TAKEN", "An account with this email already exists")
            }
            UserError::InvalidCredentials => {
                ApiError::refused(StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS", "Email or password is wrong")
            }
            UserError::InvalidToken => ApiError::Unauthorized,
            UserError::Port(p) => p.into(),
            UserError::Internal(e) => ApiError::Internal(e),
        }
    }
}

pub fn router(service: Arc<UserService>) -> Router {
    Router::new()
        .route("/api/users/register", post(register))
        .route("/api/users/login", post(login))
        .route("/api/users/logout", post(logout))
        .route("/api/users/profile", get(profile).put(update_profile))
        .route(VALIDATE_TOKEN_PATH, get(validate_token))
        .with_state(service)
}

/// Other fields (such as `role`) are ignored.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct RegisterBody {
    /// Trimmed.
    #[schema(required = true, min_length = 1, max_length = 100, pattern = r"\S")]
    pub name: Option<String>,
    /// Stored trimmed and lowercased; unique.
    #[schema(required = true, format = Email, max_length = 254)]
    pub email: Option<String>,
    #[schema(required = true, min_length = 8, max_length = 128)]
    pub password: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct LoginBody {
    #[schema(required = true)]
    pub email: Option<String>,
    #[schema(required = true)]
    pub password: Option<String>,
}

/// Any subset; other fields (such as `role`) are ignored. A new password
/// revokes every token issued before it, the caller's included.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct ProfileBody {
    #[schema(min_length = 1, max_length = 100, pattern = r"\S")]
    pub name: Option<String>,
    #[schema(format = Email, max_length = 254)]
    pub email: Option<String>,
    #[schema(min_length = 8, max_length = 128)]
    pub password: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserView {
    pub id: Uuid,
    pub name: String,
    pub email: String,
    pub role: Role,
    pub created_at: DateTime<Utc>,
}

impl From<User> for UserView {
    fn from(u: User) -> Self {
        UserView { id: u.id, name: u.name, email: u.email, role: u.role, created_at: u.created_at }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionView {
    pub user: UserView,
    pub token: String,
    /// Seconds until the token expires.
    pub expires_in: u64,
}

impl From<Session> for SessionView {
    fn from(s: Session) -> Self {
        SessionView { user: s.user.into(), token: s.token.token, expires_in: s.token.expires_in }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Message {
    pub message: &'static str,
}

/// Create an account (always with role `user`) and log it in.
#[utoipa::path(post, path = "/api/users/register", tag = "users", operation_id = "registerUser", request_body = RegisterBody,
    responses((status = 201, description = "`{user, token, expiresIn}`", body = SessionView),
        (status = 400, description = "VALIDATION", body = crate::http::error::ErrorBody),
        (status = 409, description = "EMAIL_TAKEN", body = crate::http::error::ErrorBody)))]
pub async fn register(
    State(users): State<Arc<UserService>>,
    JsonBody(body): JsonBody<RegisterBody>,
) -> Result<Created<SessionView>, ApiError> {
    let registration = Registration::parse(body.name.as_deref(), body.email.as_deref(), body.password.as_deref())?;
    Ok(Created(users.register(registration).await?.into()))
}

#[utoipa::path(post, path = "/api/users/login", tag = "users", operation_id = "login", request_body = LoginBody,
    responses((status = 200, description = "`{user, token, expiresIn}`", body = SessionView),
        (status = 401, description = "INVALID_CREDENTIALS", body = crate::http::error::ErrorBody)))]
pub async fn login(
    State(users): State<Arc<UserService>>,
    JsonBody(body): JsonBody<LoginBody>,
) -> Result<Data<SessionView>, ApiError> {
    let mut problems = crate::kernel::validation::Problems::new();
    if body.email.is_none() {
        problems.add("email", "is required");
    }
    if body.password.is_none() {
        problems.add("password", "is required");
    }
    problems.into_result().map_err(ApiError::Validation)?;
    let session =
        users.login(body.email.as_deref().unwrap_or_default(), body.password.as_deref().unwrap_or_default()).await?;
    Ok(Data(session.into()))
}

/// Revoke the presented token until it expires.
#[utoipa::path(post, path = "/api/users/logout", tag = "users", operation_id = "logout", security(("bearer" = [])),
    responses((status = 200, body = Message), (status = 401, description = "UNAUTHORIZED", body = crate::http::error::ErrorBody)))]
pub async fn logout(
    State(users): State<Arc<UserService>>,
    _caller: Caller,
    headers: HeaderMap,
) -> Result<Data<Message>, ApiError> {
    let token = bearer(&headers).ok_or(ApiError::Unauthorized)?;
    users.logout(token).await?;
    Ok(Data(Message { message: "Logged out" }))
}

#[utoipa::path(get, path = "/api/users/profile", tag = "users", operation_id = "getProfile", security(("bearer" = [])),
    responses((status = 200, body = UserView), (status = 401, description = "UNAUTHORIZED", body = crate::http::error::ErrorBody)))]
pub async fn profile(State(users): State<Arc<UserService>>, caller: Caller) -> Result<Data<UserView>, ApiError> {
    Ok(Data(users.profile(caller.user_id).await?.into()))
}

/// Change name, email or password; the role can never be changed here.
#[utoipa::path(put, path = "/api/users/profile", tag = "users", operation_id = "updateProfile", security(("bearer" = [])), request_body = ProfileBody,
    responses((status = 200, body = UserView), (status = 400, description = "VALIDATION", body = crate::http::error::ErrorBody),
        (status = 409, description = "EMAIL_TAKEN", body = crate::http::error::ErrorBody)))]
pub async fn update_profile(
    State(users): State<Arc<UserService>>,
    caller: Caller,
    JsonBody(body): JsonBody<ProfileBody>,
) -> Result<Data<UserView>, ApiError> {
    let change = ProfileChange::parse(body.name.as_deref(), body.email.as_deref(), body.password.as_deref())?;
    Ok(Data(users.update_profile(caller.user_id, change).await?.into()))
}

/// Internal: the gateway asks who holds a token. Not routed by the gateway.
#[utoipa::path(get, path = "/api/users/validate-token", tag = "internal", operation_id = "validateToken", security(("bearer" = [])),
    responses((status = 200, body = IdentityView), (status = 401, description = "UNAUTHORIZED", body = crate::http::error::ErrorBody)))]
pub async fn validate_token(
    State(users): State<Arc<UserService>>,
    headers: HeaderMap,
) -> Result<Data<IdentityView>, ApiError> {
    let token = bearer(&headers).ok_or(ApiError::Unauthorized)?;
    Ok(Data(users.validate(token).await?.into()))
}
