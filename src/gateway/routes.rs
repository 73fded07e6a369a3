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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub service: Service,
    pub access: Access,
    /// A successful logout: the gateway forgets the token at once.
    pub is_logout: bool,
}

pub fn resolve(method: &Method, path: &str) -> Option<Route> {
    let under = |prefix: &str| path == prefix || path.starts_with(&format!("{prefix}/"));
    let route = |service, access| Some(Route { service, access, is_logout: false });
    if under("/api/users/validate-token") {
        return None;
    }
    if under("/api/users") {
        return match path {
            "/api/users/logout" => Some(Route { service: Service::Users, access: Access::User, is_logout: true }),
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
        assert!(resolve(&Method::POST, "/api/users/logout").unwrap().is_logout);
    }
}
