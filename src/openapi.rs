//! The OpenAPI document (`/openapi.json`), generated from the handlers'
//! annotations, and a human-readable page at `/docs` (Swagger UI, its assets
//! built into the binary so it works offline).
//!
//! The handlers document their own outcomes; `Conventions` writes in what the
//! gateway adds to every operation, so the document describes the API as it
//! is served: each 2xx wrapped in `{success, data}` (a listing adds `meta`),
//! the errors any request may meet (rate limit, a service down, bad bodies,
//! missing tokens), `Idempotency-Key` on the writes that honour it, and links
//! from a created product and a cart add to what follows them.

use axum::Router;
use utoipa::openapi::link::LinkBuilder;
use utoipa::openapi::path::{Operation, ParameterBuilder, ParameterIn};
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, Required, Schema};
use utoipa::{Modify, OpenApi};
use utoipa_swagger_ui::SwaggerUi;

use crate::kernel::validation::FieldError;
use crate::{carts, http, products, users};

#[derive(OpenApi)]
#[openapi(
    info(title = "Agora", description = "E-commerce backend: users, products and carts behind one gateway. \
        Every answer is `{success: true, data}` (lists add `meta`) or `{success: false, code, message, details?}`. \
        Every answer also carries `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset`."),
    paths(
        users::http::register, users::http::login, users::http::logout, users::http::profile,
        users::http::update_profile, users::http::validate_token,
        products::http::list, products::http::get_one, products::http::batch, products::http::create,
        products::http::update, products::http::delete,
        carts::http::view, carts::http::add, carts::http::set_quantity, carts::http::remove, carts::http::clear,
    ),
    components(schemas(http::error::ErrorBody, http::Meta, FieldError, products::http::SortParam)),
    modifiers(&BearerAuth, &Conventions),
    tags((name = "users"), (name = "products"), (name = "cart"), (name = "internal", description = "Not routed by the gateway"))
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build()),
        );
    }
}

/// The operations that honour `Idempotency-Key`.
const IDEMPOTENT: [&str; 3] = ["registerUser", "createProduct", "addToCart"];

struct Conventions;

impl Modify for Conventions {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (path, item) in openapi.paths.paths.iter_mut() {
            for op in [&mut item.get, &mut item.put, &mut item.post, &mut item.delete].into_iter().flatten() {
                envelope(op);
                common_errors(path, op);
                if op.operation_id.as_deref().is_some_and(|id| IDEMPOTENT.contains(&id)) {
                    idempotency(op);
                }
                links(op);
            }
        }
    }
}

/// Every 2xx JSON answer as `{success: true, data}` (plus `meta` for a listing).
fn envelope(op: &mut Operation) {
    let listing = op.operation_id.as_deref() == Some("listProducts");
    for (status, response) in op.responses.responses.iter_mut() {
        let RefOr::T(response) = response else { continue };
        if !status.starts_with('2') {
            continue;
        }
        for content in response.content.values_mut() {
            let RefOr::T(content) = content else { continue };
            let Some(data) = content.schema.take() else { continue };
            let success = ObjectBuilder::new().schema_type(Type::Boolean).enum_values(Some([true]));
            let mut wrapped = ObjectBuilder::new()
                .property("success", success)
                .required("success")
                .property("data", data)
                .required("data");
            if listing {
                wrapped = wrapped.property("meta", Ref::from_schema_name("Meta")).required("meta");
            }
            content.schema = Some(RefOr::T(Schema::Object(wrapped.build())));
        }
    }
}

/// An error answer in the common shape, listing the codes it may carry.
fn error(description: &str) -> Response {
    let content = ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).build();
    ResponseBuilder::new().description(description).content("application/json", content).build()
}

/// Adds `status` unless the handler documents it; otherwise adds the codes to its description.
fn add_error(op: &mut Operation, status: &str, codes: &str) {
    match op.responses.responses.get_mut(status) {
        Some(RefOr::T(existing)) if !existing.description.contains(codes) => {
            existing.description = format!("{}; {codes}", existing.description);
        }
        Some(_) => {}
        None => {
            op.responses.responses.insert(status.to_string(), RefOr::T(error(codes)));
        }
    }
}

