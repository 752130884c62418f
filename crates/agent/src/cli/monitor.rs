//! `serf monitor`.

use super::{connect, out, out_bytes, parse_flags, with_rpc, Interrupt};
use crate::flags::{FlagSet, Kind};
use crate::gofmt::GoValue;
use crate::help::MONITOR_HELP;
use serf_wire::msgpack::Reader;

/// The lines Go prints for one event-stream record (`map[string]interface{}`): `Event Info:`
/// and `\t<key>: <%#v of value>` per key (Go's order is random; ours is sorted). `None`
/// when Go would stop the stream (nil record or not a string-keyed map).
fn event_lines(body: &[u8]) -> Option<Vec<Vec<u8>>> {
    let v = GoValue::decode(&mut Reader::new(body)).ok()?;
    let GoValue::Map(entries) = v else {
        return None;
    };
    let mut fields: Vec<(Vec<u8>, GoValue)> = Vec::with_capacity(entries.len());
    for (k, val) in entries {
        let GoValue::Str(k) = k else {
            return None;
        };
        // A Go map keeps one value per key: the last one decoded.
        fields.retain(|(fk, _)| *fk != k);
        fields.push((k, val));
    }
    fields.sort_by(|a, b| a.0.cmp(&b.0));
    let mut lines = vec![b"Event Info:".to_vec()];
    for (k, val) in fields {
        let mut line = b"\t".to_vec();
        line.extend_from_slice(&k);
        line.extend_from_slice(b": ");
        line.extend_from_slice(val.sharp_v().as_bytes());
        lines.push(line);
    }
    Some(lines)
}

/// `serf monitor [-log-level=info]`.
pub(super) async fn monitor(args: &[String]) -> i32 {
    let mut interrupt = Interrupt::new();
    let fs = with_rpc(FlagSet::new().add("log-level", Kind::Value));
    let Some(p) = parse_flags(fs, args, MONITOR_HELP) else {
        return 1;
    };
    let level = p.get("log-level").unwrap_or("INFO").to_string();
    let Some(mut c) = connect(&p).await else {
        return 1;
    };
    let stream = match c.stream("*").await {
        Ok(s) => s,
        Err(e) => {
            out(&format!("Error starting stream: {e}"));
            c.close().await;
            return 1;
        }
    };
    let mon = match c.monitor(&level).await {
        Ok(s) => s,
        Err(e) => {
            out(&format!("Error starting monitor: {e}"));
            let _ = c.stop(&stream).await;
            c.close().await;
            return 1;
        }
    };
    loop {
        let rec = tokio::select! {
            r = c.next_record() => r,
            () = interrupt.recv() => {
                // Deferred in Go: stop the monitor, then the stream, then close.
                let _ = c.stop(&mon).await;
                let _ = c.stop(&stream).await;
                c.close().await;
                return 0;
            }
        };
        let Ok(rec) = rec else {
            break;
        };
        if let Some(log) = mon.decode(&rec) {
            match log {
                Ok(line) if !line.log.is_empty() => out_bytes(&line.log),
                _ => break,
            }
        } else if rec.seq == stream.seq() {
            // Go decodes event records into `map[string]interface{}`: print what came.
            match event_lines(&rec.body) {
                Some(lines) => lines.iter().for_each(|l| out_bytes(l)),
                None => break,
            }
        }
    }
    out("");
    out("Remote side ended the monitor! This usually means that the\nremote side has exited or crashed.");
    let _ = c.stop(&mon).await;
    let _ = c.stop(&stream).await;
    c.close().await;
    1
}

#[cfg(test)]
mod tests {
    use super::*;
    use serf_wire::msgpack::{Flavor, Writer};

    #[test]
    fn user_event_like_go() {
        // The user-event record of docs/agent-rpc.md 5.1 with payload "pay load".
        let mut w = Writer::with_flavor(Flavor::Rpc);
        w.map(5)
            .str("Coalesce")
            .bool(false)
            .str("Event")
            .str("user");
        w.str("LTime").uint(7).str("Name").str("mon-ev");
        w.str("Payload").bytes(b"pay load");
        let lines = event_lines(&w.into_vec()).expect("a record");
        let text: Vec<String> = lines
            .iter()
            .map(|l| String::from_utf8_lossy(l).into_owned())
            .collect();
        assert_eq!(
            text,
            vec![
                "Event Info:",
                "\tCoalesce: false",
                "\tEvent: \"user\"",
                "\tLTime: 7",
                "\tName: \"mon-ev\"",
                "\tPayload: []byte{0x70, 0x61, 0x79, 0x20, 0x6c, 0x6f, 0x61, 0x64}",
            ]
        );
        assert!(event_lines(&[0xc0]).is_none());
    }
}
