//! Field-level validation shared by the services: a failed check names the field.

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

/// Collects every problem of one input, so the client sees them all at once.
#[derive(Debug, Default)]
pub struct Problems(Vec<FieldError>);

impl Problems {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, field: &str, message: impl Into<String>) {
        self.0.push(FieldError { field: field.into(), message: message.into() });
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Records the error of `result`, if any, and passes its value on.
    pub fn check<T>(&mut self, field: &str, result: Result<T, String>) -> Option<T> {
        result.map_err(|m| self.add(field, m)).ok()
    }

    /// `Ok(value)` when nothing was recorded.
    pub fn finish<T>(self, value: impl FnOnce() -> T) -> Result<T, Vec<FieldError>> {
        if self.0.is_empty() { Ok(value()) } else { Err(self.0) }
    }

    pub fn into_result(self) -> Result<(), Vec<FieldError>> {
        self.finish(|| ())
    }
}

/// Trims and checks the length in characters.
pub fn text(value: &str, min: usize, max: usize) -> Result<String, String> {
    let value = value.trim();
    let len = value.chars().count();
    if len < min {
        return Err(if min == 1 { "must not be empty".into() } else { format!("must be at least {min} characters") });
    }
    if len > max {
        return Err(format!("must be at most {max} characters"));
    }
    Ok(value.to_string())
}
