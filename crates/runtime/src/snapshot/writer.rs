//! Feeds the snapshot file from a thread of its own (see [`SnapshotWriter`]).

use super::Snapshot;
use std::net::SocketAddr;
use std::time::Duration;
use tracing::warn;

/// What the snapshot thread is told.
pub(crate) enum SnapCmd {
    Alive(String, SocketAddr),
    NotAlive(String),
    EventClock(u64),
    QueryClock(u64),
    Clock(u64),
    Leave(tokio::sync::oneshot::Sender<()>),
}

/// Feeds the snapshot file from a thread of its own, so disk latency (writes, fsync,
/// compaction) never holds the core lock or delays the driver. The channel is bounded like
/// Go's (2048); when it is full, records are dropped with a warning rather than blocking.
pub(crate) struct SnapshotWriter {
    tx: std::sync::mpsc::SyncSender<SnapCmd>,
    last_clock: std::sync::atomic::AtomicU64,
    last_query_clock: std::sync::atomic::AtomicU64,
}

impl SnapshotWriter {
    pub(crate) fn spawn(mut sn: Snapshot) -> SnapshotWriter {
        let (tx, rx) = std::sync::mpsc::sync_channel::<SnapCmd>(2048);
        let spawned = std::thread::Builder::new()
            .name("snapshot".into())
            .spawn(move || loop {
                let cmd = match rx.recv_timeout(Duration::from_millis(500)) {
                    Ok(c) => Some(c),
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout) => None,
                    Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                        let _ = sn.sync();
                        return;
                    }
                };
                let r = match cmd {
                    None => sn.sync_if_due(),
                    Some(SnapCmd::Alive(n, a)) => sn.alive(&n, a),
                    Some(SnapCmd::NotAlive(n)) => sn.not_alive(&n),
                    Some(SnapCmd::EventClock(t)) => sn.event_clock(t),
                    Some(SnapCmd::QueryClock(t)) => sn.query_clock(t),
                    Some(SnapCmd::Clock(t)) => sn.clock(t).and_then(|()| sn.sync_if_due()),
                    Some(SnapCmd::Leave(done)) => {
                        let r = sn.leave();
                        let _ = done.send(());
                        r
                    }
                };
                if let Err(e) = r {
                    warn!("failed to write snapshot: {e}");
                }
            });
        if let Err(e) = spawned {
            warn!("failed to start the snapshot thread: {e}");
        }
        SnapshotWriter {
            tx,
            last_clock: std::sync::atomic::AtomicU64::new(0),
            last_query_clock: std::sync::atomic::AtomicU64::new(0),
        }
    }

    pub(crate) fn send(&self, c: SnapCmd) {
        if self.tx.try_send(c).is_err() {
            warn!("snapshot queue full, dropping a record");
        }
    }

    /// Records the clocks when they moved.
    pub(crate) fn clocks(&self, clock: u64, query_clock: u64) {
        use std::sync::atomic::Ordering::Relaxed;
        if self.last_clock.fetch_max(clock, Relaxed) < clock {
            self.send(SnapCmd::Clock(clock));
        }
        if self.last_query_clock.fetch_max(query_clock, Relaxed) < query_clock {
            self.send(SnapCmd::QueryClock(query_clock));
        }
    }

    /// Writes `leave` (fsynced) and waits for it.
    pub(crate) async fn leave(&self) {
        let (done, wait) = tokio::sync::oneshot::channel();
        self.send(SnapCmd::Leave(done));
        let _ = tokio::time::timeout(Duration::from_secs(5), wait).await;
    }
}
