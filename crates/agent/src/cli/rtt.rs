//! `serf rtt`.

use super::info::sorted_sections;
use super::{connect, out, parse_flags, with_rpc};
use crate::flags::FlagSet;
use crate::gofmt::quote_str;
use crate::help::RTT_HELP;
use serf_rpc::{Client, Coordinate as RpcCoordinate};

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
