//! An RPC client for the agent protocol (what the CLI uses; drives Go agents too).
//!
//! Behaves like Go's `client.RPCClient` as far as the wire is concerned: Seq numbers from 1,
//! request header and body flushed together, responses dispatched by Seq. Streams
//! (`stream`, `monitor`, `query`) are registered by Seq; their records may arrive while a
//! plain call waits for its answer and are queued for [`Client::next_record`]. A header for
//! a Seq nobody waits for is skipped *without* its body, like Go's client does (the body is
//! then read as a header that keeps the previous header's fields).

use super::{ObjectReader, ReadError};
use serf_wire::msgpack::{Flavor, Reader, Writer};
use std::collections::{HashSet, VecDeque};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

/// Go's client dial timeout and write deadline.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(10);

/// What a pending call fails with once the connection is gone (Go's `clientClosed`).
pub(crate) const CLIENT_CLOSED: &str = "client closed";

/// The header text after which Go sends no body.
const AUTH_REQUIRED: &str = "Authentication required";

/// A connected, handshaken client.
#[derive(Debug)]
pub(crate) struct Client {
    rd: ObjectReader<OwnedReadHalf>,
    wr: OwnedWriteHalf,
    seq: u64,
    /// Go decodes every response header into the same struct: absent keys keep the
    /// previous values.
    last_error: String,
    last_seq: u64,
    /// Seqs of registered streams (their start confirmation already received).
    streams: HashSet<u64>,
    /// Stream records read while waiting for something else.
    pending: VecDeque<(u64, Vec<u8>)>,
    closed: bool,
}

/// A member as the RPC reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct RpcMember {
    /// Name.
    pub name: String,
    /// IP (`None` if the agent sent no address or one of an odd length).
    pub addr: Option<IpAddr>,
    /// The raw `Addr` bytes.
    pub addr_bytes: Vec<u8>,
    /// Port.
    pub port: u16,
    /// Tags.
    pub tags: Vec<(String, String)>,
    /// Status text.
    pub status: String,
    /// memberlist protocol min, max, cur.
    pub protocol: [u8; 3],
    /// Serf protocol min, max, cur.
    pub delegate: [u8; 3],
}

/// A `KeyResponse` body.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct KeyResponse {
    /// Key → number of nodes holding it (`list-keys` only; `None` when nil).
    pub keys: Option<Vec<(String, i64)>>,
    /// Node → message.
    pub messages: Vec<(String, String)>,
    /// Nodes that reported an error.
    pub num_err: i64,
    /// Nodes in the cluster.
    pub num_nodes: i64,
    /// Nodes that answered.
    pub num_resp: i64,
}

/// A network coordinate (`get-coordinate`).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct RpcCoordinate {
    /// Euclidean part.
    pub vec: Vec<f64>,
    /// Error estimate.
    pub error: f64,
    /// Adjustment.
    pub adjustment: f64,
    /// Height.
    pub height: f64,
}

/// The `query` request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct QueryRequest {
    /// `FilterNodes` (`None`: nil).
    pub filter_nodes: Option<Vec<String>>,
    /// `FilterTags` (`None`: nil).
    pub filter_tags: Option<Vec<(String, String)>>,
    /// `Name`.
    pub name: String,
    /// `Payload` (`None`: nil).
    pub payload: Option<Vec<u8>>,
    /// `RelayFactor`.
    pub relay_factor: u8,
    /// `RequestAck`.
    pub request_ack: bool,
    /// `Timeout` in nanoseconds.
    pub timeout_nanos: i64,
}

/// One record of a query stream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct QueryRecord {
    /// `ack`, `response` or `done`.
    pub kind: String,
    /// Sender.
    pub from: String,
    /// Response payload.
    pub payload: Vec<u8>,
}

