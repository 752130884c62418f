//! TCP streams: reading one framed message, the one-request exchange, and address
//! resolution.

use serf_wire::stream::{decode_stream, StreamMsg, StreamOptions};
use serf_wire::{Error as WireError, MAX_PUSH_STATE};
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tracing::debug;

/// How long a partly received stream message may sit before we try to decode it anyway.
/// How streams are framed, checked and timed out (a copy of the core's settings).
#[derive(Clone)]
pub(crate) struct StreamOpts {
    pub(crate) keyring: serf_wire::Keyring,
    pub(crate) verify_incoming: bool,
    pub(crate) label: Vec<u8>,
    pub(crate) tcp_timeout: std::time::Duration,
}

const PARSE_PAUSE: std::time::Duration = std::time::Duration::from_millis(20);

/// Most bytes read for one plaintext stream message before giving up.
const MAX_STREAM_READ: usize = MAX_PUSH_STATE + 64 * 1024;

pub(crate) enum ReadError {
    /// Peer closed before a full message.
    Closed,
    /// Protocol error (reply with an error message).
    Wire(WireError),
    /// Socket error.
    Io(std::io::Error),
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::Closed => f.write_str("EOF"),
            ReadError::Wire(e) => write!(f, "{e}"),
            ReadError::Io(e) => write!(f, "{e}"),
        }
    }
}

/// Reads exactly one stream message (incremental decoding; never reads past it).
pub(crate) async fn read_stream(
    sock: &mut TcpStream,
    opts: &StreamOpts,
    mut on_first: impl FnMut(u8) -> Result<(), ReadError>,
) -> Result<StreamMsg, ReadError> {
    let so = StreamOptions {
        keyring: Some(&opts.keyring),
        verify_incoming: opts.verify_incoming,
        label: &opts.label,
    };
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    let mut chunk = vec![0u8; 64 * 1024];
    // Plaintext stream messages carry no length, so the decoder is retried as data arrives.
    // To keep that linear in the message size, retry only when the socket has no more data
    // for the moment (a short read, or nothing for PARSE_PAUSE) or the buffer has doubled.
    let mut tried_at = 0usize;
    let mut try_now = false;
    loop {
        if try_now && !buf.is_empty() {
            tried_at = buf.len();
            match decode_stream(&buf, &so) {
                Ok((m, _)) => return Ok(m),
                Err(WireError::Eof) => {}
                Err(e) => return Err(ReadError::Wire(e)),
            }
        }
        if buf.len() > MAX_STREAM_READ {
            return Err(ReadError::Wire(WireError::Limit(
                "stream message over 20 MiB",
            )));
        }
        let n = if buf.len() > tried_at {
            match timeout(PARSE_PAUSE, sock.read(&mut chunk)).await {
                Err(_) => {
                    try_now = true;
                    continue;
                }
                Ok(r) => r.map_err(ReadError::Io)?,
            }
        } else {
            sock.read(&mut chunk).await.map_err(ReadError::Io)?
        };
        if n == 0 {
            return Err(ReadError::Closed);
        }
        if let (Some(&first), true) = (chunk.first(), buf.is_empty()) {
            on_first(first)?;
        }
        buf.extend_from_slice(&chunk[..n]);
        try_now = n < chunk.len() || buf.len() >= tried_at.saturating_mul(2);
    }
}

/// Reads and checks the client's label prefix, if labels are configured.
pub(crate) async fn read_label(sock: &mut TcpStream, label: &[u8]) -> Result<(), ReadError> {
    if label.is_empty() {
        return Ok(());
    }
    let mut head = [0u8; 2];
    sock.read_exact(&mut head).await.map_err(ReadError::Io)?;
    if head[0] != serf_wire::msg_type::HAS_LABEL {
        return Err(ReadError::Wire(WireError::Label));
    }
    let mut l = vec![0u8; head[1] as usize];
    sock.read_exact(&mut l).await.map_err(ReadError::Io)?;
    if l != label {
        return Err(ReadError::Wire(WireError::Label));
    }
    Ok(())
}

fn dial_error(to: SocketAddr, e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::ConnectionRefused => {
            format!("dial tcp {to}: connect: connection refused")
        }
        std::io::ErrorKind::TimedOut => format!("dial tcp {to}: i/o timeout"),
        _ => format!("dial tcp {to}: {e}"),
    }
}

/// One request, one reply. `push_pull_with` names the peer of a push/pull (empty when
/// joining by address) for memberlist's debug line, written once connected as in Go.
pub(crate) async fn exchange(
    opts: &StreamOpts,
    to: SocketAddr,
    data: &[u8],
    push_pull_with: Option<&str>,
) -> Result<StreamMsg, String> {
    let t = opts.tcp_timeout;
    let mut sock = match timeout(t, TcpStream::connect(to)).await {
        Err(_) => return Err(format!("dial tcp {to}: i/o timeout")),
        Ok(Err(e)) => return Err(dial_error(to, &e)),
        Ok(Ok(s)) => s,
    };
    metrics::counter!("memberlist.tcp.connect").increment(1);
    if let Some(name) = push_pull_with {
        debug!("Initiating push/pull sync with: {name} {to}");
    }
    let io = async {
        if !opts.label.is_empty() {
            let mut head = vec![serf_wire::msg_type::HAS_LABEL, opts.label.len() as u8];
            head.extend_from_slice(&opts.label);
            sock.write_all(&head).await.map_err(|e| e.to_string())?;
        }
        sock.write_all(data).await.map_err(|e| e.to_string())?;
        metrics::counter!("memberlist.tcp.sent").increment(data.len() as u64);
        read_stream(&mut sock, opts, |_| Ok(()))
            .await
            .map_err(|e| e.to_string())
    };
    match timeout(t, io).await {
        Err(_) => Err(format!("read tcp {to}: i/o timeout")),
        Ok(Err(e)) => Err(e),
        Ok(Ok(StreamMsg::Err(e))) => Err(format!("remote error: {}", e.error)),
        Ok(Ok(m)) => Ok(m),
    }
}

/// Resolves `host`, `host:port` or `[v6]:port` (default port when none is given).
pub(crate) async fn resolve(host: &str, default_port: u16) -> Result<Vec<SocketAddr>, String> {
    // memberlist's resolveAddr: ensure a port, split, parse the port, then an IP
    // literal or a name lookup; errors worded as Go's.
    let with_port = crate::addr::ensure_port(host, default_port);
    let (h, p) = crate::addr::split_host_port(&with_port)?;
    let port = crate::addr::parse_port_u16(p)?;
    let literal = h.split('%').next().unwrap_or(h);
    if let Ok(ip) = literal.parse::<std::net::IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let addrs: Vec<SocketAddr> = match tokio::net::lookup_host((h, port)).await {
        Ok(a) => a.collect(),
        Err(_) => return Err(format!("lookup {h}: no such host")),
    };
    if addrs.is_empty() {
        return Err(format!("lookup {h}: no such host"));
    }
    // Go joins the first address of each name.
    Ok(addrs.into_iter().take(1).collect())
}
