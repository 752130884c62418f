//! Embedding Serf in a Rust program: two nodes on loopback form a cluster, watch each
//! other's membership, send a user event, ask a query that the other answers, and leave.
//!
//! Run with `cargo run -p serf-runtime --example embed`. The same code runs as a test
//! (`crates/runtime/tests/embed_example.rs`).

use serf_runtime::{Agent, Event, Options, QueryParams};
use std::error::Error;
use std::time::Duration;
use tokio::sync::broadcast::Receiver;
use tokio::time::timeout;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn Error>> {
    run().await
}

/// Waits up to 10 s for an event matching `want`.
async fn wait_for(
    events: &mut Receiver<Event>,
    what: &str,
    want: impl Fn(&Event) -> bool,
) -> Result<Event, Box<dyn Error>> {
    let found = timeout(Duration::from_secs(10), async {
        loop {
            match events.recv().await {
                Ok(ev) if want(&ev) => return Ok(ev),
                Ok(_) => {}
                Err(e) => return Err(e),
            }
        }
    })
    .await;
    match found {
        Ok(Ok(ev)) => Ok(ev),
        Ok(Err(e)) => Err(format!("event stream ended waiting for {what}: {e}").into()),
        Err(_) => Err(format!("no {what} within 10 s").into()),
    }
}

/// The whole example; returns an error instead of panicking.
pub(crate) async fn run() -> Result<(), Box<dyn Error>> {
    // Two nodes, each on a free port of 127.0.0.1.
    let alpha = Agent::start(Options::lan("alpha", "127.0.0.1:0".parse()?)).await?;
    let mut alpha_events = alpha.subscribe();
    let beta = Agent::start(Options::lan("beta", "127.0.0.1:0".parse()?)).await?;
    let mut beta_events = beta.subscribe();

    // beta joins through alpha's address; alpha sees a member-join.
    let contacted = beta
        .join(&[alpha.local_addr().to_string()], false)
        .await
        .map_err(|(_, e)| e)?;
    println!("beta joined through {contacted} node(s)");
    wait_for(
        &mut alpha_events,
        "member-join of beta",
        |ev| matches!(ev, Event::MemberJoin(m) if m.name == "beta"),
    )
    .await?;
    println!(
        "alpha sees: {:?}",
        alpha.members().iter().map(|m| &m.name).collect::<Vec<_>>()
    );

    // A user event from beta reaches alpha.
    beta.user_event("deploy", b"v2", false)?;
    if let Event::User { name, payload, .. } = wait_for(&mut alpha_events, "user event", |ev| {
        matches!(ev, Event::User { .. })
    })
    .await?
    {
        println!(
            "alpha got event {name} {}",
            String::from_utf8_lossy(&payload)
        );
    }

    // beta answers queries from its own event stream.
    let responder = beta.clone();
    let answering = tokio::spawn(async move {
        while let Ok(ev) = beta_events.recv().await {
            if let Event::Query {
                ltime, id, name, ..
            } = ev
            {
                let _ = responder.respond(ltime, id, format!("beta handles {name}").into_bytes());
            }
        }
    });
    let params = QueryParams {
        timeout: Duration::from_secs(3),
        ..QueryParams::default()
    };
    let mut query = alpha.query("health", b"", &params)?;
    let mut answers = Vec::new();
    while let Some(ev) = query.rx.recv().await {
        match ev {
            Event::QueryResponse { from, payload, .. } => {
                answers.push((from, String::from_utf8_lossy(&payload).into_owned()));
            }
            Event::QueryDone { .. } => break,
            _ => {}
        }
    }
    println!("answers to 'health': {answers:?}");
    if !answers.iter().any(|(from, _)| from == "beta") {
        return Err("beta did not answer the query".into());
    }

    // beta leaves gracefully; alpha records it as left.
    beta.leave().await?;
    wait_for(
        &mut alpha_events,
        "member-leave of beta",
        |ev| matches!(ev, Event::MemberLeave(m) if m.name == "beta"),
    )
    .await?;
    println!("beta left");
    answering.abort();
    alpha.shutdown();
    Ok(())
}