/// A Go `net.DialTimeout("tcp", addr)` style error text for an address that cannot even be
/// split or resolved.
fn split_host_port(addr: &str) -> Result<(String, String), String> {
    let missing = || format!("dial tcp: address {addr}: missing port in address");
    let too_many = || format!("dial tcp: address {addr}: too many colons in address");
    if let Some(rest) = addr.strip_prefix('[') {
        let Some(end) = rest.find(']') else {
            return Err(format!("dial tcp: address {addr}: missing ']' in address"));
        };
        let host = &rest[..end];
        let after = &rest[end + 1..];
        return match after.strip_prefix(':') {
            Some(port) => Ok((host.to_string(), port.to_string())),
            None if after.is_empty() => Err(missing()),
            None => Err(format!("dial tcp: address {addr}: missing port in address")),
        };
    }
    let Some(i) = addr.rfind(':') else {
        return Err(missing());
    };
    let host = &addr[..i];
    if host.contains(':') {
        return Err(too_many());
    }
    Ok((host.to_string(), addr[i + 1..].to_string()))
}

async fn resolve(addr: &str) -> Result<Vec<SocketAddr>, String> {
    if addr.is_empty() {
        return Err("dial tcp: missing address".to_string());
    }
    let (host, port) = split_host_port(addr)?;
    let port: u16 = match port.parse::<u64>() {
        Ok(p) if p <= 65535 => p as u16,
        Ok(_) => return Err(format!("dial tcp: address {port}: invalid port")),
        Err(_) if port.is_empty() => 0,
        Err(_) => return Err(format!("dial tcp: lookup tcp/{port}: unknown port")),
    };
    if host.is_empty() {
        return Ok(vec![SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port)]);
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let found: Vec<SocketAddr> = match tokio::net::lookup_host((host.as_str(), port)).await {
        Ok(list) => list.collect(),
        Err(_) => Vec::new(),
    };
    if found.is_empty() {
        Err(format!("dial tcp: lookup {host}: no such host"))
    } else {
        Ok(found)
    }
}

fn dial_error(addr: &SocketAddr, e: &std::io::Error) -> String {
    let addr = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => format!(":{}", addr.port()),
        _ => addr.to_string(),
    };
    let text = match e.kind() {
        std::io::ErrorKind::ConnectionRefused => "connection refused".to_string(),
        std::io::ErrorKind::TimedOut => "connection timed out".to_string(),
        std::io::ErrorKind::HostUnreachable => "no route to host".to_string(),
        std::io::ErrorKind::NetworkUnreachable => "network is unreachable".to_string(),
        std::io::ErrorKind::AddrNotAvailable => "cannot assign requested address".to_string(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        _ => serf_gocompat::errors::io_text(e),
    };
    format!("dial tcp {addr}: connect: {text}")
}

