//! The JSON body extractor: every way a body can be wrong becomes an `ApiError`
//! in the common shape (malformed → `MALFORMED_JSON`, wrong field types →
//! `VALIDATION` naming the field, too large → 413). Bodies are read straight
//! from their bytes, so the number types here see each number as written:
//! `Amount` (money: at most two decimals, never through a float) and `Whole`
//! (a whole number, `5.0` included).

use axum::extract::{FromRequest, Request};
use axum::http::header;
use serde::de::{DeserializeOwned, Error as _, IgnoredAny};
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

use super::ApiError;
use crate::kernel::decimal::{Decimal, DecimalError};
use crate::kernel::money::Money;
use crate::kernel::validation::FieldError;

pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _: &S) -> Result<Self, ApiError> {
        if let Some(ct) = req.headers().get(header::CONTENT_TYPE) {
            let ct = ct.to_str().unwrap_or_default().to_ascii_lowercase();
            let essence = ct.split(';').next().unwrap_or_default().trim();
            if !(essence == "application/json" || essence.ends_with("+json")) {
                return Err(ApiError::UnsupportedMediaType);
            }
        }
        let bytes = super::body::read(req.into_body()).await?;
        parse(&bytes).map(JsonBody)
    }
}

pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::MalformedJson("the body is empty".into()));
    }
    // Well-formed first, so that a syntax error is told apart from a wrong field.
    serde_json::from_slice::<IgnoredAny>(bytes).map_err(|e| ApiError::MalformedJson(clean(&e)))?;
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(ApiError::Validation(vec![FieldError {
            field: "body".into(),
            message: "must be a JSON object".into(),
        }]));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
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

/// The text of a JSON number as written; a helpful error for anything else.
fn number_text<'de, D: Deserializer<'de>>(d: D) -> Result<Decimal, D::Error> {
    let raw: Box<RawValue> = Deserialize::deserialize(d)?;
    let text = raw.get();
    if !text.starts_with(|c: char| c == '-' || c.is_ascii_digit()) {
        return Err(D::Error::custom("must be a number"));
    }
    Decimal::parse(text).map_err(|_| D::Error::custom("must be a number"))
}

/// An amount of money in a request body: at most two decimals, not negative,
/// at most 1000000000, read exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Amount(pub Money);

impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw: Box<RawValue> = Deserialize::deserialize(d)?;
        let text = raw.get();
        if !text.starts_with(|c: char| c == '-' || c.is_ascii_digit()) {
            return Err(D::Error::custom("must be a number"));
        }
        Money::parse(text).map(Amount).map_err(D::Error::custom)
    }
}

/// A whole number in a request body (`5` or `5.0`; not `5.5`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Whole(pub i64);

impl<'de> Deserialize<'de> for Whole {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match number_text(d)?.scaled(0) {
            Ok(n) => Ok(Whole(n)),
            Err(DecimalError::TooLarge) => Err(D::Error::custom("is too large")),
            Err(_) => Err(D::Error::custom("must be a whole number")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct Body {
        name: Option<String>,
        quantity: Option<Whole>,
        price: Option<Amount>,
    }

    fn field_error(body: &[u8]) -> FieldError {
        match parse::<Body>(body) {
            Err(ApiError::Validation(d)) => d[0].clone(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn classifies_errors() {
        assert!(matches!(parse::<Body>(b"{"), Err(ApiError::MalformedJson(_))));
        assert!(matches!(parse::<Body>(b""), Err(ApiError::MalformedJson(_))));
        assert!(matches!(parse::<Body>(b"{} x"), Err(ApiError::MalformedJson(_))));
        assert_eq!(field_error(br#"{"quantity": "3"}"#).field, "quantity");
        assert_eq!(field_error(b"[1]").field, "body");
        assert_eq!(field_error(b" 12").field, "body");
        assert!(parse::<Body>(br#"{"name": "x", "extra": true}"#).is_ok());
    }

    #[test]
    fn numbers_are_read_exactly() {
        let body = parse::<Body>(br#"{"quantity": 5.0, "price": 19.99}"#).unwrap();
        assert_eq!(body.quantity, Some(Whole(5)));
        assert_eq!(body.price, Some(Amount(Money::from_cents(1999))));
        let e = field_error(br#"{"price": 19.9999999999999999}"#);
        assert_eq!((e.field.as_str(), e.message.as_str()), ("price", "must have at most two decimal places"));
        assert_eq!(field_error(br#"{"price": -1}"#).message, "must not be negative");
        assert_eq!(field_error(br#"{"price": "5"}"#).message, "must be a number");
        assert_eq!(field_error(br#"{"quantity": 2.5}"#).message, "must be a whole number");
        assert_eq!(field_error(br#"{"quantity": 1e400}"#).message, "is too large");
        assert!(!field_error(br#"{"quantity": "x"}"#).message.contains("i64"), "no Rust type names");
    }
}
