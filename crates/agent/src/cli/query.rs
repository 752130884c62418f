//! `serf query`.

use super::{connect, out, out_bytes, parse_flags, unmarshal_tags, with_rpc, Interrupt};
use crate::flags::{FlagSet, Kind};
use crate::gofmt::{json_str_map, json_string};
use crate::help::QUERY_HELP;
use serf_rpc::{Client, QueryRecord, QueryRecordType, QueryRequest, StreamHandle};

/// What the query stream delivered next (Go's `ackCh`/`respCh` reads).
pub(super) enum QueryEvent {
    Ack(String),
    Response(String, Vec<u8>),
    /// `done`, the connection went away, or an undecodable record: the channels closed.
    End,
}

/// Reads the next ack or response of the query registered under `seq`.
pub(super) async fn next_query_event(
    c: &mut Client,
    query: &StreamHandle<QueryRecord>,
) -> QueryEvent {
    loop {
        let rec = match c.recv(query).await {
            Ok(r) => r,
            Err(serf_rpc::ClientError::Protocol(_)) => {
                c.forget(query);
                return QueryEvent::End;
            }
            Err(_) => return QueryEvent::End,
        };
        match rec.kind {
            // Go's CLI stops at an empty name: it cannot tell it from a closed channel.
            QueryRecordType::Ack if rec.from.is_empty() => return QueryEvent::End,
            QueryRecordType::Ack => return QueryEvent::Ack(rec.from),
            QueryRecordType::Response if rec.from.is_empty() => return QueryEvent::End,
            QueryRecordType::Response => return QueryEvent::Response(rec.from, rec.payload),
            QueryRecordType::Done => {
                c.forget(query);
                return QueryEvent::End;
            }
            QueryRecordType::Other(_) => {}
        }
    }
}

/// The output of the JSON format (`jsonQueryRespFormat`).
fn query_json(acks: &[String], responses: &[(Vec<u8>, Vec<u8>)]) -> String {
    let acks = if acks.is_empty() {
        "null".to_string()
    } else {
        let items: Vec<String> = acks
            .iter()
            .map(|a| format!("    {}", json_string(a.as_bytes())))
            .collect();
        format!("[\n{}\n  ]", items.join(",\n"))
    };
    format!(
        "{{\n  \"Acks\": {acks},\n  \"Responses\": {}\n}}",
        json_str_map(responses, 1)
    )
}

/// `serf query [options] name [payload]`.
pub(super) async fn query(args: &[String]) -> i32 {
    let mut interrupt = Interrupt::new();
    let fs = with_rpc(
        FlagSet::new()
            .add("node", Kind::Multi)
            .add("tag", Kind::Multi)
            .add("timeout", Kind::Duration)
            .add("no-ack", Kind::Bool)
            .add("format", Kind::Value)
            .add("relay-factor", Kind::Int),
    );
    let Some(p) = parse_flags(fs, args, QUERY_HELP) else {
        return 1;
    };
    let filter_tags = match unmarshal_tags(&p.all("tag")) {
        Ok(t) => t,
        Err(e) => {
            out(&format!("Error: {e}"));
            return 1;
        }
    };
    if p.args.is_empty() {
        out("A query name must be specified.");
        out("");
        out(QUERY_HELP);
        return 1;
    }
    if p.args.len() > 2 {
        out("Too many command line arguments. Only a name and payload must be specified.");
        out("");
        out(QUERY_HELP);
        return 1;
    }
    let relay_factor = p.int("relay-factor");
    let Ok(relay_factor) = u8::try_from(relay_factor) else {
        out("Relay factor must be between 0 and 255");
        return 1;
    };
    let no_ack = p.bool("no-ack");
    let name = p.args[0].clone();
    let payload = p.args.get(1).map(|s| s.as_bytes().to_vec());
    let nodes = p.all("node");
    let Some(mut c) = connect(&p).await else {
        return 1;
    };
    let json = match p.get("format").unwrap_or("text") {
        "text" => false,
        "json" => true,
        other => {
            out(&format!("Invalid format: {other}"));
            c.close().await;
            return 1;
        }
    };
    let req = QueryRequest {
        filter_nodes: (!nodes.is_empty()).then_some(nodes),
        filter_tags: Some(filter_tags),
        name: name.clone(),
        payload,
        relay_factor,
        request_ack: !no_ack,
        timeout_nanos: p.duration_nanos("timeout"),
    };
    let handle = match c.query(&req).await {
        Ok(s) => s,
        Err(e) => {
            out(&format!("Error sending query: {e}"));
            c.close().await;
            return 1;
        }
    };
    if !json {
        out(&format!("Query '{name}' dispatched"));
    }
    let mut acks: Vec<String> = Vec::new();
    let mut responses: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    loop {
        let ev = tokio::select! {
            ev = next_query_event(&mut c, &handle) => ev,
            () = interrupt.recv() => {
                c.close().await;
                return 1;
            }
        };
        match ev {
            QueryEvent::End => break,
            QueryEvent::Ack(from) => {
                if !json {
                    out(&format!("Ack from '{from}'"));
                }
                acks.push(from);
            }
            QueryEvent::Response(from, mut payload) => {
                if !json {
                    if payload.last() == Some(&b'\n') {
                        payload.pop();
                    }
                    let mut line = format!("Response from '{from}': ").into_bytes();
                    line.extend_from_slice(&payload);
                    out_bytes(&line);
                }
                responses.push((from.into_bytes(), payload));
            }
        }
    }
    c.close().await;
    if json {
        out(&query_json(&acks, &responses));
    } else {
        if !no_ack {
            out(&format!("Total Acks: {}", acks.len()));
        }
        out(&format!("Total Responses: {}", responses.len()));
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_like_go() {
        assert_eq!(
            query_json(
                &["alpha".into(), "beta".into()],
                &[
                    (b"beta".to_vec(), b"resp-from-beta".to_vec()),
                    (b"alpha".to_vec(), b"resp-from-alpha".to_vec())
                ]
            ),
            "{\n  \"Acks\": [\n    \"alpha\",\n    \"beta\"\n  ],\n  \"Responses\": {\n    \"alpha\": \"resp-from-alpha\",\n    \"beta\": \"resp-from-beta\"\n  }\n}"
        );
        assert_eq!(
            query_json(&[], &[]),
            "{\n  \"Acks\": null,\n  \"Responses\": {}\n}"
        );
    }
}
