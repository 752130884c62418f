//! One handler per plain (non-stream) command. Each answers the request and says whether
//! the connection stays open; an `Err` closes it after logging `Failed to evaluate
//! request: <err>`.

use super::conn::{Conn, LeaveRequest, Outcome};
use serf_core::Member;
use serf_rpc::{
    AuthRequest, Body, Coordinate, CoordinateRequest, CoordinateResponse, EventRequest,
    ForceLeaveRequest, HandshakeRequest, JoinRequest, JoinResponse, KeyResponse,
    MembersFilteredRequest, MembersResponse, RespondRequest, StopRequest, TagsRequest,
};
use tracing::{info, warn};

/// A core member as the RPC reports it.
pub(super) fn rpc_member(m: &Member) -> serf_rpc::Member {
    serf_rpc::Member {
        name: m.name.clone(),
        addr: serf_wire::ip_to_bytes(&m.addr),
        port: m.port,
        tags: m.tags.clone(),
        status: m.status.as_str().to_string(),
        protocol: [m.vsn[0], m.vsn[1], m.vsn[2]],
        delegate: [m.vsn[3], m.vsn[4], m.vsn[5]],
    }
}

fn members_body(members: &[Member]) -> Vec<u8> {
    MembersResponse {
        members: members.iter().map(rpc_member).collect(),
    }
    .encode()
}

/// `handshake`: Go checks the version first, then whether one was already done.
pub(super) async fn handshake(c: &mut Conn<'_>, req: HandshakeRequest) -> Result<Outcome, String> {
    let err = if req.version != serf_rpc::VERSION {
        "Unsupported IPC version"
    } else if c.st.handshake {
        "Handshake already performed"
    } else {
        c.st.handshake = true;
        ""
    };
    c.reply(err, None).await?;
    Ok(Outcome::Continue)
}

/// `auth`: a plain comparison with `rpc_auth`.
pub(super) async fn auth(c: &mut Conn<'_>, req: AuthRequest) -> Result<Outcome, String> {
    let err = if req.auth_key == c.ctl.auth {
        c.st.authed = true;
        ""
    } else {
        "Invalid authentication token"
    };
    c.reply(err, None).await?;
    Ok(Outcome::Continue)
}

/// `members`.
pub(super) async fn members(c: &mut Conn<'_>) -> Result<Outcome, String> {
    let body = members_body(&c.ctl.agent.members());
    c.reply("", Some(body)).await?;
    Ok(Outcome::Continue)
}

/// `members-filtered`: an invalid expression closes the connection without an answer.
pub(super) async fn members_filtered(
    c: &mut Conn<'_>,
    req: MembersFilteredRequest,
) -> Result<Outcome, String> {
    let members = filter_members(c.ctl.agent.members(), &req.name, &req.status, &req.tags)?;
    c.reply("", Some(members_body(&members))).await?;
    Ok(Outcome::Continue)
}

/// `members-filtered`: Go anchors every expression as `^expr$`.
pub(crate) fn filter_members(
    members: Vec<Member>,
    name: &str,
    status: &str,
    tags: &[(String, String)],
) -> Result<Vec<Member>, String> {
    let re = |e: &str| serf_gocompat::regex::compile(&format!("^{e}$")).map_err(|e| e.to_string());
    let name_re = if name.is_empty() {
        None
    } else {
        Some(re(name)?)
    };
    let status_re = if status.is_empty() {
        None
    } else {
        Some(re(status)?)
    };
    let tag_res: Vec<(String, regex::Regex)> = tags
        .iter()
        .map(|(k, v)| Ok((k.clone(), re(v)?)))
        .collect::<Result<_, String>>()?;
    Ok(members
        .into_iter()
        .filter(|m| {
            name_re.as_ref().is_none_or(|r| r.is_match(&m.name))
                && status_re
                    .as_ref()
                    .is_none_or(|r| r.is_match(m.status.as_str()))
                && tag_res.iter().all(|(k, r)| {
                    let v = m
                        .tags
                        .iter()
                        .find(|(tk, _)| tk == k)
                        .map_or("", |(_, v)| v.as_str());
                    r.is_match(v)
                })
        })
        .collect())
}

/// `join`: the count of nodes contacted is sent also with an error.
pub(super) async fn join(c: &mut Conn<'_>, req: JoinRequest) -> Result<Outcome, String> {
    let (num, err) = match crate::shared::join_logged(&c.ctl.agent, &req.existing, req.replay).await
    {
        Ok(n) => (n, String::new()),
        Err((n, e)) => (n, e),
    };
    let body = JoinResponse {
        num: i64::try_from(num).unwrap_or(i64::MAX),
    }
    .encode();
    c.reply(&err, Some(body)).await?;
    Ok(Outcome::Continue)
}

/// `leave`: as Go, leave first, answer with its outcome, then shut down.
pub(super) async fn leave(c: &mut Conn<'_>) -> Result<Outcome, String> {
    info!("Graceful leave triggered");
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    let (replied_tx, replied_rx) = tokio::sync::oneshot::channel();
    let req = LeaveRequest {
        done: done_tx,
        replied: replied_rx,
    };
    if c.ctl.leave.send(req).await.is_err() {
        c.reply("agent is shutting down", None).await?;
        return Ok(Outcome::Close);
    }
    let err = match done_rx.await {
        Ok(Ok(())) => String::new(),
        Ok(Err(e)) => {
            tracing::error!("leave failed: {e}");
            e
        }
        Err(_) => "agent is shutting down".to_string(),
    };
    let sent = c.reply(&err, None).await;
    let _ = replied_tx.send(());
    sent?;
    Ok(Outcome::Continue)
}