/// The errors any request may meet at the gateway or in its service.
fn common_errors(path: &str, op: &mut Operation) {
    add_error(op, "429", "RATE_LIMITED (with Retry-After)");
    add_error(op, "503", "SERVICE_UNAVAILABLE");
    if op.request_body.is_some() {
        add_error(op, "400", "MALFORMED_JSON, VALIDATION");
        add_error(op, "408", "REQUEST_TIMEOUT");
        add_error(op, "413", "PAYLOAD_TOO_LARGE");
        add_error(op, "415", "UNSUPPORTED_MEDIA_TYPE");
    }
    let parameters = op.parameters.as_deref().unwrap_or_default();
    if parameters
        .iter()
        .any(|p| matches!(p, RefOr::T(p) if matches!(p.parameter_in, ParameterIn::Query | ParameterIn::Path)))
    {
        add_error(op, "400", "VALIDATION, BAD_REQUEST");
    }
    if op.security.as_ref().is_some_and(|s| !s.is_empty()) {
        add_error(op, "401", "UNAUTHORIZED");
    }
    if path.contains('{') {
        add_error(op, "404", "NOT_FOUND");
    }
}

/// The `Idempotency-Key` header and what it may answer.
fn idempotency(op: &mut Operation) {
    let schema = ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(1))
        .max_length(Some(255))
        .pattern(Some("^[!-~]+$"));
    let header = ParameterBuilder::new()
        .name("Idempotency-Key")
        .parameter_in(ParameterIn::Header)
        .required(Required::False)
        .description(Some(
            "Retries of this write with the same key and body within 24 h get the first answer again and change nothing.",
        ))
        .schema(Some(schema))
        .build();
    op.parameters.get_or_insert_with(Vec::new).push(RefOr::T(header));
    add_error(op, "400", "VALIDATION");
    add_error(op, "409", "REQUEST_IN_PROGRESS");
    add_error(op, "422", "IDEMPOTENCY_KEY_REUSED");
}

/// A link to another operation, and where in this exchange its id comes from.
type Next = (&'static str, Option<&'static str>);

/// What a client can do next with what an answer gave it.
fn links(op: &mut Operation) {
    const PRODUCT_ID: Option<&str> = Some("$response.body#/data/id");
    const LINE_ID: Option<&str> = Some("$request.body#/productId");
    let (status, next): (&str, &[Next]) = match op.operation_id.as_deref() {
        Some("createProduct") => {
            ("201", &[("getProduct", PRODUCT_ID), ("updateProduct", PRODUCT_ID), ("deleteProduct", PRODUCT_ID)])
        }
        Some("listProducts") => ("200", &[("getProduct", Some("$response.body#/data/0/id"))]),
        Some("addToCart") => ("200", &[("viewCart", None), ("setCartQuantity", LINE_ID), ("removeFromCart", LINE_ID)]),
        _ => return,
    };
    let Some(RefOr::T(response)) = op.responses.responses.get_mut(status) else { return };
    for (operation, id) in next {
        let mut link = LinkBuilder::new().operation_id(*operation);
        if let Some(id) = id {
            let param = if operation.contains("Cart") { "productId" } else { "id" };
            link = link.parameter(param, *id);
        }
        response.links.insert((*operation).to_string(), RefOr::T(link.build()));
    }
}

pub fn routes() -> Router {
    SwaggerUi::new("/docs").url("/openapi.json", ApiDoc::openapi()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_describes_what_is_served() {
        let doc = serde_json::to_value(ApiDoc::openapi()).unwrap();
        let op = |path: &str, method: &str| doc["paths"][path][method].clone();
        let create = op("/api/products", "post");
        let created = &create["responses"]["201"]["content"]["application/json"]["schema"];
        assert_eq!(created["required"], serde_json::json!(["success", "data"]), "{created}");
        assert!(create["responses"]["201"]["links"]["getProduct"]["parameters"]["id"].is_string());
        for status in ["400", "401", "409", "422", "429", "503"] {
            assert!(create["responses"][status].is_object(), "createProduct documents {status}");
        }
        assert!(create["parameters"].as_array().unwrap().iter().any(|p| p["name"] == "Idempotency-Key"));
        let list = op("/api/products", "get");
        assert!(list["responses"]["200"]["content"]["application/json"]["schema"]["properties"]["meta"].is_object());
        let limit = list["parameters"].as_array().unwrap().iter().find(|p| p["name"] == "limit").unwrap().clone();
        assert_eq!(
            (limit["schema"]["minimum"].clone(), limit["schema"]["maximum"].clone()),
            (serde_json::json!(1), serde_json::json!(100))
        );
        for (path, method) in [
            ("/api/cart", "get"),
            ("/api/cart/add", "post"),
            ("/api/users/profile", "put"),
            ("/api/products/{id}", "delete"),
        ] {
            assert!(op(path, method)["responses"]["401"].is_object(), "{method} {path} documents 401");
        }
        assert!(op("/api/users/login", "post")["responses"]["400"].is_object());
    }
}
