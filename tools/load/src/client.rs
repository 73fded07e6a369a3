//! HTTP plumbing: the target, one keep-alive connection per load task, and a pooled JSON
//! client for seeding.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE, HOST};
use http::{HeaderValue, Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::Value;
use tokio::net::TcpStream;

pub type Body = Full<Bytes>;

pub const RATE_LIMIT_HINT: &str = "the server answered 429 RATE_LIMITED: raise its rate limit for load tests, \
     e.g. AGORA_GATEWAY__RATE_LIMIT__REQUESTS=1000000000";

/// The parts of a base URL that matter: where to connect and what to prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseUrl {
    /// Host name or address, without IPv6 brackets.
    pub host: String,
    pub port: u16,
    /// `host[:port]` as written, for the Host header.
    pub authority: String,
    /// Path prefix without a trailing slash ("" for none).
    pub prefix: String,
}

/// Splits `http://host[:port][/prefix]`; only plain http is supported.
pub fn parse_base_url(url: &str) -> anyhow::Result<BaseUrl> {
    let uri: Uri = url.trim().parse().with_context(|| format!("`{url}` is not a URL"))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some(other) => bail!("`{url}`: only http:// is supported, not {other}://"),
        None => bail!("`{url}`: give a full URL such as http://127.0.0.1:3000"),
    }
    let authority = uri.authority().ok_or_else(|| anyhow!("`{url}` has no host"))?;
    if uri.query().is_some() {
        bail!("`{url}`: a base URL takes no query string");
    }
    Ok(BaseUrl {
        host: authority.host().trim_start_matches('[').trim_end_matches(']').to_string(),
        port: authority.port_u16().unwrap_or(80),
        authority: authority.as_str().to_string(),
        prefix: uri.path().trim_end_matches('/').to_string(),
    })
}

/// A resolved target: the socket address, the Host header and the path prefix.
#[derive(Debug)]
pub struct Target {
    pub addr: SocketAddr,
    pub host: HeaderValue,
    base: BaseUrl,
}

impl Target {
    pub async fn resolve(url: &str) -> anyhow::Result<Target> {
        let base = parse_base_url(url)?;
        let addr = tokio::net::lookup_host((base.host.as_str(), base.port))
            .await
            .with_context(|| format!("cannot resolve {}", base.host))?
            .next()
            .ok_or_else(|| anyhow!("{} resolves to no address", base.host))?;
        let host = HeaderValue::from_str(&base.authority).context("host header")?;
        Ok(Target { addr, host, base })
    }

    /// Origin-form URI (`/prefix/path`) for requests on a raw connection.
    pub fn path(&self, path: &str) -> anyhow::Result<Uri> {
        let full = format!("{}{}", self.base.prefix, path);
        full.parse().with_context(|| format!("bad path {full}"))
    }

    /// Absolute URI for the pooled client.
    fn absolute(&self, path: &str) -> anyhow::Result<Uri> {
        let full = format!("http://{}{}{}", self.base.authority, self.base.prefix, path);
        full.parse().with_context(|| format!("bad URL {full}"))
    }
}

/// One keep-alive HTTP/1.1 connection, opened on first use and again after any failure.
pub struct Conn {
    target: Arc<Target>,
    sender: Option<SendRequest<Body>>,
}

impl Conn {
    pub fn new(target: Arc<Target>) -> Conn {
        Conn { target, sender: None }
    }

    /// Sends one request and reads the whole answer. Any error or timeout drops the connection
    /// (its state is unknown), so the next request opens a fresh one.
    pub async fn send(&mut self, request: Request<Body>, timeout: Duration) -> Result<StatusCode, String> {
        let addr = self.target.addr;
        let slot = &mut self.sender;
        let exchange = async move {
            if slot.as_ref().is_some_and(|s| s.is_closed()) {
                *slot = None;
            }
            let sender = match slot {
                Some(sender) => sender,
                None => slot.insert(connect(addr).await?),
            };
            sender.ready().await.map_err(|e| format!("connection: {e}"))?;
            let response = sender.send_request(request).await.map_err(|e| format!("request: {e}"))?;
            let status = response.status();
            response.into_body().collect().await.map_err(|e| format!("body: {e}"))?;
            Ok(status)
        };
        let outcome = match tokio::time::timeout(timeout, exchange).await {
            Ok(result) => result,
            Err(_) => Err(format!("timed out after {timeout:?}")),
        };
        if outcome.is_err() {
            self.sender = None;
        }
        outcome
    }
}

