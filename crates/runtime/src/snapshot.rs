//! The snapshot file (docs/serf-protocol.md section 14).
//!
//! Serf's snapshot is a line-oriented text file that lets a restarted agent re-join the
//! nodes it knew and restore its Lamport clocks, so it does not replay old user events or
//! queries. The format is Go Serf's, so either implementation reads the other's files:
//!
//! ```text
//! alive: <name> <ip:port>      member joined (IPv6 in brackets; name = text before the last space)
//! not-alive: <name>            member left or failed
//! clock: <n>                   member Lamport clock (last used value)
//! event-clock: <n>             user-event Lamport clock
//! query-clock: <n>             query Lamport clock
//! leave                        graceful leave
//! # ...                        comment
//! coordinate: ...              legacy, ignored
//! ```
//!
//! Unknown lines are skipped and reported as warnings.
//!
//! # Crash safety
//!
//! Go keeps lines in a user-space buffer that it flushes every 500 ms, so a `kill -9` loses
//! whatever was recorded shortly before. [`Snapshot`] has no user-space buffer: every record
//! is handed to the kernel by one `write(2)` of the whole line on an `O_APPEND` descriptor
//! before the call returns, so once a recording method has returned, killing the process
//! (SIGKILL, panic with `panic = "abort"`, OOM killer) cannot lose that line. The file is
//! additionally `fsync`ed at most every [`SYNC_INTERVAL`] (checked on every call, including
//! no-op ones such as an unchanged [`Snapshot::clock`], and by [`Snapshot::sync_if_due`]),
//! on [`Snapshot::leave`], on [`Snapshot::close`] and on compaction. Surviving power loss or a
//! kernel crash is out of scope: lines written since the last `fsync` may be lost then, and
//! the tail may be torn. Reading tolerates that: a last line without its newline is ignored
//! (as Go does) and cut off the file, so the next append does not glue onto it.
//!
//! # Compaction
//!
//! As in Go: once the bytes appended since the file was opened (counting its initial size)
//! exceed `max(128 KiB, 2 × 128 × alive nodes)`, the state kept in memory is written to
//! `<path>.compact` (one `alive:` line per node, then `clock:`, `event-clock:`,
//! `query-clock:`), which is `fsync`ed and renamed over the snapshot (atomic on POSIX); its
//! descriptor becomes the new append descriptor. A failed compaction is retried at most every
//! [`COMPACTION_RETRY_INTERVAL`]. Unlike Go, a compaction after a leave keeps the `leave`
//! line (and the clock written after it), so the compacted file replays the same way.
//!
//! # Bounds
//!
//! Reading streams the file; lines longer than [`MAX_LINE`] bytes are skipped with a warning,
//! at most [`MAX_WARNINGS`] warnings are kept, and the replayed alive set is capped at
//! [`MAX_REPLAY_ALIVE_BYTES`], so a corrupt or hostile file cannot exhaust memory.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Minimum size the file may reach before it is compacted (Go's `snapshotSizeLimit`).
pub const MIN_COMPACT_SIZE: u64 = 128 * 1024;
/// Estimated bytes per alive node (Go's `snapshotBytesPerNode`).
pub const BYTES_PER_NODE: u64 = 128;
/// Multiplier on the size estimate before compacting (Go's `snapshotCompactionThreshold`).
pub const COMPACTION_THRESHOLD: u64 = 2;
/// Least time between two compaction attempts after one failed.
pub const COMPACTION_RETRY_INTERVAL: Duration = Duration::from_secs(30);
/// Most time written lines stay without an `fsync` (as long as calls keep coming).
pub const SYNC_INTERVAL: Duration = Duration::from_secs(1);
/// Longest line read or written, without its newline; longer lines are skipped on read and
/// refused on write.
pub const MAX_LINE: usize = 4096;
/// Most warnings returned by a replay; further ones are counted in a final summary warning.
pub const MAX_WARNINGS: usize = 100;
/// Memory budget for the replayed alive set (name bytes plus a fixed overhead per node);
/// nodes beyond it are dropped with a warning.
pub const MAX_REPLAY_ALIVE_BYTES: usize = 32 << 20;

const FILE_MODE: u32 = 0o644;
const COMPACT_EXT: &str = ".compact";
const READ_BUFFER: usize = 64 * 1024;
const NODE_OVERHEAD: usize = 64;
const EXCERPT: usize = 80;

