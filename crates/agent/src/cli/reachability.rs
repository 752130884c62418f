//! `serf reachability`.

use super::query::{next_query_event, QueryEvent};
use super::{connect, out, parse_flags, with_rpc, Interrupt};
use crate::flags::{FlagSet, Kind};
use crate::help::REACHABILITY_HELP;
use serf_rpc::QueryRequest;
use std::collections::BTreeSet;
use std::time::Instant;

const TOO_MANY_ACKS: &str =
    "This could mean Serf is detecting false-failures due to a misconfiguration or network issue.";
const TOO_FEW_ACKS: &str =
    "This could mean Serf gossip packets are being lost due to a misconfiguration or network issue.";
const DUPLICATE_RESPONSES: &str =
    "Duplicate responses means there is a misconfiguration. Verify that node names are unique.";
const TROUBLESHOOTING: &str = "
Troubleshooting tips:
* Ensure that the bind addr:port is accessible by all other nodes
* If an advertise address is set, ensure it routes to the bind address
* Check that no nodes are behind a NAT
* If nodes are behind firewalls or iptables, check that Serf traffic is permitted (UDP and TCP)
* Verify networking equipment is functional";

/// `serf reachability [-verbose]`.
pub(super) async fn reachability(args: &[String]) -> i32 {
    let mut interrupt = Interrupt::new();
    let fs = with_rpc(FlagSet::new().add("verbose", Kind::Bool));
    let Some(p) = parse_flags(fs, args, REACHABILITY_HELP) else {
        return 1;
    };
    let verbose = p.bool("verbose");
    let Some(mut c) = connect(&p).await else {
        return 1;
    };
    let members = match c.members().await {
        Ok(m) => m,
        Err(e) => {
            out(&format!("Error getting members: {e}"));
            c.close().await;
            return 1;
        }
    };
    let live: BTreeSet<String> = members
        .iter()
        .filter(|m| m.status == "alive")
        .map(|m| m.name.clone())
        .collect();
    out(&format!(
        "Total members: {}, live members: {}",
        members.len(),
        live.len()
    ));
    let req = QueryRequest {
        request_ack: true,
        name: "_serf_ping".to_string(),
        ..QueryRequest::default()
    };
    let handle = match c.query(&req).await {
        Ok(s) => s,
        Err(e) => {
            out(&format!("Error sending query: {e}"));
            c.close().await;
            return 1;
        }
    };
    out("Starting reachability test...");
    let start = Instant::now();
    let mut last = Instant::now();
    let mut dups = false;
    let mut num_acks = 0usize;
    let mut acks_from: BTreeSet<String> = BTreeSet::new();
    loop {
        let ev = tokio::select! {
            ev = next_query_event(&mut c, &handle) => ev,
            () = interrupt.recv() => {
                out("Test interrupted");
                c.close().await;
                return 1;
            }
        };
        match ev {
            QueryEvent::End => break,
            QueryEvent::Ack(a) => {
                if verbose {
                    out(&format!("\tAck from '{a}'"));
                }
                num_acks += 1;
                if !acks_from.insert(a.clone()) {
                    dups = true;
                    out(&format!("Duplicate response from '{a}'"));
                }
                last = Instant::now();
            }
            // Reachability registers no response channel: Go drops them.
            QueryEvent::Response(..) => {}
        }
    }
    c.close().await;
    if verbose {
        let total = start.elapsed().as_secs_f64();
        let to_last = last.saturating_duration_since(start).as_secs_f64();
        out(&format!(
            "Query time: {total:.2} sec, time to last response: {to_last:.2} sec"
        ));
    }
    let mut exit = 0;
    if dups {
        out(DUPLICATE_RESPONSES);
        exit = 1;
    }
    let n = live.len();
    if num_acks == n {
        out("Successfully contacted all live nodes");
    } else if num_acks > n {
        out("Received more acks than live nodes! Acks from non-live nodes:");
        for m in acks_from.iter().filter(|m| !live.contains(*m)) {
            out(&format!("\t{m}"));
        }
        out(TOO_MANY_ACKS);
        out(TROUBLESHOOTING);
        return 1;
    } else {
        out("Received less acks than live nodes! Missing acks from:");
        for m in live.iter().filter(|m| !acks_from.contains(*m)) {
            out(&format!("\t{m}"));
        }
        out(TOO_FEW_ACKS);
        out(TROUBLESHOOTING);
        return 1;
    }
    exit
}
