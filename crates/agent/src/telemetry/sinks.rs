//! The network sinks: statsd (UDP) and statsite (TCP) writers with go-metrics' batching,
//! reconnection and error texts.

use super::*;

/// Go's standard logger, which go-metrics' sinks write their errors to.
pub(super) fn log_err(msg: &str) {
    let _ = writeln!(
        std::io::stderr(),
        "{} [ERR] {msg}",
        crate::logging::timestamp()
    );
}

/// An I/O error as Go's `net` package words it: `connect: connection refused`.
pub(super) fn go_net_text(op: &str, e: &std::io::Error) -> String {
    let lower = serf_gocompat::errors::io_text(e);
    if e.raw_os_error().is_some() {
        format!("{op}: {lower}")
    } else {
        lower
    }
}

/// Go's message for a failed write or flush of a sink.
pub(super) fn write_err(
    what: &'static str,
    sink: &'static str,
) -> impl Fn(std::io::Error) -> String {
    move |e| format!("Error {what} {sink}! Err: {}", go_net_text("write", &e))
}

/// Accumulates lines into batches of at most `max` bytes (a single longer line is sent
/// on its own, as in Go).
#[derive(Debug)]
pub(super) struct Packer {
    buf: Vec<u8>,
    max: usize,
}

impl Packer {
    pub(super) fn new(max: usize) -> Self {
        Packer {
            buf: Vec::with_capacity(max),
            max,
        }
    }

    /// Adds a line; returns the batch to send first when the line does not fit.
    pub(super) fn push(&mut self, line: &str) -> Option<Vec<u8>> {
        let full = (!self.buf.is_empty() && self.buf.len() + line.len() > self.max)
            .then(|| std::mem::replace(&mut self.buf, Vec::with_capacity(self.max)));
        self.buf.extend_from_slice(line.as_bytes());
        full
    }

    /// The pending batch, if any.
    pub(super) fn take(&mut self) -> Option<Vec<u8>> {
        (!self.buf.is_empty())
            .then(|| std::mem::replace(&mut self.buf, Vec::with_capacity(self.max)))
    }
}

pub(super) fn flush_ticker() -> tokio::time::Interval {
    let mut t = tokio::time::interval_at(tokio::time::Instant::now() + FLUSH, FLUSH);
    t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    t
}

/// Go's WAIT state: discard queued lines for a while. False when the queue is closed.
pub(super) async fn discard_for(rx: &mut mpsc::Receiver<String>, wait: Duration) -> bool {
    let deadline = tokio::time::sleep(wait);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            _ = &mut deadline => return true,
            line = rx.recv() => if line.is_none() { return false },
        }
    }
}

/// `net.Dial("udp", addr)`.
pub(super) async fn dial_udp(addr: &str) -> Result<tokio::net::UdpSocket, String> {
    let target = tokio::net::lookup_host(addr)
        .await
        .map_err(|e| format!("dial udp {addr}: {}", go_net_text("lookup", &e)))?
        .next()
        .ok_or_else(|| format!("dial udp {addr}: no suitable address found"))?;
    let local: SocketAddr = if target.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let sock = tokio::net::UdpSocket::bind(local)
        .await
        .map_err(|e| format!("dial udp {addr}: {}", go_net_text("socket", &e)))?;
    sock.connect(target)
        .await
        .map_err(|e| format!("dial udp {addr}: {}", go_net_text("connect", &e)))?;
    Ok(sock)
}

/// A network sink's connection: statsd writes datagrams, statsite a byte stream.
pub(super) enum Conn {
    Statsd(tokio::net::UdpSocket),
    Statsite(tokio::net::TcpStream),
}

impl Conn {
    /// The sink's name in Go's messages.
    fn name(&self) -> &'static str {
        match self {
            Conn::Statsd(_) => "statsd",
            Conn::Statsite(_) => "statsite",
        }
    }

    /// The largest batch sent at once.
    fn batch(&self) -> usize {
        match self {
            Conn::Statsd(_) => STATSD_MAX_LEN,
            Conn::Statsite(_) => STATSITE_BUF,
        }
    }

    async fn send(&mut self, d: &[u8]) -> std::io::Result<()> {
        match self {
            Conn::Statsd(sock) => sock.send(d).await.map(|_| ()),
            Conn::Statsite(conn) => conn.write_all(d).await,
        }
    }
}

/// `net.Dial` for a sink; Go's error text on failure.
pub(super) async fn dial(statsd: bool, addr: &str) -> Result<Conn, String> {
    if statsd {
        return dial_udp(addr).await.map(Conn::Statsd);
    }
    tokio::net::TcpStream::connect(addr)
        .await
        .map(Conn::Statsite)
        .map_err(|e| format!("dial tcp {addr}: {}", go_net_text("connect", &e)))
}

/// A network sink's flusher (Go's `StatsdSink` / `StatsiteSink.flushMetrics`): connect,
/// send batches until an error, then discard lines for a while and reconnect.
pub(super) async fn sink_task(statsd: bool, addr: String, mut rx: mpsc::Receiver<String>) {
    let name = if statsd { "statsd" } else { "statsite" };
    loop {
        match dial(statsd, &addr).await {
            Err(e) => log_err(&format!("Error connecting to {name}! Err: {e}")),
            Ok(mut conn) => match sink_session(&mut conn, &mut rx).await {
                Ok(()) => return,
                Err(e) => log_err(&e),
            },
        }
        if !discard_for(&mut rx, RECONNECT_WAIT).await {
            return;
        }
    }
}

/// Sends until an error (Err) or until the queue closes (Ok).
pub(super) async fn sink_session(
    conn: &mut Conn,
    rx: &mut mpsc::Receiver<String>,
) -> Result<(), String> {
    let name = conn.name();
    let mut packer = Packer::new(conn.batch());
    let mut tick = flush_ticker();
    loop {
        tokio::select! {
            line = rx.recv() => {
                let Some(line) = line else {
                    if let Some(d) = packer.take() {
                        let _ = conn.send(&d).await;
                    }
                    return Ok(());
                };
                if let Some(d) = packer.push(&line) {
                    conn.send(&d).await.map_err(write_err("writing to", name))?;
                }
            }
            _ = tick.tick() => {
                if let Some(d) = packer.take() {
                    conn.send(&d).await.map_err(write_err("flushing to", name))?;
                }
            }
        }
    }
}