/// What a snapshot file said when it was opened.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Replay {
    /// Nodes alive at the end of the file, sorted by name (Go shuffles them before rejoining;
    /// the caller should too). May include the local node.
    pub alive: Vec<(String, SocketAddr)>,
    /// Last `clock:` value (member Lamport clock).
    pub last_clock: u64,
    /// Last `event-clock:` value; user events up to it are old.
    pub last_event_clock: u64,
    /// Last `query-clock:` value; queries up to it are old.
    pub last_query_clock: u64,
    /// The file holds a `leave` line not followed by any later activity (`alive:`,
    /// `not-alive:`, `event-clock:`, `query-clock:`); a trailing `clock:` line, which Go
    /// writes on shutdown, does not count. Set whether or not `rejoin_after_leave` was given.
    pub left: bool,
    /// Lines that were skipped, and why (unknown, malformed, too long, torn tail).
    pub warnings: Vec<String>,
}

/// One parsed line.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Line {
    Alive(String, SocketAddr),
    NotAlive(String),
    Clock(u64),
    EventClock(u64),
    QueryClock(u64),
    Leave,
    Ignored,
}

impl Line {
    fn parse(line: &str) -> Result<Line, String> {
        if let Some(info) = line.strip_prefix("alive: ") {
            let Some((name, addr)) = info.rsplit_once(' ') else {
                return Err(format!("failed to parse address: {}", excerpt(line)));
            };
            let addr: SocketAddr = addr
                .parse()
                .map_err(|e| format!("failed to parse address {:?}: {e}", excerpt(addr)))?;
            Ok(Line::Alive(name.to_string(), canonical(addr)))
        } else if let Some(name) = line.strip_prefix("not-alive: ") {
            Ok(Line::NotAlive(name.to_string()))
        } else if let Some(t) = line.strip_prefix("clock: ") {
            parse_time(t, "clock").map(Line::Clock)
        } else if let Some(t) = line.strip_prefix("event-clock: ") {
            parse_time(t, "event clock").map(Line::EventClock)
        } else if let Some(t) = line.strip_prefix("query-clock: ") {
            parse_time(t, "query clock").map(Line::QueryClock)
        } else if line.starts_with("coordinate: ") || line.starts_with('#') {
            Ok(Line::Ignored)
        } else if line == "leave" {
            Ok(Line::Leave)
        } else {
            Err(format!("unrecognized snapshot line: {}", excerpt(line)))
        }
    }
}

/// Go's `strconv.ParseUint(s, 10, 64)`: ASCII digits only (no sign), no overflow.
fn parse_time(s: &str, what: &str) -> Result<u64, String> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("failed to convert {what} time: {:?}", excerpt(s)));
    }
    s.parse()
        .map_err(|e| format!("failed to convert {what} time {:?}: {e}", excerpt(s)))
}

/// The address as Go's `TCPAddr.String()` prints it: IPv4-mapped IPv6 as plain IPv4.
fn canonical(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(v4.into(), v6.port()),
            None => addr,
        },
        SocketAddr::V4(_) => addr,
    }
}

fn excerpt(s: &str) -> String {
    if s.len() <= EXCERPT {
        return s.to_string();
    }
    let mut end = EXCERPT;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes)", &s[..end], s.len())
}

fn alive_line(name: &str, addr: SocketAddr) -> String {
    format!("alive: {name} {}\n", canonical(addr))
}

fn compact_path(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_os_string();
    p.push(COMPACT_EXT);
    PathBuf::from(p)
}