impl Client {
    /// Connects, handshakes and (if `auth` is not empty) authenticates. Errors are the texts
    /// Go's client returns (`dial tcp 127.0.0.1:1: connect: connection refused`,
    /// `Invalid authentication token`, ...).
    pub(crate) async fn connect(addr: &str, auth: &str) -> Result<Client, String> {
        let targets = resolve(addr).await?;
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        let mut first_err = None;
        let mut sock = None;
        for t in &targets {
            match tokio::time::timeout_at(deadline, TcpStream::connect(t)).await {
                Err(_) => {
                    first_err.get_or_insert_with(|| format!("dial tcp {t}: i/o timeout"));
                    break;
                }
                Ok(Err(e)) => {
                    first_err.get_or_insert_with(|| dial_error(t, &e));
                }
                Ok(Ok(s)) => {
                    sock = Some(s);
                    break;
                }
            }
        }
        let Some(sock) = sock else {
            return Err(first_err.unwrap_or_else(|| format!("dial tcp {addr}: no address")));
        };
        let _ = sock.set_nodelay(true);
        let (rd, wr) = sock.into_split();
        let mut c = Client {
            rd: ObjectReader::new(rd),
            wr,
            seq: 0,
            last_error: String::new(),
            last_seq: 0,
            streams: HashSet::new(),
            pending: VecDeque::new(),
            closed: false,
        };
        let mut w = Writer::with_flavor(Flavor::Rpc);
        w.map(1).str("Version").uint(1);
        c.call("handshake", Some(w.into_vec()), false).await?;
        if !auth.is_empty() {
            let mut w = Writer::with_flavor(Flavor::Rpc);
            w.map(1).str("AuthKey").str(auth);
            c.call("auth", Some(w.into_vec()), false).await?;
        }
        Ok(c)
    }

    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// Writes a request header (and body) in one write, with Go's 10 s write deadline.
    async fn send(&mut self, command: &str, seq: u64, body: Option<&[u8]>) -> Result<(), String> {
        if self.closed {
            return Err(CLIENT_CLOSED.to_string());
        }
        let mut w = Writer::with_flavor(Flavor::Rpc);
        w.map(2).str("Command").str(command).str("Seq").uint(seq);
        if let Some(b) = body {
            w.raw(b);
        }
        match tokio::time::timeout(TIMEOUT, self.wr.write_all(&w.into_vec())).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => {
                self.closed = true;
                Err(e.to_string())
            }
            Err(_) => {
                self.closed = true;
                Err("i/o timeout".to_string())
            }
        }
    }

    /// The next object from the agent; any failure closes the client.
    async fn next_object(&mut self) -> Result<Vec<u8>, String> {
        if self.closed {
            return Err(CLIENT_CLOSED.to_string());
        }
        match self.rd.next().await {
            Ok(o) => Ok(o),
            Err(ReadError::Closed) | Err(ReadError::Bad(_)) => {
                self.closed = true;
                Err(CLIENT_CLOSED.to_string())
            }
        }
    }

    /// Reads the next response header, keeping the previous fields for absent keys.
    async fn next_header(&mut self) -> Result<(String, u64), String> {
        let obj = self.next_object().await?;
        let (mut err, mut seq) = (self.last_error.clone(), self.last_seq);
        let ok = Reader::new(&obj).struct_fields(|k, r| {
            match k {
                b"Error" => err = r.string()?,
                b"Seq" => seq = r.uint()?,
                _ => return Ok(false),
            }
            Ok(true)
        });
        if ok.is_err() {
            // Go's listener stops on a header it cannot decode and closes the client.
            self.closed = true;
            return Err(CLIENT_CLOSED.to_string());
        }
        self.last_error.clone_from(&err);
        self.last_seq = seq;
        Ok((err, seq))
    }

    /// Reads headers until the one for `seq`, queueing records of registered streams.
    async fn wait_header(&mut self, seq: u64) -> Result<String, String> {
        loop {
            let (err, s) = self.next_header().await?;
            if s == seq {
                return Ok(err);
            }
            if self.streams.contains(&s) {
                let body = self.next_object().await?;
                self.pending.push_back((s, body));
            }
        }
    }

    /// A plain request/response (Go's `genericRPC`): sends the request, waits for the header
    /// with its Seq and reads a body if `has_body` (also when `Error` is set, except for
    /// `Authentication required`). A non-empty `Error` is returned as `Err`.
    pub(crate) async fn call(
        &mut self,
        command: &str,
        body: Option<Vec<u8>>,
        has_body: bool,
    ) -> Result<Vec<u8>, String> {
        let seq = self.next_seq();
        self.send(command, seq, body.as_deref()).await?;
        let err = self.wait_header(seq).await?;
        let body = if has_body && err != AUTH_REQUIRED {
            self.next_object().await?
        } else {
            Vec::new()
        };
        if err.is_empty() {
            Ok(body)
        } else {
            Err(err)
        }
    }

    /// Starts a stream-like command (`stream`, `monitor`, `query`): sends it, waits for the
    /// start confirmation (its `Error` fails the call) and registers the Seq. Returns the Seq.
    pub(crate) async fn start_stream(
        &mut self,
        command: &str,
        body: Vec<u8>,
    ) -> Result<u64, String> {
        let seq = self.next_seq();
        self.send(command, seq, Some(&body)).await?;
        let err = self.wait_header(seq).await?;
        if !err.is_empty() {
            return Err(err);
        }
        self.streams.insert(seq);
        Ok(seq)
    }

    /// The next record of any registered stream: `(seq, body)`. Fails with
    /// [`CLIENT_CLOSED`] once the connection is gone. Cancel-safe.
    pub(crate) async fn next_record(&mut self) -> Result<(u64, Vec<u8>), String> {
        if let Some(r) = self.pending.pop_front() {
            return Ok(r);
        }
        loop {
            let (_, s) = self.next_header().await?;
            if self.streams.contains(&s) {
                let body = self.next_object().await?;
                return Ok((s, body));
            }
        }
    }

    /// Forgets a stream locally (later headers for it are skipped without their body).
    pub(crate) fn deregister(&mut self, seq: u64) {
        self.streams.remove(&seq);
        self.pending.retain(|(s, _)| *s != seq);
    }

    /// Go's `Stop(handle)`: deregisters the stream, then sends `stop {Stop: seq}`.
    pub(crate) async fn stop(&mut self, seq: u64) -> Result<(), String> {
        self.deregister(seq);
        let mut w = Writer::with_flavor(Flavor::Rpc);
        w.map(1).str("Stop").uint(seq);
        self.call("stop", Some(w.into_vec()), false)
            .await
            .map(|_| ())
    }

    /// Closes the connection.
    pub(crate) async fn close(&mut self) {
        self.closed = true;
        let _ = self.wr.shutdown().await;
    }

    /// `members`.
    pub(crate) async fn members(&mut self) -> Result<Vec<RpcMember>, String> {
        let body = self.call("members", None, true).await?;
        decode_members(&body).map_err(|e| e.to_string())
    }

    /// `members-filtered`.
    pub(crate) async fn members_filtered(
        &mut self,
        name: &str,
        status: &str,
        tags: &[(String, String)],
    ) -> Result<Vec<RpcMember>, String> {
        let mut w = Writer::with_flavor(Flavor::Rpc);
        w.map(3).str("Name").str(name).str("Status").str(status);
        w.str("Tags").str_map(
            tags.len(),
            tags.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        );
        let body = self
            .call("members-filtered", Some(w.into_vec()), true)
            .await?;
        decode_members(&body).map_err(|e| e.to_string())
    }

    /// `join`: returns the number of nodes contacted (also on error, as Go does).
    pub(crate) async fn join(
        &mut self,
        addrs: &[String],
        replay: bool,
    ) -> (i64, Result<(), String>) {
        let mut w = Writer::with_flavor(Flavor::Rpc);
        w.map(2).str("Existing").array(addrs.len());
        for a in addrs {
            w.str(a);
        }
        w.str("Replay").bool(replay);
        let seq = self.next_seq();
        if let Err(e) = self.send("join", seq, Some(&w.into_vec())).await {
            return (0, Err(e));
        }
        let err = match self.wait_header(seq).await {
            Ok(e) => e,
            Err(e) => return (0, Err(e)),
        };
        if err == AUTH_REQUIRED {
            return (0, Err(err));
        }
        let body = match self.next_object().await {
            Ok(b) => b,
            Err(e) => return (0, Err(e)),
        };
        let mut num = 0i64;
        let decoded = Reader::new(&body).struct_fields(|k, r| {
            if k == b"Num" {
                num = r.i64()?;
                return Ok(true);
            }
            Ok(false)
        });
        if let Err(e) = decoded {
            return (num, Err(e.to_string()));
        }
        (num, if err.is_empty() { Ok(()) } else { Err(err) })
    }

    /// `leave`.
    pub(crate) async fn leave(&mut self) -> Result<(), String> {
        self.call("leave", None, false).await.map(|_| ())
    }

    /// `force-leave`.
    pub(crate) async fn force_leave(&mut self, node: &str, prune: bool) -> Result<(), String> {
        let mut w = Writer::with_flavor(Flavor::Rpc);
        w.map(2).str("Node").str(node).str("Prune").bool(prune);
        self.call("force-leave", Some(w.into_vec()), false)
            .await
            .map(|_| ())
    }

    /// `event` (`payload` `None` is sent as nil).
    pub(crate) async fn user_event(
        &mut self,
        name: &str,
        payload: Option<&[u8]>,
        coalesce: bool,
    ) -> Result<(), String> {
        let mut w = Writer::with_flavor(Flavor::Rpc);
        w.map(3)
            .str("Coalesce")
            .bool(coalesce)
            .str("Name")
            .str(name);
        w.str("Payload");
        match payload {
            Some(p) => w.bytes(p),
            None => w.nil(),
        };
        self.call("event", Some(w.into_vec()), false)
            .await
            .map(|_| ())
    }

    /// `tags` (`delete` `None` is sent as nil).
    pub(crate) async fn update_tags(
        &mut self,
        tags: &[(String, String)],
        delete: Option<&[String]>,
    ) -> Result<(), String> {
        let mut w = Writer::with_flavor(Flavor::Rpc);
        w.map(2).str("DeleteTags");
        match delete {
            Some(d) => {
                w.array(d.len());
                for k in d {
                    w.str(k);
                }
            }
            None => {
                w.nil();
            }
        }
        w.str("Tags").str_map(
            tags.len(),
            tags.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        );
        self.call("tags", Some(w.into_vec()), false)
            .await
            .map(|_| ())
    }

    /// `respond` (no CLI command answers queries; kept for programs driving an agent).
    #[allow(dead_code)]
    pub(crate) async fn respond(&mut self, id: u64, payload: &[u8]) -> Result<(), String> {
        let mut w = Writer::with_flavor(Flavor::Rpc);
        w.map(2).str("ID").uint(id).str("Payload").bytes(payload);
        self.call("respond", Some(w.into_vec()), false)
            .await
            .map(|_| ())
    }

    /// `install-key`, `use-key`, `remove-key` (with `Some(key)`) or `list-keys` (`None`).
    /// The response body is returned also when the header carries an error.
    pub(crate) async fn key_op(
        &mut self,
        command: &str,
        key: Option<&str>,
    ) -> (KeyResponse, Result<(), String>) {
        let body = key.map(|k| {
            let mut w = Writer::with_flavor(Flavor::Rpc);
            w.map(1).str("Key").str(k);
            w.into_vec()
        });
        let seq = self.next_seq();
        if let Err(e) = self.send(command, seq, body.as_deref()).await {
            return (KeyResponse::default(), Err(e));
        }
        let err = match self.wait_header(seq).await {
            Ok(e) => e,
            Err(e) => return (KeyResponse::default(), Err(e)),
        };
        if err == AUTH_REQUIRED {
            return (KeyResponse::default(), Err(err));
        }
        let body = match self.next_object().await {
            Ok(b) => b,
            Err(e) => return (KeyResponse::default(), Err(e)),
        };
        match decode_key_response(&body) {
            Ok(resp) => (resp, if err.is_empty() { Ok(()) } else { Err(err) }),
            Err(e) => (KeyResponse::default(), Err(e.to_string())),
        }
    }

    /// `stats`: sections of raw key/value bytes (`None` when the agent sent nil).
    #[allow(clippy::type_complexity)]
    pub(crate) async fn stats(
        &mut self,
    ) -> Result<Option<Vec<(Vec<u8>, Option<Vec<(Vec<u8>, Vec<u8>)>>)>>, String> {
        let body = self.call("stats", None, true).await?;
        decode_stats(&body).map_err(|e| e.to_string())
    }

    /// `get-coordinate`: `None` when the agent has none for `node`.
    pub(crate) async fn get_coordinate(
        &mut self,
        node: &str,
    ) -> Result<Option<RpcCoordinate>, String> {
        let mut w = Writer::with_flavor(Flavor::Rpc);
        w.map(1).str("Node").str(node);
        let body = self
            .call("get-coordinate", Some(w.into_vec()), true)
            .await?;
        let mut coord = RpcCoordinate::default();
        let mut ok = false;
        Reader::new(&body)
            .struct_fields(|k, r| {
                match k {
                    b"Ok" => ok = r.bool()?,
                    b"Coord" => r.struct_fields(|k, r| {
                        match k {
                            b"Adjustment" => coord.adjustment = r.f64()?,
                            b"Error" => coord.error = r.f64()?,
                            b"Height" => coord.height = r.f64()?,
                            b"Vec" => {
                                coord.vec.clear();
                                if !r.try_nil()? {
                                    let n = r.array_len()?;
                                    for _ in 0..n {
                                        coord.vec.push(r.f64()?);
                                    }
                                }
                            }
                            _ => return Ok(false),
                        }
                        Ok(true)
                    })?,
                    _ => return Ok(false),
                }
                Ok(true)
            })
            .map_err(|e| e.to_string())?;
        Ok(ok.then_some(coord))
    }

    /// Starts `stream {Type: filter}`; records arrive through [`Client::next_record`].
    pub(crate) async fn stream(&mut self, filter: &str) -> Result<u64, String> {
        let mut w = Writer::with_flavor(Flavor::Rpc);
        w.map(1).str("Type").str(filter);
        self.start_stream("stream", w.into_vec()).await
    }

    /// Starts `monitor {LogLevel: level}`; records arrive through [`Client::next_record`].
    pub(crate) async fn monitor(&mut self, level: &str) -> Result<u64, String> {
        let mut w = Writer::with_flavor(Flavor::Rpc);
        w.map(1).str("LogLevel").str(level);
        self.start_stream("monitor", w.into_vec()).await
    }

    /// Starts `query`; records arrive through [`Client::next_record`] (decode them with
    /// [`decode_query_record`]).
    pub(crate) async fn query(&mut self, q: &QueryRequest) -> Result<u64, String> {
        self.start_stream("query", encode_query(q)).await
    }
}

