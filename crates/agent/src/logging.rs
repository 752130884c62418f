//! Go `log`-style output: `YYYY/MM/DD HH:MM:SS [LEVEL] component: message`.

use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// Parses a Go log level (case-insensitive).
pub(crate) fn parse_level(s: &str) -> Option<Level> {
    match s.to_ascii_uppercase().as_str() {
        "TRACE" => Some(Level::TRACE),
        "DEBUG" => Some(Level::DEBUG),
        "INFO" => Some(Level::INFO),
        "WARN" => Some(Level::WARN),
        "ERR" | "ERROR" => Some(Level::ERROR),
        _ => None,
    }
}

/// `YYYY/MM/DD HH:MM:SS` in UTC, now (Go's `log` prefix).
pub(crate) fn timestamp() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(0))
        .unwrap_or(0);
    serf_gocompat::time::log_timestamp(secs)
}

fn component(target: &str) -> &str {
    if target.starts_with("serf_membership") || target.starts_with("serf_runtime") {
        "memberlist"
    } else if target.starts_with("serf_core") {
        "serf"
    } else if target == "serf::agent" {
        "agent"
    } else if target.starts_with("serf::rpc") || target.starts_with("serf_agent::rpc") {
        "agent.ipc"
    } else if target == "agent.mdns" {
        "agent.mdns"
    } else {
        "agent"
    }
}

/// The level tag Go prints.
pub(crate) fn level_tag(l: Level) -> &'static str {
    match l {
        Level::TRACE => "TRACE",
        Level::DEBUG => "DEBUG",
        Level::INFO => "INFO",
        Level::WARN => "WARN",
        Level::ERROR => "ERR",
    }
}

struct Fields {
    message: String,
    rest: String,
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.rest, " {}={value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            let _ = write!(self.rest, " {}={value}", field.name());
        }
    }
}

/// `[LEVEL] component: message key=value...` for an event.
fn event_text(event: &Event<'_>) -> String {
    let meta = event.metadata();
    let mut f = Fields {
        message: String::new(),
        rest: String::new(),
    };
    event.record(&mut f);
    // Go's logger adds the line's newline only when the message lacks one.
    if f.rest.is_empty() && f.message.ends_with('\n') {
        f.message.pop();
    }
    format!(
        "[{}] {}: {}{}",
        level_tag(*meta.level()),
        component(meta.target()),
        f.message,
        f.rest
    )
}

/// Whether lines are JSON objects (`-log-json`).
static JSON: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Makes every log line (console, syslog aside, and `monitor`) a JSON object.
pub(crate) fn set_json(on: bool) {
    JSON.store(on, std::sync::atomic::Ordering::Relaxed);
}

fn json_enabled() -> bool {
    JSON.load(std::sync::atomic::Ordering::Relaxed)
}

/// RFC 3339 in UTC with microseconds, as hclog writes `@timestamp`.
fn rfc3339_now() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let c = serf_gocompat::time::civil_utc(i64::try_from(now.as_secs()).unwrap_or(0));
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        c.year,
        c.month,
        c.day,
        c.hour,
        c.minute,
        c.second,
        now.subsec_micros()
    )
}

/// One JSON object for an event, with hclog's field names: `@timestamp`, `@level`
/// (`trace` ... `error`), `@module` (`agent`, `serf`, `memberlist`, ...), `@message`, and
/// the event's other fields as strings.
fn json_line(event: &Event<'_>) -> String {
    let meta = event.metadata();
    let mut f = JsonFields::default();
    event.record(&mut f);
    let mut obj = serde_json::Map::new();
    obj.insert("@timestamp".into(), rfc3339_now().into());
    obj.insert(
        "@level".into(),
        level_tag(*meta.level())
            .replace("ERR", "error")
            .to_ascii_lowercase()
            .into(),
    );
    obj.insert("@module".into(), component(meta.target()).into());
    obj.insert(
        "@message".into(),
        f.message.trim_end_matches('\n').to_string().into(),
    );
    for (k, v) in f.rest {
        obj.entry(k).or_insert(v.into());
    }
    serde_json::Value::Object(obj).to_string()
}

#[derive(Default)]
struct JsonFields {
    message: String,
    rest: Vec<(String, String)>,
}

