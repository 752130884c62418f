//! The commands that start streams: `stream` (events), `monitor` (log lines) and `query`
//! (acks and responses). Each answers the request, then spawns a task writing records
//! (response headers with the request's Seq, each followed by one body).

use super::commands::rpc_member;
use super::conn::{Conn, Outcome, QueryIds, Wr};
use crate::coalesce::CoalescedEvent;
use serf_rpc::{
    Body, LogRecord, MonitorRequest, QueryRecord, QueryRecordType, QueryRequest, ResponseHeader,
    StreamEvent, StreamRequest,
};
use serf_runtime::Agent;
use std::sync::Arc;
use tokio::io::AsyncWriteExt;
use tracing::warn;

/// Writes one record for `seq` (header and body in one write).
async fn write_record(wr: &Wr, seq: u64, record: &impl Body) -> Result<(), std::io::Error> {
    let mut out = ResponseHeader::new(seq, "").encode();
    out.extend_from_slice(&record.encode());
    wr.lock().await.write_all(&out).await
}

/// `stream`: coalesced events matching the filter, until `stop` or the connection ends.
pub(super) async fn stream(c: &mut Conn<'_>, req: StreamRequest) -> Result<Outcome, String> {
    let filters = crate::handlers::EventFilter::parse_list(&req.filter);
    if filters.iter().any(|f| !f.is_valid()) {
        c.reply("Invalid event filter", None).await?;
        return Ok(Outcome::Continue);
    }
    let seq = c.seq;
    if c.st.streams.contains_key(&seq) {
        c.reply("Stream with given sequence exists", None).await?;
        return Ok(Outcome::Continue);
    }
    let mut rx = c.ctl.events.subscribe();
    c.reply("", None).await?;
    let wr = c.wr.clone();
    let ids = c.st.queries.clone();
    let agent = c.ctl.agent.clone();
    let task = tokio::spawn(async move {
        loop {
            let ev = match rx.recv().await {
                Ok(ev) => ev,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    warn!("Dropping {n} events to a slow stream client");
                    continue;
                }
                Err(_) => return,
            };
            if !filters.iter().any(|f| f.matches(&ev)) {
                continue;
            }
            let Some(record) = stream_record(&ev, &ids, &agent) else {
                continue;
            };
            if let Err(e) = write_record(&wr, seq, &record).await {
                warn!("Failed to stream event: {e}");
                return;
            }
        }
    });
    c.st.streams.insert(seq, task);
    Ok(Outcome::Continue)
}

/// One `stream` record, or `None` for events streams do not carry. A query gets a
/// per-connection ID for `respond`.
fn stream_record(
    ev: &CoalescedEvent,
    ids: &Arc<std::sync::Mutex<QueryIds>>,
    agent: &Agent,
) -> Option<StreamEvent> {
    Some(match ev {
        CoalescedEvent::Members { kind, members } => StreamEvent::Members {
            event: kind.as_str().to_string(),
            members: members.iter().map(rpc_member).collect(),
        },
        CoalescedEvent::Other(serf_core::Event::User {
            ltime,
            name,
            payload,
            coalesce,
        }) => StreamEvent::User {
            ltime: *ltime,
            name: name.clone(),
            payload: payload.clone(),
            coalesce: *coalesce,
        },
        CoalescedEvent::Other(serf_core::Event::Query {
            ltime,
            id,
            name,
            payload,
            deadline,
            ..
        }) => {
            let mut g = match ids.lock() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            g.next += 1;
            let local = g.next;
            let now = std::time::Instant::now();
            g.by_id.retain(|_, (_, _, until)| *until >= now);
            g.by_id
                .insert(local, (*ltime, *id, agent.instant_of(*deadline)));
            StreamEvent::Query {
                id: local,
                ltime: *ltime,
                name: name.clone(),
                payload: payload.clone(),
            }
        }
        CoalescedEvent::Other(_) => return None,
    })
}

/// `monitor`: the log backlog, then new lines at the level or above.
pub(super) async fn monitor(c: &mut Conn<'_>, req: MonitorRequest) -> Result<Outcome, String> {
    let up = req.log_level.to_ascii_uppercase();
    let Some(lvl) = crate::logging::parse_level(&up).filter(|_| up != "ERROR") else {
        c.reply(&format!("Unknown log level: {up}"), None).await?;
        return Ok(Outcome::Continue);
    };
    if c.st.monitor.is_some() {
        c.reply("Monitor already exists", None).await?;
        return Ok(Outcome::Continue);
    }
    let (backlog, mut rx) = crate::logging::sink().subscribe(lvl);
    c.reply("", None).await?;
    let wr = c.wr.clone();
    let seq = c.seq;
    let task = tokio::spawn(async move {
        let record = |line: String| LogRecord {
            log: line.into_bytes(),
        };
        for line in backlog {
            if write_record(&wr, seq, &record(line)).await.is_err() {
                return;
            }
        }
        loop {
            match rx.recv().await {
                Ok((l, line)) if l <= lvl => {
                    if write_record(&wr, seq, &record(line)).await.is_err() {
                        return;
                    }
                }
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(_) => return,
            }
        }
    });
    c.st.monitor = Some((seq, task));
    Ok(Outcome::Continue)
}

/// `query`: sends the query, then streams acks, responses and `done`.
pub(super) async fn query(c: &mut Conn<'_>, req: QueryRequest) -> Result<Outcome, String> {
    let params = serf_core::QueryParams {
        filter_nodes: req.filter_nodes.unwrap_or_default(),
        filter_tags: req.filter_tags.unwrap_or_default(),
        relay_factor: req.relay_factor,
        request_ack: req.request_ack,
        timeout: std::time::Duration::from_nanos(u64::try_from(req.timeout_nanos).unwrap_or(0)),
        ..serf_core::QueryParams::default()
    };
    let name = req.name;
    let payload = req.payload.unwrap_or_default();
    if name.starts_with("_serf_") && !(name == "_serf_ping" && payload.is_empty()) {
        c.reply("Queries cannot contain the '_serf_' prefix", None)
            .await?;
        return Ok(Outcome::Continue);
    }
    tracing::debug!(
        target: "serf::agent",
        "Requesting query send: {name}. Payload: {}",
        crate::gofmt::quote(&payload)
    );
    let mut handle = match c.ctl.agent.query(&name, &payload, &params) {
        Err(e) => {
            warn!(target: "serf::agent", "failed to start user query: {e}");
            c.reply(&e.to_string(), None).await?;
            return Ok(Outcome::Continue);
        }
        Ok(handle) => handle,
    };
    c.reply("", None).await?;
    let wr = c.wr.clone();
    let seq = c.seq;
    tokio::spawn(async move {
        while let Some(ev) = handle.rx.recv().await {
            let (kind, from, payload) = match ev {
                serf_core::Event::QueryAck { from, .. } => (QueryRecordType::Ack, from, Vec::new()),
                serf_core::Event::QueryResponse { from, payload, .. } => {
                    (QueryRecordType::Response, from, payload)
                }
                serf_core::Event::QueryDone { .. } => {
                    (QueryRecordType::Done, String::new(), Vec::new())
                }
                _ => continue,
            };
            let done = kind == QueryRecordType::Done;
            let record = QueryRecord {
                kind,
                from,
                payload,
            };
            if write_record(&wr, seq, &record).await.is_err() || done {
                return;
            }
        }
    });
    Ok(Outcome::Continue)
}
