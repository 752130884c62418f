//! [`Client`]: an async client for the agent RPC, what `serf`'s CLI commands use; it drives
//! Go agents as well as ours.
//!
//! On the wire it behaves like Go's `client.RPCClient`: Seq numbers from 1, request header
//! and body written together, responses dispatched by Seq. Streams (`stream`, `monitor`,
//! `query`) are registered by Seq; their records may arrive while a plain call waits for
//! its answer and are queued for [`Client::next_record`]. A header for a Seq nobody waits
//! for is skipped *without* its body, like Go's client does (the body is then read as a
//! header that keeps the previous header's fields).
//!
//! The client runs no background task: records are read when [`Client::next_record`] or
//! [`Client::recv`] is awaited (both are cancel-safe, so they fit in `tokio::select!`).

use crate::body::Body;
use crate::dial::{dial_error, resolve};
use crate::error::{ClientError, DecodeError};
use crate::header::{Command, ResponseHeader};
use crate::reader::ObjectReader;
use crate::records::{LogRecord, QueryRecord, StreamEvent};
use crate::requests::{
    AuthRequest, CoordinateRequest, EventRequest, ForceLeaveRequest, HandshakeRequest, JoinRequest,
    KeyRequest, MembersFilteredRequest, MonitorRequest, QueryRequest, RespondRequest, StopRequest,
    StreamRequest, TagsRequest,
};
use crate::responses::{
    Coordinate, CoordinateResponse, JoinResponse, KeyResponse, Member, MembersResponse,
    StatsResponse,
};
use std::collections::{HashSet, VecDeque};
use std::marker::PhantomData;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

/// Go's client dial timeout and write deadline.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// The header text after which the agent sends no body.
pub const AUTH_REQUIRED: &str = "Authentication required";

/// One stream record as read: the Seq of the stream it belongs to and its raw body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The Seq of the `stream`, `monitor` or `query` request.
    pub seq: u64,
    /// The record's msgpack bytes.
    pub body: Vec<u8>,
}

/// A registered stream whose records decode as `T` ([`StreamEvent`], [`LogRecord`] or
/// [`QueryRecord`]).
pub struct StreamHandle<T> {
    seq: u64,
    _records: PhantomData<fn() -> T>,
}

impl<T> StreamHandle<T> {
    fn new(seq: u64) -> Self {
        StreamHandle {
            seq,
            _records: PhantomData,
        }
    }

    /// The Seq of the request that started the stream.
    pub fn seq(&self) -> u64 {
        self.seq
    }
}

impl<T: Body> StreamHandle<T> {
    /// Decodes `rec` if it belongs to this stream (`None` if it does not).
    pub fn decode(&self, rec: &Record) -> Option<Result<T, DecodeError>> {
        (rec.seq == self.seq).then(|| T::decode(&rec.body))
    }
}

impl<T> Clone for StreamHandle<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for StreamHandle<T> {}

impl<T> std::fmt::Debug for StreamHandle<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamHandle")
            .field("seq", &self.seq)
            .finish()
    }
}

/// The outcome of a key command: the agent sends its [`KeyResponse`] also with an error
/// (the per-node messages explain it).
pub type KeyOutcome = (KeyResponse, Result<(), ClientError>);

/// A connected, handshaken (and, with a token, authenticated) agent RPC client.
///
/// ```no_run
/// # async fn demo() -> Result<(), serf_rpc::ClientError> {
/// use serf_rpc::{Client, QueryRecordType, QueryRequest};
///
/// let mut client = Client::connect("127.0.0.1:7373", "").await?;
/// for m in client.members().await? {
///     println!("{} {:?}:{} {}", m.name, m.ip(), m.port, m.status);
/// }
/// let query = QueryRequest {
///     name: "uptime".into(),
///     request_ack: true,
///     ..QueryRequest::default()
/// };
/// let handle = client.query(&query).await?;
/// loop {
///     let rec = client.recv(&handle).await?;
///     match rec.kind {
///         QueryRecordType::Response => println!("{}: {:?}", rec.from, rec.payload),
///         QueryRecordType::Done => break,
///         _ => {}
///     }
/// }
/// client.close().await;
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct Client {
    rd: ObjectReader<OwnedReadHalf>,
    wr: OwnedWriteHalf,
    seq: u64,
    /// Go decodes every response header into the same struct: absent keys keep the
    /// previous values.
    last: ResponseHeader,
    /// Seqs of registered streams (their start confirmation already received).
    streams: HashSet<u64>,
    /// Stream records read while waiting for something else.
    pending: VecDeque<Record>,
    closed: bool,
}