async fn connect(addr: SocketAddr) -> Result<SendRequest<Body>, String> {
    let stream = TcpStream::connect(addr).await.map_err(|e| format!("connect {addr}: {e}"))?;
    stream.set_nodelay(true).map_err(|e| format!("nodelay: {e}"))?;
    let (sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(|e| format!("handshake: {e}"))?;
    tokio::spawn(async move {
        // Ends when the sender is dropped or the server closes; errors surface on the sender.
        let _ = connection.await;
    });
    Ok(sender)
}

/// A request with Host (and optionally a bearer token and a JSON body) set.
pub fn request(
    method: Method,
    uri: &Uri,
    host: &HeaderValue,
    auth: Option<&HeaderValue>,
    body: Bytes,
) -> Request<Body> {
    let json = !body.is_empty();
    let mut request = Request::new(Full::new(body));
    *request.method_mut() = method;
    *request.uri_mut() = uri.clone();
    let headers = request.headers_mut();
    headers.insert(HOST, host.clone());
    if let Some(auth) = auth {
        headers.insert(AUTHORIZATION, auth.clone());
    }
    if json {
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    }
    request
}

/// A JSON API client over a connection pool, for seeding.
#[derive(Clone)]
pub struct Api {
    client: Client<HttpConnector, Body>,
    target: Arc<Target>,
    timeout: Duration,
}

/// A parsed answer: status and JSON body (`Null` when the body is not JSON).
pub struct Answer {
    pub status: StatusCode,
    pub body: Value,
}

impl Answer {
    /// The envelope's `data` when the status is the expected one, else an error naming the call.
    pub fn data(self, expected: StatusCode, what: &str) -> anyhow::Result<Value> {
        if self.status == expected {
            return Ok(self.body.get("data").cloned().unwrap_or(Value::Null));
        }
        let code = self.body.get("code").and_then(Value::as_str).unwrap_or("-");
        let message = self.body.get("message").and_then(Value::as_str).unwrap_or("");
        let hint =
            if self.status == StatusCode::TOO_MANY_REQUESTS { format!(" ({RATE_LIMIT_HINT})") } else { String::new() };
        bail!("{what}: expected {expected}, got {} {code} {message}{hint}", self.status)
    }
}

impl Api {
    pub fn new(target: Arc<Target>, pool: usize, timeout: Duration) -> Api {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new()).pool_max_idle_per_host(pool).build(connector);
        Api { client, target, timeout }
    }

    /// Sends `body` (JSON text, or empty for none) and parses the answer.
    pub async fn call(&self, method: Method, path: &str, token: Option<&str>, body: Bytes) -> anyhow::Result<Answer> {
        let what = format!("{method} {path}");
        let uri = self.target.absolute(path)?;
        let auth = token.map(|t| HeaderValue::from_str(&format!("Bearer {t}"))).transpose().context("token")?;
        let request = request(method, &uri, &self.target.host, auth.as_ref(), body);
        let exchange = async {
            let response = self.client.request(request).await?;
            let status = response.status();
            let bytes = response.into_body().collect().await?.to_bytes();
            anyhow::Ok(Answer { status, body: serde_json::from_slice(&bytes).unwrap_or(Value::Null) })
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| anyhow!("{what}: no answer within {:?}", self.timeout))?
            .with_context(|| format!("{what} on {}", self.target.addr))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls() {
        let base = parse_base_url("http://127.0.0.1:3000").unwrap();
        assert_eq!(
            base,
            BaseUrl { host: "127.0.0.1".into(), port: 3000, authority: "127.0.0.1:3000".into(), prefix: String::new() }
        );
        let base = parse_base_url("http://localhost/agora/").unwrap();
        assert_eq!((base.host.as_str(), base.port, base.prefix.as_str()), ("localhost", 80, "/agora"));
        let base = parse_base_url("http://[::1]:8080/").unwrap();
        assert_eq!((base.host.as_str(), base.port, base.authority.as_str()), ("::1", 8080, "[::1]:8080"));
        assert!(parse_base_url("https://example.com").is_err());
        assert!(parse_base_url("127.0.0.1:3000").is_err());
        assert!(parse_base_url("http://127.0.0.1:3000/?x=1").is_err());
    }

    #[test]
    fn requests_carry_host_auth_and_json_type() {
        let uri: Uri = "/api/cart/add".parse().unwrap();
        let host = HeaderValue::from_static("127.0.0.1:3000");
        let auth = HeaderValue::from_static("Bearer t");
        let req = request(Method::POST, &uri, &host, Some(&auth), Bytes::from_static(b"{}"));
        assert_eq!(req.method(), Method::POST);
        assert_eq!(req.uri(), "/api/cart/add");
        assert_eq!(req.headers()[HOST], "127.0.0.1:3000");
        assert_eq!(req.headers()[AUTHORIZATION], "Bearer t");
        assert_eq!(req.headers()[CONTENT_TYPE], "application/json");
        let get = request(Method::GET, &uri, &host, None, Bytes::new());
        assert!(get.headers().get(CONTENT_TYPE).is_none());
        assert!(get.headers().get(AUTHORIZATION).is_none());
    }
}
