//! The cluster as files (SPEC §3): `serfnodes_by_id.json` and `serfnodes_by_role.json`
//! at `/` and in `/serfnode/`, and the role names in `/etc/hosts` (§5), rewritten from
//! the agent's member list whenever it changes.

use serf_runtime::Agent;
use serfnode_core::files::{self, SERFNODES_BY_ID, SERFNODES_BY_ROLE};
use std::path::Path;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;

/// Events closer together than this are handled with one rewrite.
const SETTLE: Duration = Duration::from_millis(50);

/// Rewrites the files and the hosts block on every member event, until the agent stops.
pub(crate) async fn run(agent: Agent) {
    let mut events = agent.subscribe();
    loop {
        match events.recv().await {
            Ok(e) if crate::node::is_member_event(&e) => {}
            Ok(_) => continue,
            Err(RecvError::Lagged(_)) => {}
            Err(RecvError::Closed) => return,
        }
        // Take in what arrives right behind it, then rewrite once.
        let settle = tokio::time::sleep(SETTLE);
        tokio::pin!(settle);
        loop {
            tokio::select! {
                () = &mut settle => break,
                r = events.recv() => if let Err(RecvError::Closed) = r { break },
            }
        }
        refresh(&agent);
    }
}

/// Rewrites the four cluster files and the `/etc/hosts` block from the current members.
pub(crate) fn refresh(agent: &Agent) {
    let members = agent.members();
    for (name, text) in [
        (SERFNODES_BY_ID, files::serfnodes_by_id(&members)),
        (SERFNODES_BY_ROLE, files::serfnodes_by_role(&members)),
    ] {
        match text {
            Ok(text) => {
                for dir in ["/", "/serfnode"] {
                    if let Err(e) = files::atomic_write(Path::new(dir), name, text.as_bytes()) {
                        tracing::error!("failed to write {dir}/{name}: {e}");
                    }
                }
            }
            Err(e) => tracing::error!("{name}: {e}"),
        }
    }
    let hosts = Path::new("/etc/hosts");
    let old = match std::fs::read_to_string(hosts) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => {
            tracing::error!("cannot read /etc/hosts: {e}");
            return;
        }
    };
    let new = serfnode_core::hosts::rewrite(&old, &members);
    if new != old {
        // Docker bind-mounts /etc/hosts: it cannot be renamed over, only rewritten.
        if let Err(e) = std::fs::write(hosts, new) {
            tracing::error!("cannot write /etc/hosts: {e}");
        }
    }
}
