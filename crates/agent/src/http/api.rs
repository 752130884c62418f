//! The JSON answers of the HTTP API.

use super::{error, json, Body, HttpCtx};
use hyper::{Response, StatusCode};
use serde_json::{json, Map, Value};
use serf_core::Member;
use sha2::Digest as _;
use std::sync::atomic::Ordering;

/// A member as `serf members -format=json` shows it.
pub(crate) fn member_json(m: &Member) -> Value {
    let tags: Map<String, Value> = m
        .tags
        .iter()
        .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
        .collect();
    json!({
        "name": m.name,
        "addr": std::net::SocketAddr::new(m.addr, m.port).to_string(),
        "port": m.port,
        "tags": tags,
        "status": m.status.as_str(),
        "protocol": {"min": m.vsn[0], "max": m.vsn[1], "version": m.vsn[2]},
    })
}

/// `GET /v1/members`: `status`, `name` and `tag=k=v` filters as `members-filtered`.
pub(super) fn members(ctx: &HttpCtx, query: &[(String, String)]) -> Response<Body> {
    let mut name = String::new();
    let mut status = String::new();
    let mut tags = Vec::new();
    for (k, v) in query {
        match k.as_str() {
            "name" => name.clone_from(v),
            "status" => status.clone_from(v),
            "tag" => match v.split_once('=') {
                Some((tk, tv)) => tags.push((tk.to_string(), tv.to_string())),
                None => return error(StatusCode::BAD_REQUEST, "tag filter must be tag=key=regexp"),
            },
            "token" => {}
            other => {
                return error(
                    StatusCode::BAD_REQUEST,
                    &format!("unknown parameter {other:?} (name, status, tag)"),
                )
            }
        }
    }
    match crate::rpc::filter_members(ctx.agent.members(), &name, &status, &tags) {
        Ok(list) => json(
            StatusCode::OK,
            &json!({ "members": list.iter().map(member_json).collect::<Vec<_>>() }),
        ),
        Err(e) => error(StatusCode::BAD_REQUEST, &format!("bad filter: {e}")),
    }
}

/// `GET /v1/members/<name>`.
pub(super) fn member(ctx: &HttpCtx, name: &str) -> Response<Body> {
    match ctx.agent.members().iter().find(|m| m.name == name) {
        Some(m) => json(StatusCode::OK, &member_json(m)),
        None => error(StatusCode::NOT_FOUND, "no such member"),
    }
}

/// `GET /v1/coordinates`: every node whose coordinate is known.
pub(super) fn coordinates(ctx: &HttpCtx) -> Response<Body> {
    let names: Vec<String> = ctx.agent.members().into_iter().map(|m| m.name).collect();
    let map: Map<String, Value> = ctx.agent.with_core(|c| {
        names
            .iter()
            .filter_map(|n| {
                c.state().coordinate(n).map(|co| {
                    (
                        n.clone(),
                        json!({
                            "vec": co.vec,
                            "error": co.error,
                            "adjustment": co.adjustment,
                            "height": co.height,
                        }),
                    )
                })
            })
            .collect()
    });
    json(StatusCode::OK, &Value::Object(map))
}

/// `GET /v1/info`: the sections of `serf info`.
pub(super) fn info(ctx: &HttpCtx) -> Response<Body> {
    let sections = crate::rpc::stats_sections(&ctx.agent, &ctx.handlers);
    let map: Map<String, Value> = sections
        .into_iter()
        .map(|(name, kv)| {
            let inner: Map<String, Value> =
                kv.into_iter().map(|(k, v)| (k, Value::from(v))).collect();
            (name.to_string(), Value::Object(inner))
        })
        .collect();
    json(StatusCode::OK, &Value::Object(map))
}

/// A key's fingerprint: the first 8 bytes of its SHA-256, in hex (never the key).
pub(crate) fn fingerprint(key: &[u8]) -> String {
    sha2::Sha256::digest(key)[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `GET /v1/keys`: this agent's keyring, as fingerprints; the primary key first.
pub(super) fn keys(ctx: &HttpCtx) -> Response<Body> {
    let (primary, all) = ctx.agent.with_core(|c| {
        let ring = c.keyring();
        (
            ring.primary().map(|k| fingerprint(k.as_bytes())),
            ring.keys()
                .iter()
                .map(|k| fingerprint(k.as_bytes()))
                .collect::<Vec<_>>(),
        )
    });
    json(
        StatusCode::OK,
        &json!({"encrypted": primary.is_some(), "primary": primary, "keys": all}),
    )
}

/// `GET /v1/health`.
pub(super) fn health(ctx: &HttpCtx) -> Response<Body> {
    let joined = ctx.joined.load(Ordering::Relaxed);
    let members = ctx.agent.members();
    let alive = members
        .iter()
        .filter(|m| m.status == serf_core::MemberStatus::Alive)
        .count();
    let body = json!({
        "status": if joined { "ok" } else { "joining" },
        "name": ctx.agent.name(),
        "members": members.len(),
        "alive": alive,
        "health_score": ctx.agent.with_core(|c| c.memberlist().health()),
    });
    json(
        if joined {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        },
        &body,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_do_not_show_the_key() {
        let key = [7u8; 32];
        let fp = fingerprint(&key);
        assert_eq!(fp.len(), 16);
        assert!(!fp.contains("0707"));
        assert_eq!(fp, fingerprint(&key));
        assert_ne!(fp, fingerprint(&[8u8; 32]));
    }
}
