//! The success envelope: `{"success": true, "data": ...}`, lists add `meta`.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// 200 with `data`.
pub struct Data<T>(pub T);

/// 201 with `data`.
pub struct Created<T>(pub T);

/// 200 with `data` and paging `meta`.
pub struct Listing<T> {
    pub items: Vec<T>,
    pub meta: Meta,
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Meta {
    pub page: u32,
    pub limit: u32,
    pub total: u64,
    pub total_pages: u64,
}

impl Meta {
    pub fn new(page: u32, limit: u32, total: u64) -> Self {
        Meta { page, limit, total, total_pages: total.div_ceil(u64::from(limit.max(1))) }
    }
}

#[derive(Serialize)]
struct Envelope<'a, T> {
    success: bool,
    data: &'a T,
    #[serde(skip_serializing_if = "Option::is_none")]
    meta: Option<Meta>,
}

fn envelope<T: Serialize>(status: StatusCode, data: &T, meta: Option<Meta>) -> Response {
    (status, Json(Envelope { success: true, data, meta })).into_response()
}

impl<T: Serialize> IntoResponse for Data<T> {
    fn into_response(self) -> Response {
        envelope(StatusCode::OK, &self.0, None)
    }
}

impl<T: Serialize> IntoResponse for Created<T> {
    fn into_response(self) -> Response {
        envelope(StatusCode::CREATED, &self.0, None)
    }
}

impl<T: Serialize> IntoResponse for Listing<T> {
    fn into_response(self) -> Response {
        envelope(StatusCode::OK, &self.items, Some(self.meta))
    }
}
