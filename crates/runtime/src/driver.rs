//! The driver: one task owns the UDP socket and the timers and runs the core (a
//! [`serf_membership::Machine`]); every transmit the core produces is sent here, and every
//! stream outcome handed back through `handle_stream_result`. Inbound datagrams are
//! drained before due timers run, so a busy node does not declare others dead just
//! because it was slow to read its inbox.

use crate::net::{self, StreamOpts};
use crate::snapshot::writer::{SnapCmd, SnapshotWriter};
use crate::{write_keyring_file, Event};
use serf_core::Serf;
use serf_membership::{StreamPurpose, Transmit};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;
use tokio::sync::{broadcast, mpsc, Notify, Semaphore};
use tracing::{debug, warn};

pub(crate) struct Shared {
    pub(crate) serf: Mutex<Serf>,
    pub(crate) start: Instant,
    pub(crate) udp: UdpSocket,
    pub(crate) wake: Notify,
    pub(crate) events: broadcast::Sender<Event>,
    pub(crate) outbound: Arc<Semaphore>,
    pub(crate) shutdown: tokio::sync::watch::Sender<bool>,
    pub(crate) stream_opts: Mutex<StreamOpts>,
    pub(crate) routes: Mutex<HashMap<(u64, u32), mpsc::Sender<Event>>>,
    pub(crate) keyring_seen: std::sync::atomic::AtomicU64,
    pub(crate) snapshot: Option<SnapshotWriter>,
    pub(crate) keyring_file: Option<std::path::PathBuf>,
    pub(crate) tags_file: Option<std::path::PathBuf>,
    /// Set once a graceful leave is over (the core's `leave_result`).
    pub(crate) left: tokio::sync::watch::Sender<Option<Result<(), serf_core::Error>>>,
    pub(crate) first_events: Mutex<Option<broadcast::Receiver<Event>>>,
}

impl Shared {
    pub(crate) fn now(&self) -> Duration {
        self.start.elapsed()
    }

