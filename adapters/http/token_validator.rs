//! The gateway's `TokenValidator` over the users service's token validation
//! (`contracts::service_api`).

use async_trait::async_trait;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};

use crate::contracts::service_api::{IdentityView, VALIDATE_TOKEN_PATH};
use crate::gateway::ports::{TokenError, TokenValidator};
use crate::http::upstream::Upstream;
use crate::kernel::identity::Identity;
use crate::ports::{PortError, Probe};

pub struct HttpTokenValidator {
    users: Upstream,
}

impl HttpTokenValidator {
    pub fn new(users: Upstream) -> Self {
        HttpTokenValidator { users }
    }
}

#[async_trait]
impl Probe for HttpTokenValidator {
    async fn ping(&self) -> Result<(), PortError> {
        self.users.ping().await
    }
}

#[async_trait]
impl TokenValidator for HttpTokenValidator {
    async fn validate(&self, token: &str) -> Result<Identity, TokenError> {
        let mut headers = HeaderMap::new();
        let value = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| TokenError::Invalid)?;
        headers.insert(header::AUTHORIZATION, value);
        let (status, body) =
            self.users.exchange(Method::GET, VALIDATE_TOKEN_PATH, headers, None).await.map_err(PortError::from)?;
        match status {
            StatusCode::OK => {
                let view: IdentityView = super::data(&body)
                    .map_err(|e| PortError::Unexpected(anyhow::anyhow!("users service answered oddly: {e}")))?;
                Ok(Identity::from(view))
            }
            StatusCode::UNAUTHORIZED => Err(TokenError::Invalid),
            other => Err(PortError::unavailable("users service", format!("validate-token answered {other}")).into()),
        }
    }
}
