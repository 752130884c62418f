//! `serf info` and `serf rtt`.

use super::gofmt::{json_str_map, json_string, quote_str, sprintf_noargs};
use super::help::{INFO_HELP, RTT_HELP};
use super::{connect, out, out_bytes, parse_flags, trim_space, with_rpc};
use crate::flags::{FlagSet, Kind};
use serf_rpc::{Client, Coordinate as RpcCoordinate, StatsResponse, StatsSection};

/// One `stats` section: raw key/value bytes, `None` for a nil map.
type Section = Option<Vec<(Vec<u8>, Vec<u8>)>>;

/// `stats` as decoded: named sections; `None` for a nil map.
type Stats = Option<Vec<StatsSection>>;

/// Sections sorted by name, one per name (the last one wins, as in a Go map).
pub(super) fn sorted_sections(stats: &[StatsSection]) -> Vec<(&Vec<u8>, &Section)> {
    let mut v: Vec<(&Vec<u8>, &Section)> = Vec::new();
    for s in stats {
        v.retain(|(vk, _)| **vk != s.name);
        v.push((&s.name, &s.entries));
    }
    v.sort_by(|a, b| a.0.cmp(b.0));
    v
}

/// `json.MarshalIndent(map[string]map[string]string, "", "  ")`.
fn stats_json(stats: &Stats) -> Vec<u8> {
    let Some(stats) = stats else {
        return b"null".to_vec();
    };
    if stats.is_empty() {
        return b"{}".to_vec();
    }
    let items: Vec<String> = sorted_sections(stats)
        .into_iter()
        .map(|(k, s)| {
            let v = match s {
                None => "null".to_string(),
                Some(m) => json_str_map(m, 1),
            };
            format!("  {}: {v}", json_string(k))
        })
        .collect();
    format!("{{\n{}\n}}", items.join(",\n")).into_bytes()
}

/// `StatsContainer.String()`.
fn stats_text(stats: &Stats) -> Vec<u8> {
    let mut out = Vec::new();
    let Some(stats) = stats else {
        return out;
    };
    for (k, s) in sorted_sections(stats) {
        // Go uses the section name as a format string.
        let mut head = String::from_utf8_lossy(k).into_owned();
        head.push_str(":\n");
        if String::from_utf8(k.clone()).is_ok() {
            out.extend_from_slice(sprintf_noargs(&head).as_bytes());
        } else {
            out.extend_from_slice(k);
            out.extend_from_slice(b":\n");
        }
        let Some(m) = s else {
            continue;
        };
        let mut entries: Vec<&(Vec<u8>, Vec<u8>)> = Vec::new();
        for e in m {
            entries.retain(|x| x.0 != e.0);
            entries.push(e);
        }
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        for (sk, sv) in entries {
            out.push(b'\t');
            out.extend_from_slice(sk);
            out.extend_from_slice(b" = ");
            out.extend_from_slice(sv);
            out.push(b'\n');
        }
    }
    out
}

/// `serf info [-format=text|json]`.
pub(super) async fn info(args: &[String]) -> i32 {
    let fs = with_rpc(FlagSet::new().add("format", Kind::Value));
    let Some(p) = parse_flags(fs, args, INFO_HELP) else {
        return 1;
    };
    let Some(mut c) = connect(&p).await else {
        return 1;
    };
    let stats = c.stats().await;
    c.close().await;
    let stats = match stats {
        Ok(StatsResponse { sections }) => sections,
        Err(e) => {
            out(&format!("Error querying agent: {e}"));
            return 1;
        }
    };
    let text = match p.get("format").unwrap_or("text") {
        "json" => stats_json(&stats),
        "text" => stats_text(&stats),
        other => {
            out(&format!(
                "Encoding error: Invalid output format \"{other}\""
            ));
            return 1;
        }
    };
    out_bytes(trim_space(&text));
    0
}

