//! `netns_watch RPC_ADDR INTERVAL_MS MAX_SECS`: polls an agent's member list over RPC and
//! prints one line per poll, `<unix ms> <name>=<status> …` (or `<unix ms> ERR <why>`),
//! for the `faults` interop test. It runs inside a test network namespace (`ip netns
//! exec`), where the agent's RPC listens on loopback, so one long-lived process per agent
//! replaces a CLI process per poll. Exits after MAX_SECS, or when its output is closed.
#![forbid(unsafe_code)]

use serf_rpc::Client;
use std::io::Write;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

fn unix_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
}

fn arg<T: std::str::FromStr>(args: &[String], i: usize, what: &str) -> Result<T, String> {
    args.get(i)
        .ok_or_else(|| format!("missing {what}"))?
        .parse()
        .map_err(|_| format!("bad {what}"))
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let addr: String = arg(&args, 0, "RPC_ADDR")?;
    let interval = Duration::from_millis(arg(&args, 1, "INTERVAL_MS")?);
    let max = Duration::from_secs(arg(&args, 2, "MAX_SECS")?);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let started = Instant::now();
    let mut out = std::io::stdout().lock();
    rt.block_on(async {
        let mut client: Option<Client> = None;
        while started.elapsed() < max {
            let tick = Instant::now();
            if client.is_none() {
                match Client::connect(&addr, "").await {
                    Ok(c) => client = Some(c),
                    Err(e) => {
                        if writeln!(out, "{} ERR connect: {e}", unix_ms()).is_err() {
                            return Ok(());
                        }
                    }
                }
            }
            if let Some(c) = client.as_mut() {
                let line = match tokio::time::timeout(Duration::from_secs(5), c.members()).await {
                    Ok(Ok(members)) => {
                        let mut v: Vec<String> = members
                            .iter()
                            .map(|m| format!("{}={}", m.name, m.status))
                            .collect();
                        v.sort();
                        format!("{} {}", unix_ms(), v.join(" "))
                    }
                    Ok(Err(e)) => {
                        client = None;
                        format!("{} ERR members: {e}", unix_ms())
                    }
                    Err(_) => {
                        client = None;
                        format!("{} ERR members: timed out", unix_ms())
                    }
                };
                if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
                    return Ok(());
                }
            }
            tokio::time::sleep(interval.saturating_sub(tick.elapsed())).await;
        }
        Ok(())
    })
}

fn main() {
    if let Err(e) = run() {
        eprintln!("netns_watch: {e}");
        std::process::exit(2);
    }
}
