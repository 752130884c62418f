//! The read-only HTTP API (`-http-addr`, config `http_addr`; off by default): Prometheus
//! metrics, the members, coordinates, agent info, key fingerprints, health, a live event
//! stream (Server-Sent Events) and a self-contained web view. Nothing here changes the
//! agent; write operations stay on the RPC.
//!
//! | path | answer |
//! |---|---|
//! | `GET /` | the web view (one page, no external resources) |
//! | `GET /v1/members?status=&name=&tag=k=v` | members, filtered as RPC `members-filtered` (anchored regular expressions) |
//! | `GET /v1/members/<name>` | one member, 404 if unknown |
//! | `GET /v1/coordinates` | node → Vivaldi coordinate |
//! | `GET /v1/info` | what `serf info` shows |
//! | `GET /v1/keys` | fingerprints of the keyring's keys (never the keys) |
//! | `GET /v1/health` | 200 when running and joined (or told not to join), else 503 |
//! | `GET /v1/events?type=member-join,user` | Server-Sent Events, one JSON object each |
//! | `GET /metrics` | Prometheus text format |
//!
//! Limits, so that a bad client never holds up gossip or the RPC (they run on their own
//! tasks anyway): at most [`MAX_CONNECTIONS`] connections (beyond, new ones are closed), a
//! request head must arrive within [`HEAD_TIMEOUT`] and fit in [`MAX_HEAD`] bytes (else
//! 431), request bodies are not read, unknown paths get 404, other methods 405, bad filter
//! expressions 400. A non-loopback address needs `rpc_auth`, which then is required as
//! `Authorization: Bearer <token>` or `?token=<token>` (for the browser's event stream).

mod api;
mod events;

use crate::coalesce::CoalescedEvent;
use crate::handlers::Handlers;
use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt as _, Full};
use hyper::{Request, Response, StatusCode};
use serf_runtime::Agent;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{broadcast, Semaphore};

/// Most connections served at once.
pub(crate) const MAX_CONNECTIONS: usize = 2048;
/// Time allowed for a request head.
pub(crate) const HEAD_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest request head.
pub(crate) const MAX_HEAD: usize = 16 * 1024;

type Body = BoxBody<Bytes, std::convert::Infallible>;

/// What the handlers read.
#[derive(Debug, Clone)]
pub(crate) struct HttpCtx {
    /// The agent.
    pub agent: Agent,
    /// The handlers (for `info`).
    pub handlers: Arc<Handlers>,
    /// Coalesced events, as the RPC `stream` gets them.
    pub events: broadcast::Sender<CoalescedEvent>,
    /// Required token, if any.
    pub token: Option<String>,
    /// Set once the agent has joined, or from the start when it was told not to join.
    pub joined: Arc<AtomicBool>,
}

/// Why `-http-addr` is refused.
pub(crate) fn check_addr(addr: &SocketAddr, token: Option<&str>) -> Result<(), String> {
    if addr.ip().is_loopback() || token.is_some_and(|t| !t.is_empty()) {
        Ok(())
    } else {
        Err(format!(
            "Refusing to serve HTTP on {addr}: not a loopback address and no rpc_auth token \
             is set (the API shows the cluster's members and events)"
        ))
    }
}

/// Serves HTTP on `listener` until the agent stops.
pub(crate) async fn serve(listener: TcpListener, ctx: HttpCtx) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let (sock, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!("http: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
            () = ctx.agent.stopped() => return,
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            tracing::warn!("http: too many connections, closing {peer}");
            continue;
        };
        let _ = sock.set_nodelay(true);
        let ctx = ctx.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let ctx = ctx.clone();
                async move { Ok::<_, std::convert::Infallible>(route(&ctx, req).await) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(HEAD_TIMEOUT)
                .max_buf_size(MAX_HEAD)
                .serve_connection(hyper_util::rt::TokioIo::new(sock), service);
            if let Err(e) = conn.await {
                tracing::debug!("http: {peer}: {e}");
            }
            drop(permit);
        });
    }
}