/// Go's `Coordinate.DistanceTo(..).Seconds() * 1000`: the distance truncated to whole
/// nanoseconds, in milliseconds.
fn distance_ms(a: &RpcCoordinate, b: &RpcCoordinate) -> f64 {
    let sum: f64 = a
        .vec
        .iter()
        .zip(&b.vec)
        .map(|(x, y)| (x - y) * (x - y))
        .sum();
    let raw = sum.sqrt() + a.height + b.height;
    let adjusted = raw + a.adjustment + b.adjustment;
    let dist = if adjusted > 0.0 { adjusted } else { raw };
    let nanos = (dist * 1.0e9) as i64;
    let secs = nanos / 1_000_000_000;
    let rem = nanos % 1_000_000_000;
    (secs as f64 + rem as f64 / 1.0e9) * 1000.0
}

/// `serf rtt node1 [node2]`.
pub(super) async fn rtt(args: &[String]) -> i32 {
    let Some(p) = parse_flags(with_rpc(FlagSet::new()), args, RTT_HELP) else {
        return 1;
    };
    let Some(mut c) = connect(&p).await else {
        return 1;
    };
    let code = rtt_with(&mut c, p.args.clone()).await;
    c.close().await;
    code
}

async fn rtt_with(c: &mut Client, mut nodes: Vec<String>) -> i32 {
    if nodes.len() == 1 {
        let stats = match c.stats().await {
            Ok(s) => s.sections,
            Err(e) => {
                out(&format!("Error querying agent: {e}"));
                return 1;
            }
        };
        let name = stats
            .as_deref()
            .and_then(|s| {
                sorted_sections(s)
                    .into_iter()
                    .find(|(k, _)| k.as_slice() == b"agent")
                    .and_then(|(_, m)| m.as_ref())
                    .and_then(|m| m.iter().rev().find(|(k, _)| k == b"name"))
                    .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
            })
            .unwrap_or_default();
        nodes.push(name);
    } else if nodes.len() != 2 {
        out("One or two node names must be specified");
        out("");
        out(RTT_HELP);
        return 1;
    }
    let mut coords = Vec::with_capacity(2);
    for n in &nodes {
        match c.get_coordinate(n).await {
            Err(e) => {
                out(&format!("Error getting coordinates: {e}"));
                return 1;
            }
            Ok(None) => {
                out(&format!(
                    "Could not find a coordinate for node {}",
                    quote_str(n)
                ));
                return 1;
            }
            Ok(Some(coord)) => coords.push(coord),
        }
    }
    if coords[0].vec.len() != coords[1].vec.len() {
        // Go's DistanceTo panics on a dimensionality conflict.
        eprintln!("panic: coordinate dimensionality does not match");
        return 2;
    }
    out(&format!(
        "Estimated {} <-> {} rtt: {:.3} ms",
        nodes[0],
        nodes[1],
        distance_ms(&coords[0], &coords[1])
    ));
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats() -> Stats {
        Some(vec![
            StatsSection {
                name: b"tags".to_vec(),
                entries: Some(vec![
                    (b"role".to_vec(), b"web".to_vec()),
                    (b"dc".to_vec(), b"east".to_vec()),
                ]),
            },
            StatsSection {
                name: b"agent".to_vec(),
                entries: Some(vec![(b"name".to_vec(), b"alpha".to_vec())]),
            },
        ])
    }

    #[test]
    fn text_and_json_like_go() {
        assert_eq!(
            String::from_utf8_lossy(trim_space(&stats_text(&stats()))),
            "agent:\n\tname = alpha\ntags:\n\tdc = east\n\trole = web"
        );
        assert_eq!(
            String::from_utf8_lossy(&stats_json(&stats())),
            "{\n  \"agent\": {\n    \"name\": \"alpha\"\n  },\n  \"tags\": {\n    \"dc\": \"east\",\n    \"role\": \"web\"\n  }\n}"
        );
        assert_eq!(stats_json(&None), b"null");
        assert_eq!(stats_json(&Some(Vec::new())), b"{}");
    }

    #[test]
    fn distance_like_go() {
        let a = RpcCoordinate {
            vec: vec![0.0001, 0.0],
            error: 1.5,
            adjustment: 0.0,
            height: 0.0001,
        };
        let b = RpcCoordinate {
            vec: vec![0.0, 0.0],
            error: 1.5,
            adjustment: 0.0,
            height: 0.000119,
        };
        assert_eq!(format!("{:.3}", distance_ms(&a, &b)), "0.319");
    }
}
