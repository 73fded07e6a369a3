//! The JSON body extractor: every way a body can be wrong becomes an `ApiError`
//! in the common shape (malformed → `MALFORMED_JSON`, wrong field types →
//! `VALIDATION` naming the field, too large → 413).

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header;
use serde::de::DeserializeOwned;

use super::ApiError;
use crate::kernel::validation::FieldError;

pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        if let Some(ct) = req.headers().get(header::CONTENT_TYPE) {
            let ct = ct.to_str().unwrap_or_default().to_ascii_lowercase();
            let essence = ct.split(';').next().unwrap_or_default().trim();
            if !(essence == "application/json" || essence.ends_with("+json")) {
                return Err(ApiError::UnsupportedMediaType);
            }
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge
            } else {
                ApiError::MalformedJson("the body could not be read".into())
            }
        })?;
        parse(&bytes).map(JsonBody)
    }
}

pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::MalformedJson("the body is empty".into()));
    }
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| ApiError::MalformedJson(clean(&e)))?;
    if !value.is_object() {
        return Err(ApiError::Validation(vec![FieldError {
            field: "body".into(),
            message: "must be a JSON object".into(),
        }]));
    }
    serde_path_to_error::deserialize(value).map_err(|e| {
        let field = e.path().to_string();
        ApiError::Validation(vec![FieldError { field, message: clean(e.inner()) }])
    })
}

/// serde's message without its " at line 1 column 9" suffix.
fn clean(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct Body {
        name: Option<String>,
        quantity: Option<u32>,
    }

    #[test]
    fn classifies_errors() {
        assert!(matches!(parse::<Body>(b"{"), Err(ApiError::MalformedJson(_))));
        assert!(matches!(parse::<Body>(b""), Err(ApiError::MalformedJson(_))));
        assert!(matches!(parse::<Body>(b"{} x"), Err(ApiError::MalformedJson(_))));
        match parse::<Body>(br#"{"quantity": "3"}"#) {
            Err(ApiError::Validation(d)) => assert_eq!(d[0].field, "quantity"),
            other => panic!("{other:?}"),
        }
        match parse::<Body>(b"[1]") {
            Err(ApiError::Validation(d)) => assert_eq!(d[0].field, "body"),
            other => panic!("{other:?}"),
        }
        assert!(parse::<Body>(br#"{"name": "x", "extra": true}"#).is_ok());
    }
}
