//! Benchmark of our agent against Go's `serf` on loopback: join convergence, failure
//! detection, graceful leave, user-event and query latency, event throughput, idle
//! footprint and bytes on the wire, and many agents started at once. See
//! [`serf_interop::bench`](mod@serf_interop::bench) for what each figure means.
//!
//! Run: `scripts/bench [--quick]` (builds in release mode first), or
//! `cargo build --release --locked -p serf-agent -p serf-interop --bins &&
//! target/<triple>/release/bench [--quick] [--no-go] [--samples N]`. Not part of the test suite.
#![forbid(unsafe_code)]

use serf_interop::bench::{run, Settings, USAGE};
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let settings = match Settings::from_args(&args) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let command_line = std::iter::once("scripts/bench".to_string())
        .chain(args)
        .collect::<Vec<_>>()
        .join(" ");
    // A thread named "bench": agent logs go to <target>/interop-logs/bench/ (emptied first).
    let worker = std::thread::Builder::new()
        .name("bench".into())
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| format!("tokio runtime: {e}"))?;
            rt.block_on(run(&settings, &command_line))
        });
    let result = match worker {
        Ok(h) => h
            .join()
            .unwrap_or_else(|_| Err("benchmark thread panicked".into())),
        Err(e) => Err(format!("starting the benchmark thread: {e}")),
    };
    match result {
        Ok(text) => {
            println!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("bench: {e}");
            ExitCode::FAILURE
        }
    }
}
