//! Reading a request body within `BODY_LIMIT`. A larger body is still read on
//! and thrown away (up to `DRAIN`), so that a client still sending it reads
//! our 413 instead of meeting a closed socket; past that, the connection goes.
//! (tower-http's limit answers before reading, which is what clients then meet.)

use axum::body::{Body, Bytes};
use http_body_util::BodyExt;

use super::BODY_LIMIT;

/// How much of an oversized body is read and dropped before giving up on it.
const DRAIN: usize = 16 * BODY_LIMIT;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error("the body is larger than the limit")]
    TooLarge,
    #[error("the body could not be read")]
    Unreadable,
}

/// The whole body, when it is at most `BODY_LIMIT` bytes.
pub async fn read(mut body: Body) -> Result<Bytes, BodyError> {
    let mut buf: Vec<u8> = Vec::new();
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| BodyError::Unreadable)?;
        let Ok(data) = frame.into_data() else { continue };
        seen += data.len();
        if seen > BODY_LIMIT {
            buf = Vec::new();
            if seen > DRAIN {
                return Err(BodyError::TooLarge);
            }
        } else {
            buf.extend_from_slice(&data);
        }
    }
    if seen > BODY_LIMIT { Err(BodyError::TooLarge) } else { Ok(Bytes::from(buf)) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bodies_within_the_limit_are_read_and_larger_ones_refused() {
        assert_eq!(read(Body::from("hello")).await.unwrap(), Bytes::from("hello"));
        assert_eq!(read(Body::from(vec![b'x'; BODY_LIMIT])).await.unwrap().len(), BODY_LIMIT);
        assert_eq!(read(Body::from(vec![b'x'; BODY_LIMIT + 1])).await, Err(BodyError::TooLarge));
        assert_eq!(read(Body::from(vec![b'x'; DRAIN + 1])).await, Err(BodyError::TooLarge));
    }
}
