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
    fn read(&mut self, file: &File) -> io::Result<(u64, u64)> {
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
    pub fn open(path: &Path, rejoin_after_leave: bool) -> Result<(Snapshot, Replay), String> {
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .mode(FILE_MODE)
            .open(path)
            .map_err(|e| {
                format!(
                    "failed to open snapshot: open {}: {}",
                    path.display(),
                    crate::goerr::io_text(&e)
                )
            })?;
        let mut reader = Reader {
            rejoin_after_leave,
            alive: BTreeMap::new(),
            alive_bytes: 0,
            clock: 0,
            event_clock: 0,
            query_clock: 0,
            left: false,
            warnings: Vec::new(),
            suppressed: 0,
        };
        let (complete, read) = reader
            .read(&file)
            .map_err(|e| format!("failed to read snapshot {}: {e}", path.display()))?;
        if read > complete {
            file.set_len(complete).map_err(|e| {
                format!(
                    "failed to truncate torn snapshot tail of {}: {e}",
                    path.display()
                )
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
    pub fn alive(&mut self, name: &str, addr: SocketAddr) -> Result<(), String> {
        if self.leaving {
            return self.sync_if_due();
        }
        let line = alive_line(name, addr);
        check_line(name, &line)?;
        self.alive.insert(name.to_string(), canonical(addr));
        self.append(&line)
    }

    /// A member left or failed: `not-alive: <name>`. Ignored after a leave.
    pub fn not_alive(&mut self, name: &str) -> Result<(), String> {
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
    pub fn clock(&mut self, t: u64) -> Result<(), String> {
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
    pub fn event_clock(&mut self, t: u64) -> Result<(), String> {
        if self.leaving || t <= self.last_event_clock {
            return self.sync_if_due();
        }
        self.last_event_clock = t;
        self.append(&format!("event-clock: {t}\n"))
    }

    /// A query's Lamport time (internal queries included): written only if greater than the
    /// last value. Ignored after a leave.
    pub fn query_clock(&mut self, t: u64) -> Result<(), String> {
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
    pub fn leave(&mut self) -> Result<(), String> {
        if self.leaving {
            return Ok(());
        }
        self.leaving = true;
        self.append("leave\n")?;
        self.sync()
    }

    /// `fsync`s whatever was written since the last one.
    pub fn sync(&mut self) -> Result<(), String> {
        if !self.dirty {
            return Ok(());
        }
        self.file
            .sync_all()
            .map_err(|e| format!("failed to sync snapshot: {e}"))?;
        self.dirty = false;
        self.last_sync = Instant::now();
        Ok(())
    }

    /// `fsync`s if something was written and the last `fsync` is [`SYNC_INTERVAL`] old. Cheap
    /// otherwise; meant for a periodic timer.
    pub fn sync_if_due(&mut self) -> Result<(), String> {
        self.sync_if_due_at(Instant::now())
    }

    /// Rewrites the file from the in-memory state now, whatever its size.
    pub fn compact(&mut self) -> Result<(), String> {
        self.compact_at(Instant::now())
    }

    /// `fsync`s and closes the file. (Dropping also closes it; nothing is buffered.)
    pub fn close(mut self) -> Result<(), String> {
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
    fn append(&mut self, line: &str) -> Result<(), String> {
        let started = Instant::now();
        let r = self.append_at(started, line);
        record_ms("serf.snapshot.appendLine", started);
        r
    }

    fn append_at(&mut self, now: Instant, line: &str) -> Result<(), String> {
        if self.broken {
            return self.recover(now, "snapshot writes suspended after an error".to_string());
        }
        if let Err(e) = (&self.file).write_all(line.as_bytes()) {
            // Part of the line may be in the file: stop appending until a compaction has
            // rewritten it from memory.
            self.broken = true;
            return self.recover(now, format!("failed to update snapshot: {e}"));
        }
        self.offset += line.len() as u64;
        self.dirty = true;
        if self.offset > self.max_size() && self.compaction_allowed(now) {
            self.compact_at(now)?;
        }
        self.sync_if_due_at(now)
    }

    /// After a write error: compacts if allowed. `Ok` once the file holds the whole state.
    fn recover(&mut self, now: Instant, cause: String) -> Result<(), String> {
        if !self.compaction_allowed(now) {
            return Err(format!(
                "{cause}; next compaction attempt within {}s",
                COMPACTION_RETRY_INTERVAL.as_secs()
            ));
        }
        self.compact_at(now)
            .map_err(|e| format!("{cause}; recovery failed: {e}"))
    }

    fn sync_if_due_at(&mut self, now: Instant) -> Result<(), String> {
        if !self.dirty || now.saturating_duration_since(self.last_sync) < SYNC_INTERVAL {
            return Ok(());
        }
        self.file
            .sync_data()
            .map_err(|e| format!("failed to sync snapshot: {e}"))?;
        self.dirty = false;
        self.last_sync = now;
        Ok(())
    }

    fn compact_at(&mut self, now: Instant) -> Result<(), String> {
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
                Err(format!("snapshot compaction failed: {e}"))
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

fn check_line(name: &str, line: &str) -> Result<(), String> {
    if name.contains('\n') {
        return Err(format!(
            "node name {:?} contains a newline, not recorded",
            excerpt(name)
        ));
    }
    if line.len() > MAX_LINE + 1 {
        return Err(format!(
            "snapshot line for node {:?} is too long, not recorded",
            excerpt(name)
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, Read};
    use std::process::{Command, Stdio};
    use std::sync::atomic::{AtomicU32, Ordering};

    /// Go 0.9.4 files, from vectors/agent_vectors.json "files".
    const GO_AFTER_KILL9: &str = "alive: snap 127.0.0.1:17969\nalive: alpha 127.0.0.1:17946\nclock: 27\nalive: beta 127.0.0.1:17947\nevent-clock: 6\n";
    const GO_AFTER_LEAVE: &str = "alive: snap 127.0.0.1:17969\nalive: alpha 127.0.0.1:17946\nclock: 27\nalive: beta 127.0.0.1:17947\nevent-clock: 6\nalive: snap 127.0.0.1:17969\nalive: beta 127.0.0.1:17947\nalive: alpha 127.0.0.1:17946\nleave\nclock: 28\n";
    const GO_ALPHA: &str = "alive: alpha 127.0.0.1:17946\nalive: beta 127.0.0.1:17947\nclock: 1\nevent-clock: 1\nevent-clock: 2\nevent-clock: 3\nalive: tmpnode 127.0.0.1:17960\nclock: 2\nclock: 3\nnot-alive: tmpnode\nquery-clock: 1\nclock: 4\nquery-clock: 3\nclock: 5\nclock: 7\nclock: 8\nclock: 9\nquery-clock: 4\nquery-clock: 5\nalive: leaver 127.0.0.1:17961\nclock: 10\nclock: 11\nnot-alive: leaver\nclock: 13\nevent-clock: 4\nevent-clock: 5\nquery-clock: 6\nquery-clock: 7\nclock: 14\nquery-clock: 9\nquery-clock: 10\nquery-clock: 11\nquery-clock: 12\nclock: 15\nclock: 16\nquery-clock: 13\nalive: leaver2 127.0.0.1:17962\nclock: 18\nclock: 19\nnot-alive: leaver2\nalive: sigint 127.0.0.1:17963\nclock: 21\nnot-alive: sigint\nclock: 22\nalive: sigterm 127.0.0.1:17964\nclock: 24\nnot-alive: sigterm\nnot-alive: sigterm\nclock: 25\nquery-clock: 14\nclock: 26\nalive: snap 127.0.0.1:17969\nclock: 27\nevent-clock: 6\nclock: 28\nnot-alive: snap\nclock: 29\nleave\nclock: 30\n";

    const CHILD_ENV: &str = "SERF_SNAPSHOT_CRASH_CHILD";

    struct TempDir(PathBuf);

    impl TempDir {
        fn new() -> TempDir {
            static N: AtomicU32 = AtomicU32::new(0);
            let n = N.fetch_add(1, Ordering::Relaxed);
            let dir =
                std::env::temp_dir().join(format!("serf-snapshot-test-{}-{n}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }

        fn file(&self, content: &str) -> PathBuf {
            let p = self.0.join("snap");
            fs::write(&p, content).unwrap();
            p
        }

        fn path(&self) -> PathBuf {
            self.0.join("snap")
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn replay(content: &str, rejoin: bool) -> Replay {
        let dir = TempDir::new();
        let p = dir.file(content);
        Snapshot::open(&p, rejoin).unwrap().1
    }

    fn names(r: &Replay) -> Vec<&str> {
        r.alive.iter().map(|(n, _)| n.as_str()).collect()
    }

    #[test]
    fn format_round_trip() {
        let dir = TempDir::new();
        let p = dir.path();
        let (mut s, r) = Snapshot::open(&p, false).unwrap();
        assert_eq!(r, Replay::default());
        s.alive("a", addr("10.0.0.1:7946")).unwrap();
        s.alive("with space", addr("[::1]:7947")).unwrap();
        s.alive("mapped", addr("[::ffff:10.0.0.9]:1")).unwrap();
        s.alive("gone", addr("10.0.0.2:7946")).unwrap();
        s.clock(5).unwrap();
        s.not_alive("gone").unwrap();
        s.clock(5).unwrap(); // not grown: not written
        s.clock(4).unwrap();
        s.event_clock(3).unwrap();
        s.event_clock(3).unwrap();
        s.query_clock(9).unwrap();
        s.query_clock(2).unwrap();
        s.clock(7).unwrap();
        s.close().unwrap();
        let text = fs::read_to_string(&p).unwrap();
        assert_eq!(
            text,
            "alive: a 10.0.0.1:7946\nalive: with space [::1]:7947\nalive: mapped 10.0.0.9:1\n\
             alive: gone 10.0.0.2:7946\nclock: 5\nnot-alive: gone\nevent-clock: 3\n\
             query-clock: 9\nclock: 7\n"
        );
        let (s, r) = Snapshot::open(&p, false).unwrap();
        assert_eq!(
            r.alive,
            vec![
                ("a".to_string(), addr("10.0.0.1:7946")),
                ("mapped".to_string(), addr("10.0.0.9:1")),
                ("with space".to_string(), addr("[::1]:7947")),
            ]
        );
        assert_eq!(
            (r.last_clock, r.last_event_clock, r.last_query_clock),
            (7, 3, 9)
        );
        assert!(!r.left);
        assert!(r.warnings.is_empty(), "{:?}", r.warnings);
        // The reopened writer continues from the replayed clocks.
        assert_eq!(
            (s.last_clock(), s.last_event_clock(), s.last_query_clock()),
            (7, 3, 9)
        );
        assert_eq!(s.alive_nodes().count(), 3);
        assert_eq!(s.size(), text.len() as u64);
    }

    #[test]
    fn refuses_unwritable_names() {
        let dir = TempDir::new();
        let (mut s, _) = Snapshot::open(&dir.path(), false).unwrap();
        assert!(s.alive("a\nleave", addr("1.2.3.4:5")).is_err());
        assert!(s.not_alive("a\nleave").is_err());
        assert!(s.alive(&"x".repeat(MAX_LINE), addr("1.2.3.4:5")).is_err());
        let long = "y".repeat(MAX_LINE - 40);
        s.alive(&long, addr("1.2.3.4:5")).unwrap();
        assert_eq!(s.alive_nodes().count(), 1);
        drop(s);
        let (_, r) = Snapshot::open(&dir.path(), false).unwrap();
        assert_eq!(names(&r), vec![long.as_str()]);
    }

    #[test]
    fn replay_alive_not_alive_and_clocks() {
        let r = replay(
            "alive: a 1.1.1.1:1\nalive: b 2.2.2.2:2\nalive: a 1.1.1.1:9\nnot-alive: b\n\
             not-alive: never\nclock: 3\nclock: 2\nevent-clock: 4\nquery-clock: 5\n",
            false,
        );
        assert_eq!(r.alive, vec![("a".to_string(), addr("1.1.1.1:9"))]);
        // The last value wins, as in Go.
        assert_eq!(
            (r.last_clock, r.last_event_clock, r.last_query_clock),
            (2, 4, 5)
        );
        assert!(!r.left);
        assert!(r.warnings.is_empty());
    }

    #[test]
    fn replay_leave() {
        let text =
            "alive: a 1.1.1.1:1\nclock: 3\nevent-clock: 4\nquery-clock: 5\nleave\nclock: 6\n";
        let r = replay(text, false);
        assert!(r.alive.is_empty());
        assert_eq!(
            (r.last_clock, r.last_event_clock, r.last_query_clock),
            (6, 0, 0)
        );
        assert!(r.left);

        let r = replay(text, true);
        assert_eq!(names(&r), vec!["a"]);
        assert_eq!(
            (r.last_clock, r.last_event_clock, r.last_query_clock),
            (6, 4, 5)
        );
        assert!(r.left);

        // A restart after the leave: later lines count again.
        let r = replay(
            &format!("{text}alive: b 2.2.2.2:2\nevent-clock: 9\n"),
            false,
        );
        assert_eq!(names(&r), vec!["b"]);
        assert_eq!(
            (r.last_clock, r.last_event_clock, r.last_query_clock),
            (6, 9, 0)
        );
        assert!(!r.left);
    }

    #[test]
    fn torn_last_line_ignored_and_cut() {
        let dir = TempDir::new();
        let p = dir.file("alive: a 1.1.1.1:1\nclock: 3\nalive: b 2.2.2.2:79");
        let (mut s, r) = Snapshot::open(&p, false).unwrap();
        assert_eq!(names(&r), vec!["a"]);
        assert_eq!(r.last_clock, 3);
        assert_eq!(r.warnings.len(), 1, "{:?}", r.warnings);
        assert!(r.warnings[0].contains("incomplete"), "{:?}", r.warnings);
        // The fragment is gone, so the next line does not glue onto it.
        s.alive("c", addr("3.3.3.3:3")).unwrap();
        drop(s);
        assert_eq!(
            fs::read_to_string(&p).unwrap(),
            "alive: a 1.1.1.1:1\nclock: 3\nalive: c 3.3.3.3:3\n"
        );
        let r = replay(&fs::read_to_string(&p).unwrap(), false);
        assert_eq!(names(&r), vec!["a", "c"]);
        assert!(r.warnings.is_empty());

        // A file that is nothing but a fragment.
        let r = replay("alive: x 1.1.1.1:1", false);
        assert!(r.alive.is_empty());
        assert_eq!(r.warnings.len(), 1);
    }

    #[test]
    fn garbage_lines_skipped() {
        let r = replay(
            "# comment\ncoordinate: {\"Vec\":[1]}\nbogus line\nalive: nospace\n\
             alive: host not-an-addr\nalive: h host.example:7946\nclock: x\nclock: +5\n\
             clock: 99999999999999999999\nevent-clock: -1\nquery-clock: \nleave \n\
             not-alive:missing-space\n\nalive: ok 1.2.3.4:5\nclock: 8\n",
            false,
        );
        assert_eq!(names(&r), vec!["ok"]);
        assert_eq!(r.last_clock, 8);
        assert!(!r.left, "`leave ` with a trailing space is not a leave");
        assert_eq!(r.warnings.len(), 12, "{:#?}", r.warnings);
        assert!(
            r.warnings[0].starts_with("line 3: unrecognized"),
            "{:?}",
            r.warnings
        );

        let bytes = b"alive: a 1.1.1.1:1\n\xff\xfe\nclock: 2\n".to_vec();
        let dir = TempDir::new();
        let p = dir.path();
        fs::write(&p, &bytes).unwrap();
        let (_, r) = Snapshot::open(&p, false).unwrap();
        assert_eq!(names(&r), vec!["a"]);
        assert_eq!(r.last_clock, 2);
        assert_eq!(r.warnings.len(), 1);
    }

    #[test]
    fn huge_lines_and_many_warnings_are_bounded() {
        let dir = TempDir::new();
        let p = dir.path();
        {
            let mut f = BufWriter::new(File::create(&p).unwrap());
            f.write_all(b"alive: a 1.1.1.1:1\n").unwrap();
            // A 20 MB line, then a huge number of garbage lines.
            let chunk = vec![b'z'; 1 << 20];
            f.write_all(b"alive: ").unwrap();
            for _ in 0..20 {
                f.write_all(&chunk).unwrap();
            }
            f.write_all(b" 1.2.3.4:5\n").unwrap();
            for i in 0..200_000 {
                writeln!(f, "junk {i}").unwrap();
            }
            f.write_all(b"clock: 11\n").unwrap();
            // And a huge torn tail.
            for _ in 0..5 {
                f.write_all(&chunk).unwrap();
            }
        }
        let (mut s, r) = Snapshot::open(&p, false).unwrap();
        assert_eq!(names(&r), vec!["a"]);
        assert_eq!(r.last_clock, 11);
        assert_eq!(r.warnings.len(), MAX_WARNINGS + 1);
        assert!(r.warnings[0].contains("too long"), "{}", r.warnings[0]);
        assert!(r.warnings[MAX_WARNINGS].contains("more warnings suppressed"));
        assert!(r.warnings.iter().all(|w| w.len() < 300));
        // The file is far over the compaction threshold: the next record compacts it.
        s.clock(12).unwrap();
        drop(s);
        assert_eq!(
            fs::read_to_string(&p).unwrap(),
            "alive: a 1.1.1.1:1\nclock: 12\nevent-clock: 0\nquery-clock: 0\n"
        );
    }

    #[test]
    fn replay_alive_set_is_capped() {
        let dir = TempDir::new();
        let p = dir.path();
        {
            let mut f = BufWriter::new(File::create(&p).unwrap());
            let name = "n".repeat(3000);
            let n = MAX_REPLAY_ALIVE_BYTES / (3000 + NODE_OVERHEAD) + 10;
            for i in 0..n {
                writeln!(f, "alive: {name}{i} 1.1.1.1:1").unwrap();
            }
        }
        let (_, r) = Snapshot::open(&p, false).unwrap();
        let n = MAX_REPLAY_ALIVE_BYTES / (3000 + NODE_OVERHEAD) + 10;
        assert!(
            r.alive.len() < n && r.alive.len() > n - 100,
            "{}",
            r.alive.len()
        );
        assert!(r.warnings.iter().any(|w| w.contains("alive set too large")));
    }

    #[test]
    fn go_snapshots() {
        let r = replay(GO_AFTER_KILL9, false);
        assert_eq!(
            r.alive,
            vec![
                ("alpha".to_string(), addr("127.0.0.1:17946")),
                ("beta".to_string(), addr("127.0.0.1:17947")),
                ("snap".to_string(), addr("127.0.0.1:17969")),
            ]
        );
        assert_eq!(
            (r.last_clock, r.last_event_clock, r.last_query_clock),
            (27, 6, 0)
        );
        assert!(!r.left);
        assert!(r.warnings.is_empty());

        let r = replay(GO_AFTER_LEAVE, false);
        assert!(r.alive.is_empty());
        assert_eq!(
            (r.last_clock, r.last_event_clock, r.last_query_clock),
            (28, 0, 0)
        );
        assert!(r.left);
        let r = replay(GO_AFTER_LEAVE, true);
        assert_eq!(names(&r), vec!["alpha", "beta", "snap"]);
        assert_eq!(
            (r.last_clock, r.last_event_clock, r.last_query_clock),
            (28, 6, 0)
        );

        let r = replay(GO_ALPHA, false);
        assert!(r.alive.is_empty());
        assert_eq!(
            (r.last_clock, r.last_event_clock, r.last_query_clock),
            (30, 0, 0)
        );
        assert!(r.left);
        assert!(r.warnings.is_empty());
        let r = replay(GO_ALPHA, true);
        assert_eq!(names(&r), vec!["alpha", "beta"]);
        assert_eq!(
            (r.last_clock, r.last_event_clock, r.last_query_clock),
            (30, 6, 14)
        );

        // Appending to a Go file continues it.
        let dir = TempDir::new();
        let p = dir.file(GO_AFTER_KILL9);
        let (mut s, _) = Snapshot::open(&p, false).unwrap();
        s.clock(27).unwrap();
        s.event_clock(6).unwrap();
        s.clock(30).unwrap();
        s.not_alive("beta").unwrap();
        drop(s);
        let text = fs::read_to_string(&p).unwrap();
        assert_eq!(
            text,
            format!("{GO_AFTER_KILL9}clock: 30\nnot-alive: beta\n")
        );
    }

    #[test]
    fn writer_after_leave() {
        let dir = TempDir::new();
        let p = dir.path();
        let (mut s, _) = Snapshot::open(&p, false).unwrap();
        s.alive("a", addr("1.1.1.1:1")).unwrap();
        s.event_clock(2).unwrap();
        s.clock(3).unwrap();
        s.leave().unwrap();
        assert!(s.is_leaving());
        // Ignored after a leave, except the clock.
        s.alive("b", addr("2.2.2.2:2")).unwrap();
        s.not_alive("a").unwrap();
        s.event_clock(5).unwrap();
        s.query_clock(5).unwrap();
        s.leave().unwrap();
        s.clock(4).unwrap();
        s.close().unwrap();
        let text = fs::read_to_string(&p).unwrap();
        assert_eq!(
            text,
            "alive: a 1.1.1.1:1\nevent-clock: 2\nclock: 3\nleave\nclock: 4\n"
        );
        let r = replay(&text, false);
        assert!(r.left && r.alive.is_empty());
    }

    /// Replays `text` with both `rejoin_after_leave` settings, comparing everything but
    /// warnings.
    fn same_replay(a: &str, b: &str) {
        for rejoin in [false, true] {
            let mut ra = replay(a, rejoin);
            let mut rb = replay(b, rejoin);
            ra.warnings.clear();
            rb.warnings.clear();
            assert_eq!(ra, rb, "rejoin_after_leave = {rejoin}");
        }
    }

    #[test]
    fn compaction_triggers_and_preserves_state() {
        let dir = TempDir::new();
        let p = dir.path();
        let (mut s, _) = Snapshot::open(&p, false).unwrap();
        let mut log = String::new();
        let mut max_size = 0;
        let mut compactions = 0;
        let mut last_size = 0;
        for i in 0..20_000u64 {
            let name = format!("node-{}", i % 300);
            let a = SocketAddr::new([10, 0, (i % 7) as u8, 1].into(), 7946);
            if i % 3 == 2 {
                s.not_alive(&name).unwrap();
                log.push_str(&format!("not-alive: {name}\n"));
            } else {
                s.alive(&name, a).unwrap();
                log.push_str(&format!("alive: {name} {a}\n"));
            }
            if i % 10 == 0 {
                s.clock(i).unwrap();
                s.event_clock(i / 2).unwrap();
                s.query_clock(i / 3).unwrap();
                log.push_str(&format!(
                    "clock: {i}\nevent-clock: {}\nquery-clock: {}\n",
                    i / 2,
                    i / 3
                ));
            }
            if s.size() < last_size {
                compactions += 1;
            }
            last_size = s.size();
            max_size = max_size.max(s.size());
            assert!(s.size() <= s.max_size() + 64);
        }
        assert!(compactions >= 3, "{compactions} compactions");
        assert!(max_size <= MIN_COMPACT_SIZE + 64);
        assert!(log.len() as u64 > 4 * MIN_COMPACT_SIZE);
        let on_disk = fs::metadata(&p).unwrap().len();
        assert_eq!(on_disk, s.size());
        assert!(!compact_path(&p).exists());
        let mode = fs::metadata(&p).unwrap().permissions();
        assert_eq!(std::os::unix::fs::PermissionsExt::mode(&mode) & 0o111, 0);
        drop(s);
        same_replay(&fs::read_to_string(&p).unwrap(), &log);

        // Forced compaction is exactly Go's layout.
        let (mut s, r) = Snapshot::open(&p, false).unwrap();
        s.compact().unwrap();
        let mut expected = String::new();
        for (n, a) in &r.alive {
            expected.push_str(&format!("alive: {n} {a}\n"));
        }
        expected.push_str(&format!(
            "clock: {}\nevent-clock: {}\nquery-clock: {}\n",
            r.last_clock, r.last_event_clock, r.last_query_clock
        ));
        assert_eq!(fs::read_to_string(&p).unwrap(), expected);
        // And the descriptor appends to the new file.
        s.not_alive("node-0").unwrap();
        assert!(fs::read_to_string(&p)
            .unwrap()
            .ends_with("query-clock: 6663\nnot-alive: node-0\n"));
    }

    #[test]
    fn compaction_threshold_follows_alive_count() {
        let dir = TempDir::new();
        let p = dir.path();
        let (mut s, _) = Snapshot::open(&p, false).unwrap();
        for i in 0..2000 {
            s.alive(&format!("n{i}"), addr("1.1.1.1:1")).unwrap();
        }
        assert_eq!(s.max_size(), 2000 * 256);
        s.set_min_compact_size(1 << 20);
        assert_eq!(s.max_size(), 1 << 20);
    }

    #[test]
    fn compaction_after_leave_keeps_leave() {
        for rejoin in [false, true] {
            let dir = TempDir::new();
            let p = dir.path();
            let (mut s, _) = Snapshot::open(&p, rejoin).unwrap();
            s.alive("a", addr("1.1.1.1:1")).unwrap();
            s.clock(3).unwrap();
            s.event_clock(4).unwrap();
            s.query_clock(5).unwrap();
            s.leave().unwrap();
            s.clock(6).unwrap();
            let before = fs::read_to_string(&p).unwrap();
            s.compact().unwrap();
            drop(s);
            let after = fs::read_to_string(&p).unwrap();
            assert!(after.contains("\nleave\nclock: 6\n"), "{after}");
            same_replay(&before, &after);
        }
    }

    #[test]
    fn failed_compaction_is_retried_after_interval() {
        let dir = TempDir::new();
        let p = dir.path();
        let (mut s, _) = Snapshot::open(&p, false).unwrap();
        s.set_min_compact_size(200);
        // A directory with content in the way makes the compaction fail.
        let blocker = compact_path(&p);
        fs::create_dir(&blocker).unwrap();
        fs::write(blocker.join("x"), "").unwrap();
        let mut errors = 0;
        for _ in 0..40 {
            if s.alive("same", addr("1.1.1.1:1")).is_err() {
                errors += 1;
            }
        }
        // One failed attempt; the other lines were appended normally.
        assert_eq!(errors, 1);
        assert!(s.last_compact_failure.is_some());
        assert!(s.size() > 600);
        fs::remove_dir_all(&blocker).unwrap();
        s.alive("late", addr("1.1.1.1:1")).unwrap();
        assert!(s.size() > 600, "no retry before the interval");
        s.last_compact_failure = Some(Instant::now() - COMPACTION_RETRY_INTERVAL);
        s.alive("later", addr("1.1.1.1:1")).unwrap();
        assert!(s.last_compact_failure.is_none());
        assert!(s.size() < 200);
        drop(s);
        let r = replay(&fs::read_to_string(&p).unwrap(), false);
        assert_eq!(names(&r), vec!["late", "later", "same"]);
    }

    #[test]
    fn write_error_recovers_by_compaction() {
        let dir = TempDir::new();
        let p = dir.path();
        let (mut s, _) = Snapshot::open(&p, false).unwrap();
        s.alive("a", addr("1.1.1.1:1")).unwrap();
        // Swap in a read-only descriptor: the next write fails.
        s.file = File::open(&p).unwrap();
        assert!(s.alive("b", addr("2.2.2.2:2")).is_ok(), "recovered at once");
        assert!(!s.broken);
        s.file = File::open(&p).unwrap();
        s.last_compact_failure = Some(Instant::now());
        assert!(s.alive("c", addr("3.3.3.3:3")).is_err());
        assert!(s.broken);
        assert!(s.clock(9).is_err(), "suspended");
        s.last_compact_failure = Some(Instant::now() - COMPACTION_RETRY_INTERVAL);
        s.not_alive("a").unwrap();
        assert!(!s.broken);
        drop(s);
        let r = replay(&fs::read_to_string(&p).unwrap(), false);
        assert_eq!(names(&r), vec!["b", "c"]);
        assert_eq!(r.last_clock, 9);
    }

    #[test]
    fn every_record_is_in_the_file_when_the_call_returns() {
        let dir = TempDir::new();
        let p = dir.path();
        let (mut s, _) = Snapshot::open(&p, false).unwrap();
        let mut other = File::open(&p).unwrap();
        let mut seen = String::new();
        let mut check = |s: &Snapshot, expect: &str| {
            let mut buf = String::new();
            other.read_to_string(&mut buf).unwrap();
            seen.push_str(&buf);
            assert!(seen.ends_with(expect), "{seen:?} lacks {expect:?}");
            assert_eq!(seen.len() as u64, s.size());
        };
        s.alive("a", addr("1.1.1.1:1")).unwrap();
        check(&s, "alive: a 1.1.1.1:1\n");
        s.clock(1).unwrap();
        check(&s, "clock: 1\n");
        s.event_clock(1).unwrap();
        check(&s, "event-clock: 1\n");
        s.query_clock(1).unwrap();
        check(&s, "query-clock: 1\n");
        s.not_alive("a").unwrap();
        check(&s, "not-alive: a\n");
        s.leave().unwrap();
        check(&s, "leave\n");
    }

    /// Child half of [`sigkill_loses_nothing`]: records forever, reporting each record on
    /// stdout once the call has returned. Does nothing in a normal test run.
    #[test]
    fn crash_child() {
        let Ok(path) = std::env::var(CHILD_ENV) else {
            return;
        };
        let (mut s, _) = Snapshot::open(Path::new(&path), false).unwrap();
        let mut out = io::stdout().lock();
        for i in 0..10_000_000u64 {
            s.alive(&format!("node-{i}"), addr("10.1.2.3:7946"))
                .unwrap();
            s.event_clock(i + 1).unwrap();
            writeln!(out, "recorded {i}").unwrap();
            out.flush().unwrap();
        }
    }

    #[test]
    fn sigkill_loses_nothing() {
        let dir = TempDir::new();
        let p = dir.path();
        let exe = std::env::current_exe().unwrap();
        let mut child = Command::new(exe)
            .args([
                "--exact",
                "snapshot::tests::crash_child",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, &p)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = io::BufReader::new(child.stdout.take().unwrap()).lines();
        let mut last: Option<u64> = None;
        // Past the first compaction (about 4,000 records), then kill mid-stream.
        for line in lines.by_ref() {
            if let Some(i) = line.unwrap().strip_prefix("recorded ") {
                let i: u64 = i.parse().unwrap();
                last = Some(i);
                if i == 6000 {
                    child.kill().unwrap(); // SIGKILL
                    break;
                }
            }
        }
        // Records reported before the kill landed.
        for line in lines {
            let Ok(line) = line else { break };
            if let Some(i) = line.strip_prefix("recorded ") {
                last = Some(i.parse().unwrap());
            }
        }
        let status = child.wait().unwrap();
        assert!(!status.success());
        let last = last.expect("child reported nothing");
        assert!(last >= 6000);
        let (_, r) = Snapshot::open(&p, false).unwrap();
        let alive: std::collections::HashSet<&str> =
            r.alive.iter().map(|(n, _)| n.as_str()).collect();
        for i in 0..=last {
            assert!(
                alive.contains(format!("node-{i}").as_str()),
                "node-{i} lost"
            );
        }
        assert!(r.last_event_clock > last);
    }
}