impl Client {
    /// Connects to `addr` (`host:port`), handshakes and, if `auth` is not empty,
    /// authenticates. Errors read as Go's client's (`dial tcp 127.0.0.1:1: connect:
    /// connection refused`, `Invalid authentication token`, ...).
    pub async fn connect(addr: &str, auth: &str) -> Result<Client, ClientError> {
        let targets = resolve(addr).await.map_err(ClientError::Dial)?;
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
            return Err(ClientError::Dial(
                first_err.unwrap_or_else(|| format!("dial tcp {addr}: no address")),
            ));
        };
        let _ = sock.set_nodelay(true);
        Self::handshake(sock, auth).await
    }

    /// `handshake {Version: 1}` (and `auth` if `auth` is not empty) on an open connection;
    /// [`Client::connect`] dials and calls this.
    pub async fn handshake(sock: TcpStream, auth: &str) -> Result<Client, ClientError> {
        let (rd, wr) = sock.into_split();
        let mut c = Client {
            rd: ObjectReader::new(rd),
            wr,
            seq: 0,
            last: ResponseHeader::default(),
            streams: HashSet::new(),
            pending: VecDeque::new(),
            closed: false,
        };
        let hs = HandshakeRequest { version: 1 };
        c.call(Command::Handshake, Some(&hs.encode()), false)
            .await?;
        if !auth.is_empty() {
            c.auth(auth).await?;
        }
        Ok(c)
    }

    /// `auth`: authenticates with the agent's `rpc_auth` token ([`Client::connect`] does
    /// this when given a token).
    pub async fn auth(&mut self, token: &str) -> Result<(), ClientError> {
        let a = AuthRequest {
            auth_key: token.to_string(),
        };
        self.call(Command::Auth, Some(&a.encode()), false)
            .await
            .map(|_| ())
    }

    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// Writes a request header (and body) in one write, with Go's 10 s write deadline.
    async fn send(
        &mut self,
        command: Command,
        seq: u64,
        body: Option<&[u8]>,
    ) -> Result<(), ClientError> {
        if self.closed {
            return Err(ClientError::Closed);
        }
        let mut out = crate::RequestHeader {
            command: command.name().to_string(),
            seq,
        }
        .encode();
        if let Some(b) = body {
            out.extend_from_slice(b);
        }
        match tokio::time::timeout(TIMEOUT, self.wr.write_all(&out)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => {
                self.closed = true;
                Err(ClientError::Io(e))
            }
            Err(_) => {
                self.closed = true;
                Err(ClientError::Timeout)
            }
        }
    }

    /// The next object from the agent; any failure closes the client.
    async fn next_object(&mut self) -> Result<Vec<u8>, ClientError> {
        if self.closed {
            return Err(ClientError::Closed);
        }
        match self.rd.next().await {
            Ok(o) => Ok(o),
            // Go's client treats every read failure as the end of the connection.
            Err(_) => {
                self.closed = true;
                Err(ClientError::Closed)
            }
        }
    }

    /// Reads the next response header, keeping the previous fields for absent keys.
    async fn next_header(&mut self) -> Result<ResponseHeader, ClientError> {
        let obj = self.next_object().await?;
        match ResponseHeader::decode_after(&obj, &self.last) {
            Ok(h) => {
                self.last.clone_from(&h);
                Ok(h)
            }
            Err(_) => {
                // Go's listener stops on a header it cannot decode and closes the client.
                self.closed = true;
                Err(ClientError::Closed)
            }
        }
    }

    /// Reads headers until the one for `seq`, queueing records of registered streams.
    /// Returns its `Error` text.
    async fn wait_header(&mut self, seq: u64) -> Result<String, ClientError> {
        loop {
            let h = self.next_header().await?;
            if h.seq == seq {
                return Ok(h.error);
            }
            if self.streams.contains(&h.seq) {
                let body = self.next_object().await?;
                self.pending.push_back(Record { seq: h.seq, body });
            }
        }
    }

    /// A plain request/response (Go's `genericRPC`): sends the request, waits for the header
    /// with its Seq and reads a body if `has_body` (also when `Error` is set, except for
    /// [`AUTH_REQUIRED`]). A non-empty `Error` is returned as [`ClientError::Remote`].
    async fn call(
        &mut self,
        command: Command,
        body: Option<&[u8]>,
        has_body: bool,
    ) -> Result<Vec<u8>, ClientError> {
        let (body, err) = self.call_keeping_body(command, body, has_body).await?;
        if err.is_empty() {
            Ok(body)
        } else {
            Err(ClientError::Remote(err))
        }
    }

    /// Like [`Client::call`], but returns the body next to the `Error` text.
    async fn call_keeping_body(
        &mut self,
        command: Command,
        body: Option<&[u8]>,
        has_body: bool,
    ) -> Result<(Vec<u8>, String), ClientError> {
        let seq = self.next_seq();
        self.send(command, seq, body).await?;
        let err = self.wait_header(seq).await?;
        let body = if has_body && err != AUTH_REQUIRED {
            self.next_object().await?
        } else {
            Vec::new()
        };
        Ok((body, err))
    }

    /// Starts a stream-like command: sends it, waits for the start confirmation (its
    /// `Error` fails the call) and registers the Seq.
    async fn start_stream<T>(
        &mut self,
        command: Command,
        body: &[u8],
    ) -> Result<StreamHandle<T>, ClientError> {
        let seq = self.next_seq();
        self.send(command, seq, Some(body)).await?;
        let err = self.wait_header(seq).await?;
        if !err.is_empty() {
            return Err(ClientError::Remote(err));
        }
        self.streams.insert(seq);
        Ok(StreamHandle::new(seq))
    }

    /// The next record of any registered stream. Fails with [`ClientError::Closed`] once the
    /// connection is gone. Cancel-safe.
    pub async fn next_record(&mut self) -> Result<Record, ClientError> {
        if let Some(r) = self.pending.pop_front() {
            return Ok(r);
        }
        loop {
            let h = self.next_header().await?;
            if self.streams.contains(&h.seq) {
                let body = self.next_object().await?;
                return Ok(Record { seq: h.seq, body });
            }
        }
    }

    /// The next record of `stream`, decoded; records of other streams read meanwhile are
    /// dropped (use [`Client::next_record`] to follow several streams). A record that does
    /// not decode fails with [`ClientError::Protocol`]. Cancel-safe.
    pub async fn recv<T: Body>(&mut self, stream: &StreamHandle<T>) -> Result<T, ClientError> {
        loop {
            let rec = self.next_record().await?;
            if let Some(decoded) = stream.decode(&rec) {
                return decoded.map_err(ClientError::Protocol);
            }
        }
    }

    /// Forgets a stream locally, without telling the agent (later headers for it are
    /// skipped without their body, as Go's client does).
    pub fn forget<T>(&mut self, stream: &StreamHandle<T>) {
        self.streams.remove(&stream.seq);
        self.pending.retain(|r| r.seq != stream.seq);
    }

    /// Go's `Stop(handle)`: forgets the stream, then sends `stop {Stop: seq}`.
    pub async fn stop<T>(&mut self, stream: &StreamHandle<T>) -> Result<(), ClientError> {
        self.forget(stream);
        let req = StopRequest { stop: stream.seq };
        self.call(Command::Stop, Some(&req.encode()), false)
            .await
            .map(|_| ())
    }

    /// Closes the connection; later calls fail with [`ClientError::Closed`].
    pub async fn close(&mut self) {
        self.closed = true;
        let _ = self.wr.shutdown().await;
    }

    /// `members`: every known member.
    pub async fn members(&mut self) -> Result<Vec<Member>, ClientError> {
        let body = self.call(Command::Members, None, true).await?;
        Ok(MembersResponse::decode(&body)?.members)
    }

    /// `members-filtered`: the members matching `filter`.
    pub async fn members_filtered(
        &mut self,
        filter: &MembersFilteredRequest,
    ) -> Result<Vec<Member>, ClientError> {
        let body = self
            .call(Command::MembersFiltered, Some(&filter.encode()), true)
            .await?;
        Ok(MembersResponse::decode(&body)?.members)
    }

    /// `join`: the number of nodes contacted.
    pub async fn join(&mut self, existing: &[String], replay: bool) -> Result<i64, ClientError> {
        let req = JoinRequest {
            existing: existing.to_vec(),
            replay,
        };
        let (body, err) = self
            .call_keeping_body(Command::Join, Some(&req.encode()), true)
            .await?;
        if err == AUTH_REQUIRED {
            return Err(ClientError::Remote(err));
        }
        let num = JoinResponse::decode(&body)?.num;
        if err.is_empty() {
            Ok(num)
        } else {
            Err(ClientError::Remote(err))
        }
    }

    /// `leave`: the agent leaves the cluster gracefully and shuts down.
    pub async fn leave(&mut self) -> Result<(), ClientError> {
        self.call(Command::Leave, None, false).await.map(|_| ())
    }

    /// `force-leave`: marks a failed member as left (`prune`: forget it at once).
    pub async fn force_leave(&mut self, node: &str, prune: bool) -> Result<(), ClientError> {
        let req = ForceLeaveRequest {
            node: node.to_string(),
            prune,
        };
        self.call(Command::ForceLeave, Some(&req.encode()), false)
            .await
            .map(|_| ())
    }

    /// `event`: sends a user event.
    pub async fn user_event(&mut self, event: &EventRequest) -> Result<(), ClientError> {
        self.call(Command::Event, Some(&event.encode()), false)
            .await
            .map(|_| ())
    }

    /// `tags`: sets and deletes the agent's tags.
    pub async fn update_tags(&mut self, tags: &TagsRequest) -> Result<(), ClientError> {
        self.call(Command::Tags, Some(&tags.encode()), false)
            .await
            .map(|_| ())
    }

    /// `respond`: answers a query delivered on this connection's `stream` as
    /// [`StreamEvent::Query`] with that `id`.
    pub async fn respond(&mut self, id: u64, payload: &[u8]) -> Result<(), ClientError> {
        let req = RespondRequest {
            id,
            payload: payload.to_vec(),
        };
        self.call(Command::Respond, Some(&req.encode()), false)
            .await
            .map(|_| ())
    }

    async fn key_op(&mut self, command: Command, key: Option<&str>) -> KeyOutcome {
        let body = key.map(|k| KeyRequest { key: k.to_string() }.encode());
        let (body, err) = match self.call_keeping_body(command, body.as_deref(), true).await {
            Ok(x) => x,
            Err(e) => return (KeyResponse::default(), Err(e)),
        };
        if err == AUTH_REQUIRED {
            return (KeyResponse::default(), Err(ClientError::Remote(err)));
        }
        match KeyResponse::decode(&body) {
            Ok(resp) if err.is_empty() => (resp, Ok(())),
            Ok(resp) => (resp, Err(ClientError::Remote(err))),
            Err(e) => (KeyResponse::default(), Err(ClientError::Protocol(e))),
        }
    }

    /// `install-key`: installs a (base64) key on every member.
    pub async fn install_key(&mut self, key: &str) -> KeyOutcome {
        self.key_op(Command::InstallKey, Some(key)).await
    }

    /// `use-key`: makes an installed key the primary one everywhere.
    pub async fn use_key(&mut self, key: &str) -> KeyOutcome {
        self.key_op(Command::UseKey, Some(key)).await
    }

    /// `remove-key`: removes a key everywhere.
    pub async fn remove_key(&mut self, key: &str) -> KeyOutcome {
        self.key_op(Command::RemoveKey, Some(key)).await
    }

    /// `list-keys`: the keys installed in the cluster and how many members hold each.
    pub async fn list_keys(&mut self) -> KeyOutcome {
        self.key_op(Command::ListKeys, None).await
    }

    /// `stats`: the agent's debugging information (`serf info`).
    pub async fn stats(&mut self) -> Result<StatsResponse, ClientError> {
        let body = self.call(Command::Stats, None, true).await?;
        Ok(StatsResponse::decode(&body)?)
    }

    /// `get-coordinate`: the network coordinate of `node` (`None` if the agent has none).
    pub async fn get_coordinate(&mut self, node: &str) -> Result<Option<Coordinate>, ClientError> {
        let req = CoordinateRequest {
            node: node.to_string(),
        };
        let body = self
            .call(Command::GetCoordinate, Some(&req.encode()), true)
            .await?;
        Ok(CoordinateResponse::decode(&body)?.coord)
    }

    /// `stream`: starts an event stream (`filter` as for event handlers: `*`,
    /// `member-join,user:deploy`, ...).
    pub async fn stream(&mut self, filter: &str) -> Result<StreamHandle<StreamEvent>, ClientError> {
        let req = StreamRequest {
            filter: filter.to_string(),
        };
        self.start_stream(Command::Stream, &req.encode()).await
    }

    /// `monitor`: starts streaming the agent's log at `level` and above.
    pub async fn monitor(&mut self, level: &str) -> Result<StreamHandle<LogRecord>, ClientError> {
        let req = MonitorRequest {
            log_level: level.to_string(),
        };
        self.start_stream(Command::Monitor, &req.encode()).await
    }

    /// `query`: sends a query; acks, responses and a final `done` arrive as
    /// [`QueryRecord`]s.
    pub async fn query(
        &mut self,
        query: &QueryRequest,
    ) -> Result<StreamHandle<QueryRecord>, ClientError> {
        self.start_stream(Command::Query, &query.encode()).await
    }
}