    /// Runs a stream exchange the core asked for (anti-entropy push/pull, reconnect,
    /// fallback ping) in a task of its own, within the outbound stream limit, and hands
    /// the outcome back to the core.
    fn spawn_exchange(
        self: &Arc<Self>,
        serf: &Serf,
        to: SocketAddr,
        data: Vec<u8>,
        timeout: Duration,
        purpose: StreamPurpose,
    ) {
        let Ok(permit) = self.outbound.clone().try_acquire_owned() else {
            return;
        };
        // memberlist's debug line names the peer of a push/pull.
        let peer = match purpose {
            StreamPurpose::Ping { .. } => None,
            StreamPurpose::Join | StreamPurpose::PushPull => Some(
                serf.memberlist()
                    .nodes()
                    .find(|n| n.socket_addr() == to)
                    .map_or(String::new(), |n| n.name.clone()),
            ),
        };
        let me = self.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let started = Instant::now();
            let mut opts = me.stream_opts();
            opts.tcp_timeout = timeout;
            let reply = net::exchange(&opts, to, &data, peer.as_deref()).await;
            let exchange_failed = reply.is_err();
            let result = {
                let mut s = me.lock();
                let now = me.now();
                let r = s.handle_stream_result(now, purpose, reply);
                me.flush(&mut s);
                r
            };
            if let (StreamPurpose::PushPull, Err(e)) = (purpose, result) {
                if exchange_failed {
                    warn!(%to, error = %e, "push/pull failed");
                } else {
                    warn!(%to, error = %e, "push/pull merge failed");
                }
            }
            if purpose == StreamPurpose::PushPull {
                metrics::histogram!("memberlist.pushPullNode")
                    .record(started.elapsed().as_secs_f64() * 1e3);
            }
            me.wake.notify_one();
        });
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Serf> {
        match self.serf.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    pub(crate) fn stream_opts(&self) -> StreamOpts {
        match self.stream_opts.lock() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Sends everything the core produced and forwards its events. Call with the lock held.
    pub(crate) fn flush(self: &Arc<Self>, serf: &mut Serf) {
        while let Some(t) = serf.poll_transmit() {
            match t {
                Transmit::Packet { to, data } => match self.udp.try_send_to(&data, to) {
                    Ok(n) => metrics::counter!("memberlist.udp.sent").increment(n as u64),
                    Err(e) => debug!(%to, error = %e, "udp send failed"),
                },
                Transmit::Stream {
                    to,
                    data,
                    timeout,
                    purpose,
                } => self.spawn_exchange(serf, to, data, timeout, purpose),
            }
        }
        while let Some(ev) = serf.poll_event() {
            if let Some(sn) = &self.snapshot {
                match &ev {
                    Event::MemberJoin(m) => sn.send(SnapCmd::Alive(
                        m.name.clone(),
                        SocketAddr::new(m.addr, m.port),
                    )),
                    Event::MemberLeave(m) | Event::MemberFailed(m) => {
                        sn.send(SnapCmd::NotAlive(m.name.clone()))
                    }
                    Event::User { ltime, .. } => sn.send(SnapCmd::EventClock(*ltime)),
                    Event::Query { ltime, .. } => sn.send(SnapCmd::QueryClock(*ltime)),
                    _ => {}
                }
            }
            let key = match &ev {
                Event::QueryAck { ltime, id, .. }
                | Event::QueryResponse { ltime, id, .. }
                | Event::QueryDone { ltime, id }
                | Event::KeyOpDone { ltime, id, .. } => Some((*ltime, *id)),
                _ => None,
            };
            match key {
                Some(k) => {
                    let mut routes = match self.routes.lock() {
                        Ok(g) => g,
                        Err(p) => p.into_inner(),
                    };
                    let done = matches!(ev, Event::QueryDone { .. } | Event::KeyOpDone { .. });
                    if let Some(tx) = routes.get(&k) {
                        if tx.try_send(ev).is_err() {
                            debug!("query result dropped: receiver full or gone");
                        }
                    }
                    if done {
                        routes.remove(&k);
                    }
                }
                None => {
                    let _ = self.events.send(ev);
                }
            }
        }
        if let Some(r) = serf.leave_result() {
            self.left.send_if_modified(|v| {
                let changed = v.is_none();
                if changed {
                    *v = Some(r);
                }
                changed
            });
        }
        if let Some(sn) = &self.snapshot {
            sn.clocks(
                serf.state().clock().saturating_sub(1),
                serf.state().query_clock().saturating_sub(1),
            );
        }
        if serf.should_shutdown() && !*self.shutdown.borrow() {
            let _ = self.shutdown.send(true);
        }
        let v = serf.keyring_version();
        if self
            .keyring_seen
            .swap(v, std::sync::atomic::Ordering::Relaxed)
            != v
        {
            let kr = serf.keyring().clone();
            if let Some(path) = &self.keyring_file {
                if let Err(e) = write_keyring_file(path, &kr) {
                    warn!("failed to write keyring file: {e}");
                }
            }
            match self.stream_opts.lock() {
                Ok(mut g) => g.keyring = kr,
                Err(p) => p.into_inner().keyring = kr,
            }
        }
    }
}

pub(crate) fn on_packet(s: &mut Serf, now: Duration, from: SocketAddr, data: &[u8]) {
    metrics::counter!("memberlist.udp.received").increment(data.len() as u64);
    s.handle_packet(now, from, data);
}

/// Runs due timers and sends what they produced. A step that ran a gossip round is
/// timed as `memberlist.gossip`, the closest match to memberlist's timing of `gossip()`.
pub(crate) fn run_timers(shared: &Arc<Shared>, s: &mut Serf, now: Duration) {
    let started = Instant::now();
    let rounds = s.memberlist().stats().gossip_rounds;
    s.handle_timeout(now);
    shared.flush(s);
    if s.memberlist().stats().gossip_rounds != rounds {
        metrics::histogram!("memberlist.gossip").record(started.elapsed().as_secs_f64() * 1e3);
    }
}

/// The driver: datagrams first, then due timers, until shutdown.
pub(crate) async fn drive(shared: Arc<Shared>) {
    let mut shutdown = shared.shutdown.subscribe();
    let mut buf = vec![0u8; serf_wire::UDP_RECV_BUFFER];
    loop {
        let deadline = {
            let s = shared.lock();
            shared.start + s.poll_timeout()
        };
        tokio::select! {
            biased;
            _ = shutdown.changed() => {
                if *shutdown.borrow() { break; }
            }
            r = shared.udp.recv_from(&mut buf) => {
                match r {
                    Ok((n, from)) => {
                        let mut s = shared.lock();
                        let now = shared.now();
                        on_packet(&mut s, now, from, &buf[..n]);
                        // Drain what else is already queued before timers get a chance.
                        for _ in 0..256 {
                            match shared.udp.try_recv_from(&mut buf) {
                                Ok((n, from)) => on_packet(&mut s, now, from, &buf[..n]),
                                Err(_) => break,
                            }
                        }
                        if now >= s.poll_timeout() {
                            run_timers(&shared, &mut s, now);
                        } else {
                            shared.flush(&mut s);
                        }
                    }
                    Err(e) => debug!(error = %e, "udp receive failed"),
                }
            }
            _ = tokio::time::sleep_until(deadline.into()) => {
                let mut s = shared.lock();
                let now = shared.now();
                for _ in 0..256 {
                    match shared.udp.try_recv_from(&mut buf) {
                        Ok((n, from)) => on_packet(&mut s, now, from, &buf[..n]),
                        Err(_) => break,
                    }
                }
                run_timers(&shared, &mut s, now);
            }
            _ = shared.wake.notified() => {}
        }
    }
    debug!("driver stopped");
}
