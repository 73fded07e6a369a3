//! Forwarding: resolve the route, authenticate if it asks for it, replace the
//! identity headers, and pass the request (body read within the 1 MiB limit) to
//! the service, in-process or over HTTP. Upstream failures become JSON 503/504.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, header};
use axum::response::{IntoResponse, Response};

use super::auth::AuthCache;
use super::idempotency::{self, Decision, Idempotency};
use super::ports::TokenError;
use super::routes::{self, Access, Effect, Service};
use crate::http::caller::bearer;
use crate::http::middleware::RouteTemplate;
use crate::http::trust::{InternalKey, PROOF_HEADER};
use crate::http::upstream::Upstream;
use crate::http::{ApiError, USER_ID_HEADER, USER_ROLE_HEADER};

pub struct Proxy {
    pub users: Upstream,
    pub products: Upstream,
    pub carts: Upstream,
    pub auth: AuthCache,
    pub key: InternalKey,
    pub idempotency: Idempotency,
}

/// Headers that describe one connection, not the request: never forwarded.
const HOP_BY_HOP: [HeaderName; 6] = [
    header::CONNECTION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    header::PROXY_AUTHORIZATION,
];

pub async fn forward(State(proxy): State<Arc<Proxy>>, req: Request) -> Response {
    let route = routes::template(req.uri().path()).unwrap_or("unmatched");
    let mut response = match forward_inner(&proxy, req).await {
        Ok(response) => response,
        Err(e) => e.into_response(),
    };
    response.extensions_mut().insert(RouteTemplate(route));
    response
}

async fn forward_inner(proxy: &Proxy, req: Request) -> Result<Response, ApiError> {
    let route = routes::resolve(req.method(), req.uri().path()).ok_or(ApiError::RouteNotFound)?;
    let (mut parts, body) = req.into_parts();
    parts.headers.remove(USER_ID_HEADER);
    parts.headers.remove(USER_ROLE_HEADER);
    parts.headers.remove(PROOF_HEADER);
    for h in &HOP_BY_HOP {
        parts.headers.remove(h);
    }
    // Two credentials are no credential: which one would count is anybody's guess.
    if parts.headers.get_all(header::AUTHORIZATION).iter().count() > 1 {
        return Err(ApiError::Unauthorized);
    }
    let token = bearer(&parts.headers).map(str::to_string);
    let mut caller = None;
    if route.access == Access::User {
        let token = token.as_deref().ok_or(ApiError::Unauthorized)?;
        let identity = proxy.auth.identify(token).await.map_err(|e| match e {
            TokenError::Invalid => ApiError::Unauthorized,
            TokenError::Port(p) => p.into(),
        })?;
        caller = Some(identity.user_id);
        let user = identity.user_id.to_string();
        let role = identity.role.as_str();
        let now = chrono::Utc::now().timestamp();
        let proof = proxy.key.prove(now, &parts.method, parts.uri.path(), &user, role);
        parts.headers.insert(USER_ID_HEADER, HeaderValue::from_str(&user).map_err(anyhow::Error::from)?);
        parts.headers.insert(USER_ROLE_HEADER, HeaderValue::from_static(role));
        parts.headers.insert(PROOF_HEADER, proof);
    }
    let body = crate::http::body::read(body).await?;
    let ticket = match (route.idempotent, idempotency::key_of(&parts.headers)?) {
        (true, Some(key)) => {
            let scope = caller.map_or_else(|| "anyone".to_string(), |user| user.to_string());
            match proxy.idempotency.begin(&scope, &key, &parts.method, parts.uri.path(), &body).await? {
                Decision::Answer(answer) => return Ok(answer),
                Decision::Proceed(ticket) => Some(ticket),
            }
        }
        _ => None,
    };
    let upstream = match route.service {
        Service::Users => &proxy.users,
        Service::Products => &proxy.products,
        Service::Carts => &proxy.carts,
    };
    let response = match upstream.call(Request::from_parts(parts, Body::from(body))).await {
        Ok(response) => response,
        Err(e) => {
            let failed: Response = ApiError::from(e).into_response();
            return Ok(match ticket {
                Some(ticket) => proxy.idempotency.end(ticket, failed).await,
                None => failed,
            });
        }
    };
    if response.status().is_success() {
        match (route.effect, token, caller) {
            (Effect::Logout, Some(token), _) => proxy.auth.forget(&token),
            (Effect::CredentialsChange, _, Some(user)) => proxy.auth.forget_user(user),
            _ => {}
        }
    }
    let (mut parts, body) = response.into_parts();
    for h in &HOP_BY_HOP {
        parts.headers.remove(h);
    }
    let response = Response::from_parts(parts, body);
    Ok(match ticket {
        Some(ticket) => proxy.idempotency.end(ticket, response).await,
        None => response,
    })
}