/// Encodes a `query` request body (keys sorted like Go's struct encoding).
pub(crate) fn encode_query(q: &QueryRequest) -> Vec<u8> {
    let mut w = Writer::with_flavor(Flavor::Rpc);
    w.map(7).str("FilterNodes");
    match &q.filter_nodes {
        Some(n) => {
            w.array(n.len());
            for x in n {
                w.str(x);
            }
        }
        None => {
            w.nil();
        }
    }
    w.str("FilterTags");
    match &q.filter_tags {
        Some(t) => {
            w.str_map(t.len(), t.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        }
        None => {
            w.nil();
        }
    }
    w.str("Name").str(&q.name).str("Payload");
    match &q.payload {
        Some(p) => w.bytes(p),
        None => w.nil(),
    };
    w.str("RelayFactor").uint(u64::from(q.relay_factor));
    w.str("RequestAck").bool(q.request_ack);
    w.str("Timeout").int(q.timeout_nanos);
    w.into_vec()
}

/// Decodes a query record `{From, Payload, Type}`.
pub(crate) fn decode_query_record(body: &[u8]) -> Result<QueryRecord, serf_wire::Error> {
    let mut rec = QueryRecord::default();
    Reader::new(body).struct_fields(|k, r| {
        match k {
            b"From" => rec.from = r.string()?,
            b"Payload" => rec.payload = r.byte_vec()?,
            b"Type" => rec.kind = r.string()?,
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    Ok(rec)
}

/// Decodes a monitor record `{Log}`.
pub(crate) fn decode_log_record(body: &[u8]) -> Result<Vec<u8>, serf_wire::Error> {
    let mut log = Vec::new();
    Reader::new(body).struct_fields(|k, r| {
        if k == b"Log" {
            log = r.str_bytes()?.to_vec();
            return Ok(true);
        }
        Ok(false)
    })?;
    Ok(log)
}

fn decode_key_response(body: &[u8]) -> Result<KeyResponse, serf_wire::Error> {
    let mut resp = KeyResponse::default();
    Reader::new(body).struct_fields(|k, r| {
        match k {
            b"Keys" => {
                resp.keys = if r.try_nil()? {
                    None
                } else {
                    let n = r.map_len()?;
                    let mut v = Vec::with_capacity(n.min(1024));
                    for _ in 0..n {
                        let key = r.string()?;
                        let count = r.i64()?;
                        v.push((key, count));
                    }
                    Some(v)
                }
            }
            b"Messages" => resp.messages = r.str_map()?,
            b"NumErr" => resp.num_err = r.i64()?,
            b"NumNodes" => resp.num_nodes = r.i64()?,
            b"NumResp" => resp.num_resp = r.i64()?,
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    Ok(resp)
}

#[allow(clippy::type_complexity)]
fn decode_stats(
    body: &[u8],
) -> Result<Option<Vec<(Vec<u8>, Option<Vec<(Vec<u8>, Vec<u8>)>>)>>, serf_wire::Error> {
    let mut r = Reader::new(body);
    if r.try_nil()? {
        return Ok(None);
    }
    let n = r.map_len()?;
    let mut out = Vec::with_capacity(n.min(64));
    for _ in 0..n {
        let section = r.str_bytes()?.to_vec();
        if r.try_nil()? {
            out.push((section, None));
            continue;
        }
        let m = r.map_len()?;
        let mut kv = Vec::with_capacity(m.min(1024));
        for _ in 0..m {
            let k = r.str_bytes()?.to_vec();
            let v = r.str_bytes()?.to_vec();
            kv.push((k, v));
        }
        out.push((section, Some(kv)));
    }
    Ok(Some(out))
}

/// Decodes `{Members: [...]}`.
pub(crate) fn decode_members(body: &[u8]) -> Result<Vec<RpcMember>, serf_wire::Error> {
    let mut out = Vec::new();
    Reader::new(body).struct_fields(|k, r| {
        if k != b"Members" {
            return Ok(false);
        }
        if r.try_nil()? {
            return Ok(true);
        }
        let n = r.array_len()?;
        for _ in 0..n {
            let mut m = RpcMember::default();
            r.struct_fields(|k, r| {
                match k {
                    b"Name" => m.name = r.string()?,
                    b"Addr" => {
                        let b = r.bytes()?;
                        m.addr_bytes = b.to_vec();
                        m.addr = serf_wire::ip_from_bytes(b).ok();
                    }
                    b"Port" => m.port = r.u16()?,
                    b"Tags" => m.tags = r.str_map()?,
                    b"Status" => m.status = r.string()?,
                    b"ProtocolMin" => m.protocol[0] = r.u8()?,
                    b"ProtocolMax" => m.protocol[1] = r.u8()?,
                    b"ProtocolCur" => m.protocol[2] = r.u8()?,
                    b"DelegateMin" => m.delegate[0] = r.u8()?,
                    b"DelegateMax" => m.delegate[1] = r.u8()?,
                    b"DelegateCur" => m.delegate[2] = r.u8()?,
                    _ => return Ok(false),
                }
                Ok(true)
            })?;
            out.push(m);
        }
        Ok(true)
    })?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn query_body_matches_the_real_cli() {
        // `serf query -timeout=2s cli-q payload` (docs/agent-rpc.md 4.9).
        let q = QueryRequest {
            filter_nodes: None,
            filter_tags: Some(Vec::new()),
            name: "cli-q".into(),
            payload: Some(b"payload".to_vec()),
            relay_factor: 0,
            request_ack: true,
            timeout_nanos: 2_000_000_000,
        };
        assert_eq!(
            hex(&encode_query(&q)),
            "87ab46696c7465724e6f646573c0aa46696c7465725461677380a44e616d65a5636c692d71a75061796c6f6164c4077061796c6f6164ab52656c6179466163746f7200aa5265717565737441636bc3a754696d656f7574ce77359400"
        );
    }

    #[test]
    fn query_records() {
        let ack = [
            0x83, 0xa4, b'F', b'r', b'o', b'm', 0xa5, b'a', b'l', b'p', b'h', b'a', 0xa7, b'P',
            b'a', b'y', b'l', b'o', b'a', b'd', 0xc0, 0xa4, b'T', b'y', b'p', b'e', 0xa3, b'a',
            b'c', b'k',
        ];
        let rec = decode_query_record(&ack).expect("decodes");
        assert_eq!(rec.kind, "ack");
        assert_eq!(rec.from, "alpha");
        assert!(rec.payload.is_empty());
    }

    #[test]
    fn split_addresses_like_go() {
        assert_eq!(
            split_host_port("127.0.0.1:7373"),
            Ok(("127.0.0.1".into(), "7373".into()))
        );
        assert_eq!(
            split_host_port("[::1]:7373"),
            Ok(("::1".into(), "7373".into()))
        );
        assert_eq!(
            split_host_port("127.0.0.1").err().as_deref(),
            Some("dial tcp: address 127.0.0.1: missing port in address")
        );
        assert_eq!(
            split_host_port("::1:5").err().as_deref(),
            Some("dial tcp: address ::1:5: too many colons in address")
        );
    }
}
