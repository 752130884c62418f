//! `GET /v1/events`: the agent's (coalesced) member, user and query events as
//! Server-Sent Events, one JSON object per `data:` line, optionally filtered by type
//! (`?type=member-join,member-failed,user`, the names `serf agent` gives its handlers;
//! `member` for every member event). A client too slow for the stream loses events (it is
//! told with an `event: lagged` record) instead of holding the agent back.

use super::{error, Body, HttpCtx};
use crate::coalesce::CoalescedEvent;
use bytes::Bytes;
use http_body_util::{BodyExt as _, StreamBody};
use hyper::body::Frame;
use hyper::{Response, StatusCode};
use serde_json::{json, Value};
use serf_core::Event;
use tokio::sync::broadcast::error::RecvError;

const KNOWN: [&str; 8] = [
    "member-join",
    "member-leave",
    "member-failed",
    "member-update",
    "member-reap",
    "member",
    "user",
    "query",
];

/// The JSON of one event, or `None` for events the stream does not carry.
pub(crate) fn event_json(e: &CoalescedEvent) -> Option<Value> {
    Some(match e {
        CoalescedEvent::Members { kind, members } => json!({
            "type": kind.as_str(),
            "members": members.iter().map(super::api::member_json).collect::<Vec<_>>(),
        }),
        CoalescedEvent::Other(Event::User {
            ltime,
            name,
            payload,
            coalesce,
        }) => json!({
            "type": "user",
            "name": name,
            "ltime": ltime,
            "payload": String::from_utf8_lossy(payload),
            "coalesce": coalesce,
        }),
        CoalescedEvent::Other(Event::Query {
            ltime,
            name,
            payload,
            ..
        }) => json!({
            "type": "query",
            "name": name,
            "ltime": ltime,
            "payload": String::from_utf8_lossy(payload),
        }),
        CoalescedEvent::Other(_) => return None,
    })
}

fn wanted(types: &[String], v: &Value) -> bool {
    let t = v["type"].as_str().unwrap_or("");
    types.is_empty()
        || types
            .iter()
            .any(|w| w == t || (w == "member" && t.starts_with("member-")))
}

/// The stream.
pub(super) fn stream(ctx: &HttpCtx, query: &[(String, String)]) -> Response<Body> {
    let mut types = Vec::new();
    for (k, v) in query {
        match k.as_str() {
            "type" => {
                for t in v.split(',').filter(|t| !t.is_empty()) {
                    if !KNOWN.contains(&t) {
                        return error(
                            StatusCode::BAD_REQUEST,
                            &format!("unknown event type {t:?} ({})", KNOWN.join(", ")),
                        );
                    }
                    types.push(t.to_string());
                }
            }
            "token" => {}
            other => {
                return error(
                    StatusCode::BAD_REQUEST,
                    &format!("unknown parameter {other:?} (type)"),
                )
            }
        }
    }
    let rx = ctx.events.subscribe();
    let agent = ctx.agent.clone();
    // A comment first, so that the client sees the stream open at once.
    let first = Some(Bytes::from_static(b": serf events\n\n"));
    let s = futures_util::stream::unfold(
        (rx, types, agent, first),
        |(mut rx, types, agent, first)| async move {
            if let Some(b) = first {
                return Some((Ok(Frame::data(b)), (rx, types, agent, None)));
            }
            loop {
                let r = tokio::select! {
                    r = rx.recv() => r,
                    // Keep idle connections (and proxies) alive.
                    () = tokio::time::sleep(std::time::Duration::from_secs(15)) => {
                        return Some((Ok(Frame::data(Bytes::from_static(b": ping\n\n"))), (rx, types, agent, None)));
                    }
                    () = agent.stopped() => return None,
                };
                match r {
                    Ok(e) => {
                        if let Some(v) = event_json(&e).filter(|v| wanted(&types, v)) {
                            let text = format!("data: {v}\n\n");
                            return Some((
                                Ok(Frame::data(Bytes::from(text))),
                                (rx, types, agent, None),
                            ));
                        }
                    }
                    Err(RecvError::Lagged(n)) => {
                        let text = format!("event: lagged\ndata: {{\"lost\": {n}}}\n\n");
                        return Some((
                            Ok(Frame::data(Bytes::from(text))),
                            (rx, types, agent, None),
                        ));
                    }
                    Err(RecvError::Closed) => return None,
                }
            }
        },
    );
    let mut r = Response::new(StreamBody::new(s).boxed());
    let h = r.headers_mut();
    h.insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/event-stream"),
    );
    h.insert(
        hyper::header::CACHE_CONTROL,
        hyper::header::HeaderValue::from_static("no-store"),
    );
    r
}