/// `event`: a user event.
pub(super) async fn event(c: &mut Conn<'_>, req: EventRequest) -> Result<Outcome, String> {
    let name = req.name;
    let payload = req.payload.unwrap_or_default();
    let coalesce = req.coalesce;
    tracing::debug!(
        target: "serf::agent",
        "Requesting user event send: {name}. Coalesced: {coalesce}. Payload: {}",
        crate::gofmt::quote(&payload)
    );
    let err = match c.ctl.agent.user_event(&name, &payload, coalesce) {
        Ok(()) => String::new(),
        Err(e) => {
            warn!(target: "serf::agent", "failed to send user event: {e}");
            e.to_string()
        }
    };
    c.reply(&err, None).await?;
    Ok(Outcome::Continue)
}

/// `force-leave`.
pub(super) async fn force_leave(
    c: &mut Conn<'_>,
    req: ForceLeaveRequest,
) -> Result<Outcome, String> {
    let node = req.node;
    if req.prune {
        info!(target: "serf::agent", "Force leaving node (prune): {node}");
    } else {
        info!(target: "serf::agent", "Force leaving node: {node}");
    }
    c.ctl.agent.force_leave(&node, req.prune);
    c.reply("", None).await?;
    Ok(Outcome::Continue)
}

/// `tags`: deletions first, then additions (in place for existing keys).
pub(super) async fn tags(c: &mut Conn<'_>, req: TagsRequest) -> Result<Outcome, String> {
    let delete = req.delete_tags.unwrap_or_default();
    let mut tags = c.ctl.agent.tags();
    tags.retain(|(k, _)| !delete.contains(k));
    for (k, v) in req.tags {
        match tags.iter_mut().find(|(tk, _)| *tk == k) {
            Some(t) => t.1 = v,
            None => tags.push((k, v)),
        }
    }
    let err = c
        .ctl
        .agent
        .set_tags(tags)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    c.reply(&err, None).await?;
    Ok(Outcome::Continue)
}

/// `stop`: ends a stream or the monitor of this connection; always succeeds.
pub(super) async fn stop(c: &mut Conn<'_>, req: StopRequest) -> Result<Outcome, String> {
    if let Some(h) = c.st.streams.remove(&req.stop) {
        h.abort();
    }
    if c.st.monitor.as_ref().is_some_and(|(s, _)| *s == req.stop) {
        if let Some((_, h)) = c.st.monitor.take() {
            h.abort();
        }
    }
    c.reply("", None).await?;
    Ok(Outcome::Continue)
}

/// `respond`: answers a query this connection's streams delivered.
pub(super) async fn respond(c: &mut Conn<'_>, req: RespondRequest) -> Result<Outcome, String> {
    let found = {
        let mut ids = match c.st.queries.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let now = std::time::Instant::now();
        ids.by_id.retain(|_, (_, _, deadline)| *deadline >= now);
        ids.by_id.get(&req.id).map(|(l, q, _)| (*l, *q))
    };
    let err = match found {
        None => "No pending queries matching ID".to_string(),
        Some((ltime, qid)) => c
            .ctl
            .agent
            .respond(ltime, qid, req.payload)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default(),
    };
    c.reply(&err, None).await?;
    Ok(Outcome::Continue)
}

/// `install-key`, `use-key`, `remove-key` and `list-keys`.
pub(super) async fn key_op(
    c: &mut Conn<'_>,
    kind: serf_core::KeyOpKind,
    key: &str,
) -> Result<Outcome, String> {
    use serf_core::KeyOpKind;
    info!(
        target: "serf::agent",
        "{}",
        match kind {
            KeyOpKind::Install => "Initiating key installation",
            KeyOpKind::Use => "Initiating primary key change",
            KeyOpKind::Remove => "Initiating key removal",
            KeyOpKind::List => "Initiating key listing",
        }
    );
    let res = c.ctl.agent.key_op(kind, key).await;
    let count = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
    let keys = (kind == KeyOpKind::List
        && res
            .error
            .as_deref()
            .is_none_or(|e| !e.starts_with("illegal")))
    .then(|| {
        let mut keys: Vec<(String, i64)> = res
            .keys
            .iter()
            .map(|(k, n)| (k.clone(), count(*n)))
            .collect();
        keys.sort();
        keys
    });
    let body = KeyResponse {
        keys,
        messages: res.messages.clone(),
        num_err: count(res.num_err),
        num_nodes: count(res.num_nodes),
        num_resp: count(res.num_resp),
    }
    .encode();
    c.reply(res.error.as_deref().unwrap_or(""), Some(body))
        .await?;
    Ok(Outcome::Continue)
}

/// `get-coordinate`.
pub(super) async fn get_coordinate(
    c: &mut Conn<'_>,
    req: CoordinateRequest,
) -> Result<Outcome, String> {
    let coord = c
        .ctl
        .agent
        .with_core(|core| core.state().coordinate(&req.node));
    let body = CoordinateResponse {
        coord: coord.map(|c| Coordinate {
            vec: c.vec.clone(),
            error: c.error,
            adjustment: c.adjustment,
            height: c.height,
        }),
    }
    .encode();
    c.reply("", Some(body)).await?;
    Ok(Outcome::Continue)
}

/// `stats`.
pub(super) async fn stats(c: &mut Conn<'_>) -> Result<Outcome, String> {
    let body = super::stats::stats_body(c.ctl);
    c.reply("", Some(body)).await?;
    Ok(Outcome::Continue)
}