fn full(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Response<Body> {
    let mut r = Response::new(Full::new(body.into()).boxed());
    *r.status_mut() = status;
    if let Ok(v) = hyper::header::HeaderValue::from_str(content_type) {
        r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    r.headers_mut().insert(
        hyper::header::CACHE_CONTROL,
        hyper::header::HeaderValue::from_static("no-store"),
    );
    r
}

/// A JSON answer.
pub(crate) fn json(status: StatusCode, v: &serde_json::Value) -> Response<Body> {
    let mut text = v.to_string();
    text.push('\n');
    full(status, "application/json", text)
}

/// An error answer: `{"error": "..."}`.
pub(crate) fn error(status: StatusCode, msg: &str) -> Response<Body> {
    json(status, &serde_json::json!({ "error": msg }))
}

/// The query parameters (decoded; repeated keys kept in order).
pub(crate) fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    query.map(url_decode_pairs).unwrap_or_default()
}

fn url_decode_pairs(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

/// `application/x-www-form-urlencoded` decoding (`+` is a space); invalid escapes stay.
pub(crate) fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hex = |c: u8| (c as char).to_digit(16);
                match (hex(b[i + 1]), hex(b[i + 2])) {
                    (Some(h), Some(l)) => {
                        out.push((h * 16 + l) as u8);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn authorized(ctx: &HttpCtx, req: &Request<hyper::body::Incoming>) -> bool {
    let Some(token) = ctx.token.as_deref().filter(|t| !t.is_empty()) else {
        return true;
    };
    let bearer = req
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if bearer == Some(token) {
        return true;
    }
    query_pairs(req.uri().query())
        .iter()
        .any(|(k, v)| k == "token" && v == token)
}

async fn route(ctx: &HttpCtx, req: Request<hyper::body::Incoming>) -> Response<Body> {
    if req.method() != hyper::Method::GET && req.method() != hyper::Method::HEAD {
        return error(StatusCode::METHOD_NOT_ALLOWED, "read-only API: GET only");
    }
    if !authorized(ctx, &req) {
        return error(StatusCode::UNAUTHORIZED, "missing or wrong token");
    }
    let path = req.uri().path().to_string();
    let query = query_pairs(req.uri().query());
    match path.as_str() {
        "/" | "/index.html" => full(
            StatusCode::OK,
            "text/html; charset=utf-8",
            include_str!("view.html"),
        ),
        "/v1/members" => api::members(ctx, &query),
        "/v1/coordinates" => api::coordinates(ctx),
        "/v1/info" => api::info(ctx),
        "/v1/keys" => api::keys(ctx),
        "/v1/health" => api::health(ctx),
        "/v1/events" => events::stream(ctx, &query),
        "/metrics" => full(
            StatusCode::OK,
            "text/plain; version=0.0.4; charset=utf-8",
            crate::telemetry::prometheus_text(&ctx.agent),
        ),
        p => match p.strip_prefix("/v1/members/") {
            Some(name) if !name.is_empty() => api::member(ctx, &percent_decode(name)),
            _ => error(StatusCode::NOT_FOUND, "no such path"),
        },
    }
}

/// Marks the agent as joined (for `/v1/health`).
pub(crate) fn mark_joined(flag: &AtomicBool) {
    flag.store(true, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_query_strings() {
        assert_eq!(
            url_decode_pairs("name=web%2D1&tag=role%3Ddb&x&status=a+b&bad=%zz%4"),
            vec![
                ("name".into(), "web-1".into()),
                ("tag".into(), "role=db".into()),
                ("x".into(), "".into()),
                ("status".into(), "a b".into()),
                ("bad".into(), "%zz%4".into()),
            ]
        );
    }

    #[test]
    fn non_loopback_needs_a_token() {
        let lo: SocketAddr = "127.0.0.1:8500".parse().expect("addr");
        let any: SocketAddr = "0.0.0.0:8500".parse().expect("addr");
        assert!(check_addr(&lo, None).is_ok());
        assert!(check_addr(&any, None).is_err());
        assert!(check_addr(&any, Some("")).is_err());
        assert!(check_addr(&any, Some("t")).is_ok());
    }
}