impl Visit for JsonFields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            self.rest
                .push((field.name().to_string(), format!("{value:?}")));
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            self.rest
                .push((field.name().to_string(), value.to_string()));
        }
    }
}

/// The event formatter.
#[derive(Debug, Clone, Copy)]
pub(crate) struct GoFormat;

impl<S, N> FormatEvent<S, N> for GoFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut w: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        if json_enabled() {
            return writeln!(w, "{}", json_line(event));
        }
        writeln!(w, "    {} {}", timestamp(), event_text(event))
    }
}

/// The last log lines and a live feed of new ones, for `monitor` (all levels, whatever
/// the console level is).
#[derive(Debug)]
pub(crate) struct LogSink {
    ring: std::sync::Mutex<std::collections::VecDeque<(Level, String)>>,
    live: tokio::sync::broadcast::Sender<(Level, String)>,
}

/// Lines kept for `monitor` (Go keeps 512).
pub(crate) const LOG_RING: usize = 512;

static SINK: std::sync::OnceLock<LogSink> = std::sync::OnceLock::new();

/// The process-wide sink.
pub(crate) fn sink() -> &'static LogSink {
    SINK.get_or_init(|| LogSink {
        ring: std::sync::Mutex::new(std::collections::VecDeque::with_capacity(LOG_RING)),
        live: tokio::sync::broadcast::channel(LOG_RING).0,
    })
}

impl LogSink {
    fn push(&self, level: Level, line: String) {
        let mut ring = match self.ring.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        if ring.len() == LOG_RING {
            ring.pop_front();
        }
        ring.push_back((level, line.clone()));
        drop(ring);
        let _ = self.live.send((level, line));
    }

    /// The kept lines at `level` or more severe, then a receiver for new ones.
    pub(crate) fn subscribe(
        &self,
        level: Level,
    ) -> (
        Vec<String>,
        tokio::sync::broadcast::Receiver<(Level, String)>,
    ) {
        let ring = match self.ring.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let rx = self.live.subscribe();
        (
            ring.iter()
                .filter(|(l, _)| *l <= level)
                .map(|(_, s)| s.clone())
                .collect(),
            rx,
        )
    }
}

/// Syslog facility numbers by Go's names.
pub(crate) fn syslog_facility(name: &str) -> Option<u8> {
    Some(match name.to_ascii_uppercase().as_str() {
        "KERN" => 0,
        "USER" => 1,
        "MAIL" => 2,
        "DAEMON" => 3,
        "AUTH" => 4,
        "SYSLOG" => 5,
        "LPR" => 6,
        "NEWS" => 7,
        "UUCP" => 8,
        "CRON" => 9,
        "AUTHPRIV" => 10,
        "FTP" => 11,
        "LOCAL0" => 16,
        "LOCAL1" => 17,
        "LOCAL2" => 18,
        "LOCAL3" => 19,
        "LOCAL4" => 20,
        "LOCAL5" => 21,
        "LOCAL6" => 22,
        "LOCAL7" => 23,
        _ => return None,
    })
}

/// Sends log lines to the local syslog daemon (`/dev/log`), tag `serf`.
pub(crate) struct SyslogLayer {
    sock: std::os::unix::net::UnixDatagram,
    facility: u8,
}

impl SyslogLayer {
    /// Connects to `/dev/log`.
    pub(crate) fn connect(facility: u8) -> Result<Self, String> {
        Self::connect_to(std::path::Path::new("/dev/log"), facility)
    }

    /// Connects to a syslog datagram socket.
    pub(crate) fn connect_to(path: &std::path::Path, facility: u8) -> Result<Self, String> {
        let sock = std::os::unix::net::UnixDatagram::unbound().map_err(|e| e.to_string())?;
        sock.connect(path)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(SyslogLayer { sock, facility })
    }
}

impl<S: Subscriber> tracing_subscriber::Layer<S> for SyslogLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: tracing_subscriber::layer::Context<'_, S>) {
        // TRACE->debug, DEBUG->info, INFO->notice, WARN->warning, ERR->err (as Go's agent).
        let severity = match *event.metadata().level() {
            Level::TRACE => 7,
            Level::DEBUG => 6,
            Level::INFO => 5,
            Level::WARN => 4,
            Level::ERROR => 3,
        };
        let msg = format!(
            "<{}>serf: {}",
            u16::from(self.facility) * 8 + severity,
            event_text(event)
        );
        let _ = self.sock.send(msg.as_bytes());
    }
}

