//! The OpenAPI document (`/openapi.json`), generated from the handlers'
//! annotations, and a human-readable page at `/docs` (Swagger UI, its assets
//! built into the binary so it works offline).

use axum::Router;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_swagger_ui::SwaggerUi;

use crate::kernel::validation::FieldError;
use crate::{carts, http, products, users};

#[derive(OpenApi)]
#[openapi(
    info(title = "Agora", description = "E-commerce backend: users, products and carts behind one gateway. \
        Every answer is `{success, data}` (lists add `meta`) or `{success: false, code, message, details?}`."),
    paths(
        users::http::register, users::http::login, users::http::logout, users::http::profile,
        users::http::update_profile, users::http::validate_token,
        products::http::list, products::http::get_one, products::http::batch, products::http::create,
        products::http::update, products::http::delete,
        carts::http::view, carts::http::add, carts::http::set_quantity, carts::http::remove, carts::http::clear,
    ),
    components(schemas(http::error::ErrorBody, http::Meta, FieldError)),
    modifiers(&BearerAuth),
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

pub fn routes() -> Router {
    SwaggerUi::new("/docs").url("/openapi.json", ApiDoc::openapi()).into()
}