/// Best effort: makes a rename durable. Errors are ignored (power loss is out of scope).
fn sync_dir(path: &Path) {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Replay state while reading.
struct Reader {
    rejoin_after_leave: bool,
    alive: BTreeMap<String, SocketAddr>,
    alive_bytes: usize,
    clock: u64,
    event_clock: u64,
    query_clock: u64,
    left: bool,
    warnings: Vec<String>,
    suppressed: u64,
}

impl Reader {
    fn new(rejoin_after_leave: bool) -> Reader {
        Reader {
            rejoin_after_leave,
            alive: BTreeMap::new(),
            alive_bytes: 0,
            clock: 0,
            event_clock: 0,
            query_clock: 0,
            left: false,
            warnings: Vec::new(),
            suppressed: 0,
        }
    }

    fn warn(&mut self, line_no: u64, msg: String) {
        self.note(format!("line {line_no}: {msg}"));
    }

    fn note(&mut self, msg: String) {
        if self.warnings.len() < MAX_WARNINGS {
            self.warnings.push(msg);
        } else {
            self.suppressed += 1;
        }
    }

    fn line(&mut self, line_no: u64, raw: &[u8]) {
        let text = match std::str::from_utf8(raw) {
            Ok(t) => t,
            Err(_) => {
                let lossy = String::from_utf8_lossy(&raw[..raw.len().min(EXCERPT)]).into_owned();
                self.warn(line_no, format!("not UTF-8, skipped: {lossy}"));
                return;
            }
        };
        match Line::parse(text) {
            Ok(Line::Alive(name, addr)) => {
                self.left = false;
                if !self.alive.contains_key(&name) {
                    let cost = name.len() + NODE_OVERHEAD;
                    if self.alive_bytes + cost > MAX_REPLAY_ALIVE_BYTES {
                        let msg = format!("alive set too large, dropped {}", excerpt(&name));
                        self.warn(line_no, msg);
                        return;
                    }
                    self.alive_bytes += cost;
                }
                self.alive.insert(name, addr);
            }
            Ok(Line::NotAlive(name)) => {
                self.left = false;
                if self.alive.remove(&name).is_some() {
                    self.alive_bytes -= name.len() + NODE_OVERHEAD;
                }
            }
            Ok(Line::Clock(t)) => self.clock = t,
            Ok(Line::EventClock(t)) => {
                self.left = false;
                self.event_clock = t;
            }
            Ok(Line::QueryClock(t)) => {
                self.left = false;
                self.query_clock = t;
            }
            Ok(Line::Leave) => {
                self.left = true;
                if !self.rejoin_after_leave {
                    self.alive.clear();
                    self.alive_bytes = 0;
                    self.clock = 0;
                    self.event_clock = 0;
                    self.query_clock = 0;
                }
            }
            Ok(Line::Ignored) => {}
            Err(e) => self.warn(line_no, e),
        }
    }

    /// Streams `file` from its current position. Returns the length of the part made of
    /// complete lines and the total length read.
    fn read(&mut self, file: impl io::Read) -> io::Result<(u64, u64)> {
        let mut reader = BufReader::with_capacity(READ_BUFFER, file);
        let mut line: Vec<u8> = Vec::with_capacity(256);
        let mut too_long = false;
        let mut read: u64 = 0;
        let mut complete: u64 = 0;
        let mut line_no: u64 = 0;
        loop {
            let (used, ended) = {
                let chunk = match reader.fill_buf() {
                    Ok(c) => c,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                };
                if chunk.is_empty() {
                    break;
                }
                let (part, used, ended) = match chunk.iter().position(|&b| b == b'\n') {
                    Some(i) => (&chunk[..i], i + 1, true),
                    None => (chunk, chunk.len(), false),
                };
                if !too_long {
                    if line.len() + part.len() > MAX_LINE {
                        too_long = true;
                        line = Vec::with_capacity(256);
                    } else {
                        line.extend_from_slice(part);
                    }
                }
                (used, ended)
            };
            reader.consume(used);
            read += used as u64;
            if ended {
                line_no += 1;
                if too_long {
                    let len = read - complete - 1;
                    self.warn(line_no, format!("line of {len} bytes is too long, skipped"));
                } else {
                    self.line(line_no, &line);
                }
                complete = read;
                line.clear();
                too_long = false;
            }
        }
        Ok((complete, read))
    }

    fn finish(mut self) -> Replay {
        if self.suppressed > 0 {
            let n = self.suppressed;
            self.warnings.push(format!("{n} more warnings suppressed"));
        }
        Replay {
            alive: self.alive.into_iter().collect(),
            last_clock: self.clock,
            last_event_clock: self.event_clock,
            last_query_clock: self.query_clock,
            left: self.left,
            warnings: self.warnings,
        }
    }
}

/// Replays snapshot file contents held in memory, as [`Snapshot::open`] replays the file
/// (including the note about a torn last line). For the fuzz targets and their seed replay
/// test (`fuzz/` in the repository); not a stable API.
#[doc(hidden)]
pub fn replay_bytes(bytes: &[u8], rejoin_after_leave: bool) -> Replay {
    let mut reader = Reader::new(rejoin_after_leave);
    // Reading from a slice cannot fail.
    let (complete, read) = reader.read(bytes).unwrap_or((0, 0));
    if read > complete {
        let torn = read - complete;
        reader.note(format!(
            "end of file: last line is incomplete ({torn} bytes without newline), ignored"
        ));
    }
    reader.finish()
}

/// An open snapshot file: records membership and clock changes as they happen.
///
/// Recording methods update the in-memory state (used for compaction) and append the line
/// straight to the file. They return `Err` (meant to be logged) when the line may not have
/// reached the file, or when a compaction or `fsync` failed. After a write error, appending
/// is suspended (a partly written line must not be glued to the next one); the state is kept
/// in memory and written out by the next successful compaction (attempted at most every
/// [`COMPACTION_RETRY_INTERVAL`], on the next recording call), which ends the error state.
/// Member-update and member-reap events are not recorded (as in Go).
#[derive(Debug)]
pub struct Snapshot {
    path: PathBuf,
    file: File,
    alive: BTreeMap<String, SocketAddr>,
    last_clock: u64,
    last_event_clock: u64,
    last_query_clock: u64,
    /// Clock written after the leave, if any (kept by compaction after the `leave` line).
    clock_after_leave: Option<u64>,
    /// Bytes in the file (initial size plus appended).
    offset: u64,
    min_compact_size: u64,
    leaving: bool,
    /// A write failed: appending is suspended until a compaction rewrites the file.
    broken: bool,
    dirty: bool,
    last_sync: Instant,
    last_compact_failure: Option<Instant>,
}

impl Snapshot {
    /// Opens (creating, mode 0644 before umask) the snapshot at `path`, replays it, and
    /// keeps it open for appending. A torn last line is ignored and cut off the file.
    ///
    /// `rejoin_after_leave` makes a replayed `leave` line keep the alive set and the clocks
    /// (Go's `RejoinAfterLeave`).
    pub fn open(
        path: &Path,
        rejoin_after_leave: bool,
    ) -> Result<(Snapshot, Replay), SnapshotError> {
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .mode(FILE_MODE)
            .open(path)
            .map_err(|source| SnapshotError::Open {
                path: path.to_path_buf(),
                source,
            })?;
        let mut reader = Reader::new(rejoin_after_leave);
        let (complete, read) = reader.read(&file).map_err(|source| SnapshotError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        if read > complete {
            file.set_len(complete)
                .map_err(|source| SnapshotError::Truncate {
                    path: path.to_path_buf(),
                    source,
                })?;
            let torn = read - complete;
            reader.note(format!(
                "end of file: last line is incomplete ({torn} bytes without newline), ignored"
            ));
        }
        let replay = reader.finish();
        let snapshot = Snapshot {
            path: path.to_path_buf(),
            file,
            alive: replay.alive.iter().cloned().collect(),
            last_clock: replay.last_clock,
            last_event_clock: replay.last_event_clock,
            last_query_clock: replay.last_query_clock,
            clock_after_leave: None,
            offset: complete,
            min_compact_size: MIN_COMPACT_SIZE,
            leaving: false,
            broken: false,
            dirty: false,
            last_sync: Instant::now(),
            last_compact_failure: None,
        };
        Ok((snapshot, replay))
    }

    /// The snapshot's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Nodes currently believed alive, sorted by name (frozen once [`Snapshot::leave`] ran).
    pub fn alive_nodes(&self) -> impl Iterator<Item = (&str, SocketAddr)> + '_ {
        self.alive.iter().map(|(n, a)| (n.as_str(), *a))
    }

    /// Last member clock recorded (or replayed).
    pub fn last_clock(&self) -> u64 {
        self.last_clock
    }

    /// Last user-event clock recorded (or replayed).
    pub fn last_event_clock(&self) -> u64 {
        self.last_event_clock
    }

    /// Last query clock recorded (or replayed).
    pub fn last_query_clock(&self) -> u64 {
        self.last_query_clock
    }

    /// [`Snapshot::leave`] was called: member and event records are ignored from now on.
    pub fn is_leaving(&self) -> bool {
        self.leaving
    }

    /// Current size of the file as far as this writer knows (used for compaction).
    pub fn size(&self) -> u64 {
        self.offset
    }

    /// Overrides the minimum size before compaction (default [`MIN_COMPACT_SIZE`]).
    pub fn set_min_compact_size(&mut self, bytes: u64) {
        self.min_compact_size = bytes;
    }

    /// A member joined (Go: member-join event): `alive: <name> <addr>`. Ignored after a
    /// leave. Refused when the name contains a newline or the line would exceed [`MAX_LINE`].
    pub fn alive(&mut self, name: &str, addr: SocketAddr) -> Result<(), SnapshotError> {
        if self.leaving {
            return self.sync_if_due();
        }
        let line = alive_line(name, addr);
        check_line(name, &line)?;
        self.alive.insert(name.to_string(), canonical(addr));
        self.append(&line)
    }

    /// A member left or failed: `not-alive: <name>`. Ignored after a leave.
    pub fn not_alive(&mut self, name: &str) -> Result<(), SnapshotError> {
        if self.leaving {
            return self.sync_if_due();
        }
        let line = format!("not-alive: {name}\n");
        check_line(name, &line)?;
        self.alive.remove(name);
        self.append(&line)
    }

    /// The member clock: written only if `t` is greater than the last value (Go writes
    /// `clock.Time() - 1` after member events and every 500 ms). Still written after a
    /// leave, as Go's shutdown path does.
    pub fn clock(&mut self, t: u64) -> Result<(), SnapshotError> {
        if t <= self.last_clock {
            return self.sync_if_due();
        }
        self.last_clock = t;
        if self.leaving {
            self.clock_after_leave = Some(t);
        }
        self.append(&format!("clock: {t}\n"))
    }

    /// A user event's Lamport time: written only if greater than the last value. Ignored
    /// after a leave.
    pub fn event_clock(&mut self, t: u64) -> Result<(), SnapshotError> {
        if self.leaving || t <= self.last_event_clock {
            return self.sync_if_due();
        }
        self.last_event_clock = t;
        self.append(&format!("event-clock: {t}\n"))
    }

    /// A query's Lamport time (internal queries included): written only if greater than the
    /// last value. Ignored after a leave.
    pub fn query_clock(&mut self, t: u64) -> Result<(), SnapshotError> {
        if self.leaving || t <= self.last_query_clock {
            return self.sync_if_due();
        }
        self.last_query_clock = t;
        self.append(&format!("query-clock: {t}\n"))
    }

    /// Graceful leave: writes `leave` and `fsync`s. Later member and event records are
    /// ignored; clocks are still written. The alive set is kept (frozen) in memory: a
    /// compaction writes it followed by the `leave` line, so the file replays as before for
    /// either `rejoin_after_leave` setting (Go forgets it unless `RejoinAfterLeave`).
    pub fn leave(&mut self) -> Result<(), SnapshotError> {
        if self.leaving {
            return Ok(());
        }
        self.leaving = true;
        self.append("leave\n")?;
        self.sync()
    }

    /// `fsync`s whatever was written since the last one.
    pub fn sync(&mut self) -> Result<(), SnapshotError> {
        if !self.dirty {
            return Ok(());
        }
        self.file.sync_all().map_err(SnapshotError::Sync)?;
        self.dirty = false;
        self.last_sync = Instant::now();
        Ok(())
    }

    /// `fsync`s if something was written and the last `fsync` is [`SYNC_INTERVAL`] old. Cheap
    /// otherwise; meant for a periodic timer.
    pub fn sync_if_due(&mut self) -> Result<(), SnapshotError> {
        self.sync_if_due_at(Instant::now())
    }

    /// Rewrites the file from the in-memory state now, whatever its size.
    pub fn compact(&mut self) -> Result<(), SnapshotError> {
        self.compact_at(Instant::now())
    }

    /// `fsync`s and closes the file. (Dropping also closes it; nothing is buffered.)
    pub fn close(mut self) -> Result<(), SnapshotError> {
        self.sync()
    }

    fn max_size(&self) -> u64 {
        let estimate = (self.alive.len() as u64)
            .saturating_mul(BYTES_PER_NODE)
            .saturating_mul(COMPACTION_THRESHOLD);
        estimate.max(self.min_compact_size)
    }

    fn compaction_allowed(&self, now: Instant) -> bool {
        self.last_compact_failure
            .is_none_or(|t| now.saturating_duration_since(t) >= COMPACTION_RETRY_INTERVAL)
    }

    /// Appends one whole line with a single write to the `O_APPEND` descriptor.
    fn append(&mut self, line: &str) -> Result<(), SnapshotError> {
        let started = Instant::now();
        let r = self.append_at(started, line);
        record_ms("serf.snapshot.appendLine", started);
        r
    }

    fn append_at(&mut self, now: Instant, line: &str) -> Result<(), SnapshotError> {
        if self.broken {
            return self.recover(now, SnapshotError::Suspended);
        }
        if let Err(e) = (&self.file).write_all(line.as_bytes()) {
            // Part of the line may be in the file: stop appending until a compaction has
            // rewritten it from memory.
            self.broken = true;
            return self.recover(now, SnapshotError::Write(e));
        }
        self.offset += line.len() as u64;
        self.dirty = true;
        if self.offset > self.max_size() && self.compaction_allowed(now) {
            self.compact_at(now)?;
        }
        self.sync_if_due_at(now)
    }

    /// After a write error: compacts if allowed. `Ok` once the file holds the whole state.
    fn recover(&mut self, now: Instant, cause: SnapshotError) -> Result<(), SnapshotError> {
        if !self.compaction_allowed(now) {
            return Err(SnapshotError::Unrepaired {
                cause: Box::new(cause),
                failure: None,
                retry_in: COMPACTION_RETRY_INTERVAL,
            });
        }
        self.compact_at(now).map_err(|e| SnapshotError::Unrepaired {
            cause: Box::new(cause),
            failure: Some(Box::new(e)),
            retry_in: COMPACTION_RETRY_INTERVAL,
        })
    }

    fn sync_if_due_at(&mut self, now: Instant) -> Result<(), SnapshotError> {
        if !self.dirty || now.saturating_duration_since(self.last_sync) < SYNC_INTERVAL {
            return Ok(());
        }
        self.file.sync_data().map_err(SnapshotError::Sync)?;
        self.dirty = false;
        self.last_sync = now;
        Ok(())
    }

    fn compact_at(&mut self, now: Instant) -> Result<(), SnapshotError> {
        let started = Instant::now();
        let written = self.write_compacted();
        record_ms("serf.snapshot.compact", started);
        match written {
            Ok((file, len)) => {
                self.file = file;
                self.offset = len;
                self.broken = false;
                self.dirty = false;
                self.last_sync = now;
                self.last_compact_failure = None;
                Ok(())
            }
            Err(e) => {
                self.last_compact_failure = Some(now);
                Err(SnapshotError::Compact(e))
            }
        }
    }

    /// Writes `<path>.compact`, syncs it and renames it over the snapshot. Returns its
    /// descriptor (opened for append, so it serves as the new append descriptor) and size.
    fn write_compacted(&self) -> io::Result<(File, u64)> {
        let tmp = compact_path(&self.path);
        match fs::remove_file(&tmp) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let file = OpenOptions::new()
            .append(true)
            .create_new(true)
            .mode(FILE_MODE)
            .open(&tmp)?;
        let result = self.fill_compacted(&file).and_then(|len| {
            file.sync_all()?;
            fs::rename(&tmp, &self.path)?;
            Ok(len)
        });
        match result {
            Ok(len) => {
                sync_dir(&self.path);
                Ok((file, len))
            }
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                Err(e)
            }
        }
    }

    fn fill_compacted(&self, file: &File) -> io::Result<u64> {
        let mut out = BufWriter::with_capacity(READ_BUFFER, file);
        let mut len = 0u64;
        let mut put = |out: &mut BufWriter<&File>, line: &str| -> io::Result<()> {
            out.write_all(line.as_bytes())?;
            len += line.len() as u64;
            Ok(())
        };
        for (name, addr) in &self.alive {
            put(&mut out, &alive_line(name, *addr))?;
        }
        put(&mut out, &format!("clock: {}\n", self.last_clock))?;
        put(
            &mut out,
            &format!("event-clock: {}\n", self.last_event_clock),
        )?;
        put(
            &mut out,
            &format!("query-clock: {}\n", self.last_query_clock),
        )?;
        if self.leaving {
            put(&mut out, "leave\n")?;
            if let Some(t) = self.clock_after_leave {
                put(&mut out, &format!("clock: {t}\n"))?;
            }
        }
        out.flush()?;
        Ok(len)
    }
}

/// Records the time since `started` in milliseconds, as go-metrics' `MeasureSince` does.
fn record_ms(name: &'static str, started: Instant) {
    metrics::histogram!(name).record(started.elapsed().as_secs_f64() * 1e3);
}

fn check_line(name: &str, line: &str) -> Result<(), SnapshotError> {
    let newline = name.contains('\n');
    if newline || line.len() > MAX_LINE + 1 {
        return Err(SnapshotError::Rejected {
            name: excerpt(name).to_string(),
            newline,
        });
    }
    Ok(())
}

mod error;
pub(crate) mod writer;

pub use error::SnapshotError;

#[cfg(test)]
mod tests;