/// A layer that copies every event into the [`LogSink`].
struct SinkLayer;

impl<S: Subscriber> tracing_subscriber::Layer<S> for SinkLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: tracing_subscriber::layer::Context<'_, S>) {
        let line = if json_enabled() {
            json_line(event)
        } else {
            format!("{} {}", timestamp(), event_text(event))
        };
        sink().push(*event.metadata().level(), line);
    }
}

/// Console lines held back until [`ungate`] (Go's `GatedWriter`): the agent prints its
/// banner first. `None` once open. Bounded: beyond the cap, lines are dropped.
static GATE: std::sync::Mutex<Option<Vec<u8>>> = std::sync::Mutex::new(Some(Vec::new()));

/// Most bytes held back by the gate.
const GATE_CAP: usize = 1 << 20;

fn gate() -> std::sync::MutexGuard<'static, Option<Vec<u8>>> {
    match GATE.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

/// Writes the held-back console lines and lets new ones through.
pub(crate) fn ungate() {
    let mut g = gate();
    if let Some(buf) = g.take() {
        let mut out = std::io::stdout().lock();
        let _ = std::io::Write::write_all(&mut out, &buf);
        let _ = std::io::Write::flush(&mut out);
    }
}

/// Standard output behind the gate.
struct GatedStdout;

impl std::io::Write for GatedStdout {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let mut g = gate();
        match g.as_mut() {
            Some(buf) => {
                if buf.len() + data.len() <= GATE_CAP {
                    buf.extend_from_slice(data);
                }
                Ok(data.len())
            }
            None => {
                drop(g);
                std::io::stdout().write_all(data)?;
                Ok(data.len())
            }
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stdout().flush()
    }
}

/// Changes the console log level of the installed logger.
pub(crate) type LevelHandle = Box<dyn Fn(Level) + Send + Sync>;

/// Installs the global logger: the console at `level` (the handle changes it later, on
/// SIGHUP), and the monitor sink at DEBUG.
pub(crate) fn init(level: Level, syslog: Option<SyslogLayer>) -> Option<LevelHandle> {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::Layer as _;
    let (filter, handle) = tracing_subscriber::reload::Layer::new(
        tracing_subscriber::filter::LevelFilter::from_level(level),
    );
    let fmt = tracing_subscriber::fmt::layer()
        .event_format(GoFormat)
        .with_writer(|| GatedStdout);
    tracing_subscriber::registry()
        .with(SinkLayer.with_filter(tracing_subscriber::filter::LevelFilter::DEBUG))
        .with(fmt.with_filter(filter))
        .with(
            syslog
                .map(|l| l.with_filter(tracing_subscriber::filter::LevelFilter::from_level(level))),
        )
        .try_init()
        .ok()?;
    Some(Box::new(move |l: Level| {
        let _ = handle.modify(|f| *f = tracing_subscriber::filter::LevelFilter::from_level(l));
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::layer::SubscriberExt;

    #[test]
    fn syslog_lines_carry_go_priorities() {
        let dir = std::env::temp_dir().join(format!("serf-syslog-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("log.sock");
        let _ = std::fs::remove_file(&path);
        let server = std::os::unix::net::UnixDatagram::bind(&path).expect("bind");
        let layer = SyslogLayer::connect_to(&path, syslog_facility("local0").expect("facility"))
            .expect("connect");
        let sub = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(sub, || {
            tracing::warn!("disk is {} full", 99);
            tracing::info!("hello");
        });
        let mut buf = [0u8; 512];
        let n = server.recv(&mut buf).expect("recv");
        assert_eq!(
            std::str::from_utf8(&buf[..n]).expect("utf8"),
            "<132>serf: [WARN] agent: disk is 99 full"
        );
        let n = server.recv(&mut buf).expect("recv");
        assert_eq!(
            std::str::from_utf8(&buf[..n]).expect("utf8"),
            "<133>serf: [INFO] agent: hello"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn levels_and_timestamps() {
        assert_eq!(parse_level("err"), Some(Level::ERROR));
        assert_eq!(parse_level("bogus"), None);
        let t = timestamp();
        assert_eq!(t.len(), 19);
        assert_eq!(&t[4..5], "/");
    }
}
