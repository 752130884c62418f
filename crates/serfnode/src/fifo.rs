//! The event FIFO `/serfnode/parent` (SPEC §4): each line `["name", payload]` a child
//! writes becomes a user event from this node (coalescable, as `serf event` sends it).
//!
//! The FIFO is opened for reading *and* writing, so a writer closing never ends the
//! stream; bad lines (not JSON, wrong shape, too large, partial at a writer's close) get
//! one log line each and the server keeps serving.

use serf_runtime::Agent;
use serfnode_core::fifo::EventDecoder;
use std::path::Path;
use tokio::io::AsyncReadExt as _;

/// Creates the FIFO at `path`, replacing whatever is there (a FIFO or file from an
/// earlier run). Mode 0622: children running as any user may write to it.
pub(crate) fn create(path: &Path) -> Result<(), String> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => {
            return Err(format!("{} is a directory", path.display()));
        }
        Ok(_) => {
            std::fs::remove_file(path)
                .map_err(|e| format!("cannot remove the stale {}: {e}", path.display()))?;
        }
        Err(_) => {}
    }
    rustix::fs::mknodat(
        rustix::fs::CWD,
        path,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o622),
        0,
    )
    .map_err(|e| format!("cannot create the FIFO {}: {e}", path.display()))?;
    // The umask may have taken write access away from others.
    rustix::fs::chmod(path, rustix::fs::Mode::from_raw_mode(0o622))
        .map_err(|e| format!("cannot chmod the FIFO {}: {e}", path.display()))
}

/// Serves the FIFO at `path` until the agent stops.
pub(crate) async fn serve(path: std::path::PathBuf, agent: Agent) {
    let mut rx = match tokio::net::unix::pipe::OpenOptions::new()
        .read_write(true)
        .open_receiver(&path)
    {
        Ok(rx) => rx,
        Err(e) => {
            tracing::error!("cannot open the event FIFO {}: {e}", path.display());
            return;
        }
    };
    tracing::info!("serving events from {}", path.display());
    let mut decoder = EventDecoder::new();
    let mut buf = vec![0u8; 4096];
    loop {
        let n = tokio::select! {
            r = rx.read(&mut buf) => match r {
                Ok(0) => continue,
                Ok(n) => n,
                Err(e) => {
                    tracing::warn!("Could not read from pipe: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = agent.stopped() => return,
        };
        for r in decoder.push(&buf[..n]) {
            match r {
                Ok(ev) => match agent.user_event(&ev.name, &ev.payload, true) {
                    Ok(()) => tracing::info!(
                        "FIFO: sent user event {:?} ({} bytes)",
                        ev.name,
                        ev.payload.len()
                    ),
                    Err(e) => tracing::warn!("FIFO: event {:?} not sent: {e}", ev.name),
                },
                Err(e) => tracing::warn!("FIFO: line dropped: {e}"),
            }
        }
    }
}
