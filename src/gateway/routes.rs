//! The gateway's route table: which service answers a path, and whether the
//! caller must be authenticated. Paths not here get a JSON 404 from the gateway
//! (the internal `validate-token` among them).

use axum::http::Method;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Users,
    Products,
    Carts,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Public,
    /// A valid token; role checks are the service's own.
    User,
}

/// What a successful answer to the route means for the gateway's auth cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    None,
    /// The token was revoked: forget it at once.
    Logout,
    /// The caller's profile (maybe the password) changed: forget all their tokens.
    CredentialsChange,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub service: Service,
    pub access: Access,
    pub effect: Effect,
    /// A write that honours `Idempotency-Key`.
    pub idempotent: bool,
}

/// The route of `path` as a template (for metrics: never an id), or `None`.
pub fn template(path: &str) -> Option<&'static str> {
    const EXACT: [&str; 9] = [
        "/api/users/register",
        "/api/users/login",
        "/api/users/logout",
        "/api/users/profile",
        "/api/products",
        "/api/products/batch",
        "/api/cart",
        "/api/cart/add",
        "/api/cart/items",
    ];
    if let Some(known) = EXACT.iter().find(|t| **t == path) {
        return Some(known);
    }
    let one_segment_under =
        |prefix: &str| path.strip_prefix(prefix).is_some_and(|rest| !rest.is_empty() && !rest.contains('/'));
    if one_segment_under("/api/products/") {
        Some("/api/products/{id}")
    } else if one_segment_under("/api/cart/items/") {
        Some("/api/cart/items/{productId}")
    } else {
        None
    }
}

pub fn resolve(method: &Method, path: &str) -> Option<Route> {
    let under = |prefix: &str| path == prefix || path.starts_with(&format!("{prefix}/"));
    let idempotent =
        method == Method::POST && ["/api/users/register", "/api/products", "/api/cart/add"].contains(&path);
    let route = |service, access| Some(Route { service, access, effect: Effect::None, idempotent });
    if under("/api/users/validate-token") {
        return None;
    }
    if under("/api/users") {
        let user = |effect| Some(Route { service: Service::Users, access: Access::User, effect, idempotent: false });
        return match path {
            "/api/users/logout" => user(Effect::Logout),
            "/api/users/profile" if method == Method::PUT => user(Effect::CredentialsChange),
            "/api/users/profile" => route(Service::Users, Access::User),
            // register, login, and unknown paths (the service answers 404)
            _ => route(Service::Users, Access::Public),
        };
    }
    if under("/api/products") {
        // Only the writes need a caller; any other method meets the service's 405.
        let write = [Method::POST, Method::PUT, Method::DELETE].contains(method) && path != "/api/products/batch";
        return route(Service::Products, if write { Access::User } else { Access::Public });
    }
    if under("/api/cart") {
        return route(Service::Carts, Access::User);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        let r = |m: Method, p: &str| resolve(&m, p).map(|r| (r.service, r.access));
        assert_eq!(r(Method::POST, "/api/users/login"), Some((Service::Users, Access::Public)));
        assert_eq!(r(Method::GET, "/api/users/profile"), Some((Service::Users, Access::User)));
        assert_eq!(r(Method::GET, "/api/users/validate-token"), None);
        assert_eq!(r(Method::GET, "/api/products/x"), Some((Service::Products, Access::Public)));
        assert_eq!(r(Method::POST, "/api/products/batch"), Some((Service::Products, Access::Public)));
        assert_eq!(r(Method::POST, "/api/products"), Some((Service::Products, Access::User)));
        assert_eq!(r(Method::DELETE, "/api/products/x"), Some((Service::Products, Access::User)));
        assert_eq!(r(Method::PATCH, "/api/products/x"), Some((Service::Products, Access::Public)));
        assert_eq!(r(Method::GET, "/api/cart"), Some((Service::Carts, Access::User)));
        assert_eq!(r(Method::GET, "/api/cartx"), None);
        assert_eq!(r(Method::GET, "/nope"), None);
        assert_eq!(template("/api/products/0193"), Some("/api/products/{id}"));
        assert_eq!(template("/api/products/batch"), Some("/api/products/batch"));
        assert_eq!(template("/api/cart/items/x"), Some("/api/cart/items/{productId}"));
        assert_eq!(template("/api/products/a/b"), None);
        assert_eq!(resolve(&Method::POST, "/api/users/logout").unwrap().effect, Effect::Logout);
        assert_eq!(resolve(&Method::PUT, "/api/users/profile").unwrap().effect, Effect::CredentialsChange);
        assert_eq!(resolve(&Method::GET, "/api/users/profile").unwrap().effect, Effect::None);
        let idempotent = |m: Method, p: &str| resolve(&m, p).unwrap().idempotent;
        assert!(idempotent(Method::POST, "/api/users/register"));
        assert!(idempotent(Method::POST, "/api/products"));
        assert!(idempotent(Method::POST, "/api/cart/add"));
        assert!(!idempotent(Method::POST, "/api/products/batch"));
        assert!(!idempotent(Method::PUT, "/api/products/x"));
    }
}
