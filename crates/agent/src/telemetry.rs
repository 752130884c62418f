//! Agent telemetry: a [`metrics::Recorder`] that reproduces what Go's `serf agent` emits
//! through armon/go-metrics configured with `DefaultConfig("serf-agent")`.
//!
//! Other crates record with the `metrics` facade and dotted names without a prefix
//! (`metrics::counter!("memberlist.udp.sent").increment(n)`); this module maps them onto
//! go-metrics' model:
//!
//! * counters → `IncrCounter`, histograms → `AddSample` (milliseconds), gauges → `SetGauge`;
//!   values go through `f32` as in Go, so aggregates and sink lines match byte for byte;
//! * every name gets the `serf-agent.` prefix; gauges also get the hostname after it
//!   (`serf-agent.<host>.memberlist.health.score`), but only when a statsite or statsd
//!   sink is configured (Go sets `EnableHostname = false` otherwise) and the hostname is
//!   not empty; labels, which Go callers never use here, are appended as `.<value>`;
//! * an in-memory sink (Go's `NewInmemSink(10s, 1min)`): 10 s intervals aligned to the
//!   wall clock, the last 6 kept, gauges as last values and counters and samples as
//!   aggregates. Unlike Go, each interval holds at most [`MAX_NAMES`] distinct names
//!   (new names beyond that are dropped) because names can come from remote event names;
//! * on SIGUSR1 the retained intervals except the current one are written to stderr in
//!   Go's format (Go prints in map order; we sort by name within each kind);
//! * optional statsite (TCP) and statsd (UDP) sinks with Go's line format
//!   (`name:value|c`, `|g`, `|ms`), a bounded queue of 4096 lines each (lines are dropped
//!   when it is full, as Go does), a flush every 100 ms, statsd datagrams of at most 1400
//!   bytes (go-metrics' `statsdMaxLen`), and a reconnect after 5 s on errors. As in Go,
//!   creating a sink never fails: addresses are resolved when connecting and errors are
//!   written to stderr (`[ERR] Error connecting to statsd! Err: ...`) before retrying;
//! * runtime gauges every second, under Go's names so dashboards keep working:
//!   `runtime.num_goroutines` (the tokio runtime's alive tasks) and `runtime.sys_bytes`
//!   (the resident set size, from `VmRSS` in `/proc/self/status`; Go reports the memory
//!   obtained from the OS, which is the closest thing we can measure).
//!
//! Go runtime metrics that are not emitted, because there is nothing true to report:
//! `runtime.alloc_bytes`, `runtime.malloc_count`, `runtime.free_count` and
//! `runtime.heap_objects` (no allocator statistics without a counting global allocator),
//! and `runtime.total_gc_pause_ns`, `runtime.total_gc_runs` and the `runtime.gc_pause_ns`
//! samples (there is no garbage collector).
//!
//! Other differences from Go: times in the dump are UTC and never carry Go's monotonic
//! clock suffix (`m=+1.234`); newlines in names are replaced with `_` in sink lines so a
//! remote event name cannot inject statsd lines; `Counter::absolute` is ignored and gauge
//! increments apply to the last value the in-memory sink holds for the gauge.

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;
use std::io::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use metrics::{
    Counter, CounterFn, Gauge, GaugeFn, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder,
    SharedString, Unit,
};
use tokio::io::AsyncWriteExt as _;
use tokio::sync::mpsc;

/// The service name Go's agent passes to `metrics.DefaultConfig`.
const SERVICE: &str = "serf-agent";
/// Length of an in-memory aggregation interval (Go: 10 s).
const INTERVAL_NS: i64 = 10_000_000_000;
/// Intervals the in-memory sink keeps (Go: 1 min / 10 s).
const RETAIN: usize = 6;
/// Most distinct names one interval holds (not in Go).
pub(crate) const MAX_NAMES: usize = 1024;
/// Lines queued per network sink (Go: 4096).
const QUEUE: usize = 4096;
/// Network sinks flush this often (Go's `flushInterval`).
const FLUSH: Duration = Duration::from_millis(100);
/// Wait before reconnecting a network sink after an error (Go: 5 s).
const RECONNECT_WAIT: Duration = Duration::from_secs(5);
/// Largest statsd datagram (go-metrics' `statsdMaxLen`).
const STATSD_MAX_LEN: usize = 1400;
/// statsite buffer size (Go's default `bufio.Writer`).
const STATSITE_BUF: usize = 4096;
/// Runtime gauges are emitted this often (Go's `ProfileInterval`).
const RUNTIME_INTERVAL: Duration = Duration::from_secs(1);

/// Telemetry settings from the agent configuration.
#[derive(Debug, Clone, Default)]
pub(crate) struct TelemetryConfig {
    /// `statsite_addr`: a statsite server to stream metrics to over TCP.
    pub statsite_addr: Option<String>,
    /// `statsd_addr`: a statsd server to send metrics to over UDP.
    pub statsd_addr: Option<String>,
}

/// A handle on the agent's telemetry; cheap to clone.
#[derive(Clone)]
pub(crate) struct Telemetry {
    core: Arc<Core>,
}

impl std::fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Telemetry").finish_non_exhaustive()
    }
}

impl Telemetry {
    fn new(host: Option<String>, clock: Clock, sinks: Vec<mpsc::Sender<String>>) -> Self {
        Telemetry {
            core: Arc::new(Core {
                naming: Naming {
                    service: SERVICE.to_string(),
                    host,
                },
                clock,
                inmem: Mutex::new(Inmem::default()),
                sinks,
            }),
        }
    }

    /// The in-memory sink in Go's SIGUSR1 format: every retained interval except the
    /// current one, gauges then counters then samples, sorted by name.
    pub(crate) fn dump(&self) -> String {
        self.core.dump()
    }

    fn recorder(&self) -> TelemetryRecorder {
        TelemetryRecorder {
            core: self.core.clone(),
        }
    }
}

/// Builds the sinks, installs the global recorder, and starts the flush tasks, the
/// runtime gauges and the SIGUSR1 dump. Must be called within a tokio runtime.
///
/// If a global recorder is already set (tests), the returned handle still works on its
/// own state. As in Go, unusable sink addresses are not an error here: the sinks log
/// connection errors and retry. Errors are only returned when there is no runtime or
/// the signal handler cannot be installed.
pub(crate) fn install(cfg: &TelemetryConfig) -> Result<Telemetry, String> {
    let rt = tokio::runtime::Handle::try_current()
        .map_err(|e| format!("Failed to start telemetry: {e}"))?;
    let statsite = cfg.statsite_addr.clone().filter(|a| !a.is_empty());
    let statsd = cfg.statsd_addr.clone().filter(|a| !a.is_empty());
    let mut usr1 = {
        let _guard = rt.enter();
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::user_defined1())
            .map_err(|e| format!("Failed to start telemetry: SIGUSR1 handler: {e}"))?
    };
    let host = gauge_host(statsite.is_some() || statsd.is_some(), &read_hostname());
    let mut sinks = Vec::new();
    if let Some(addr) = statsite {
        let (tx, rx) = mpsc::channel(QUEUE);
        rt.spawn(sink_task(false, addr, rx));
        sinks.push(tx);
    }
    if let Some(addr) = statsd {
        let (tx, rx) = mpsc::channel(QUEUE);
        rt.spawn(sink_task(true, addr, rx));
        sinks.push(tx);
    }
    let telemetry = Telemetry::new(host, Clock::System, sinks);
    // Already set (only in tests): the handle below still works on its own state.
    let _ = metrics::set_global_recorder(telemetry.recorder());
    rt.spawn(runtime_gauges(telemetry.core.clone()));
    let t = telemetry.clone();
    rt.spawn(async move {
        while usr1.recv().await.is_some() {
            let text = t.dump();
            let _ = std::io::stderr().write_all(text.as_bytes());
        }
    });
    Ok(telemetry)
}

/// The hostname segment for gauge names: Go inserts `os.Hostname()` only when
/// `EnableHostname` is on (a network sink is configured) and the name is not empty.
fn gauge_host(network_sinks: bool, hostname: &str) -> Option<String> {
    (network_sinks && !hostname.is_empty()).then(|| hostname.to_string())
}

/// `os.Hostname()`, or "" when it cannot be read.
fn read_hostname() -> String {
    crate::agent::os_hostname().unwrap_or_default()
}

/// The metric kinds of go-metrics used here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Counter,
    Gauge,
    Sample,
}

/// go-metrics' key rules for `DefaultConfig` with labels and type prefixes off.
#[derive(Debug)]
struct Naming {
    service: String,
    host: Option<String>,
}

impl Naming {
    /// The flattened name, as the in-memory sink stores it (spaces become `_`).
    fn full(&self, kind: Kind, name: &str, labels: &[&str]) -> String {
        let mut out = String::with_capacity(self.service.len() + name.len() + 16);
        out.push_str(&self.service);
        out.push('.');
        if kind == Kind::Gauge {
            if let Some(h) = &self.host {
                out.push_str(h);
                out.push('.');
            }
        }
        out.push_str(name);
        for l in labels {
            out.push('.');
            out.push_str(l);
        }
        out.replace(' ', "_")
    }
}

/// statsd/statsite key flattening: `:` and spaces become `_` (and, not in Go, newlines).
fn sink_name(full: &str) -> String {
    full.chars()
        .map(|c| match c {
            ':' | ' ' | '\n' | '\r' => '_',
            c => c,
        })
        .collect()
}

/// One statsd/statsite line: `name:%f|kind\n`.
fn sink_line(full: &str, value: f32, kind: Kind) -> String {
    let suffix = match kind {
        Kind::Counter => "c",
        Kind::Gauge => "g",
        Kind::Sample => "ms",
    };
    format!(
        "{}:{}|{suffix}\n",
        sink_name(full),
        go_fixed(f64::from(value), 6)
    )
}

/// Go's `%.<prec>f`.
fn go_fixed(v: f64, prec: usize) -> String {
    if v.is_nan() {
        "NaN".to_string()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.to_string()
    } else {
        format!("{v:.prec$}")
    }
}

/// Go's `time.Time.String()` for a UTC time without a monotonic reading:
/// `2006-01-02 15:04:05.999999999 +0000 UTC`.
fn go_time(unix_ns: i64) -> String {
    let secs = unix_ns.div_euclid(1_000_000_000);
    let frac = unix_ns.rem_euclid(1_000_000_000);
    let c = crate::logging::civil_utc(secs);
    let mut s = format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        c.year, c.month, c.day, c.hour, c.minute, c.second
    );
    if frac != 0 {
        let digits = format!("{frac:09}");
        s.push('.');
        s.push_str(digits.trim_end_matches('0'));
    }
    s.push_str(" +0000 UTC");
    s
}

/// Where "now" comes from; injectable for tests.
#[derive(Debug)]
enum Clock {
    System,
    #[cfg(test)]
    Manual(Arc<std::sync::atomic::AtomicI64>),
}

impl Clock {
    fn now_ns(&self) -> i64 {
        match self {
            Clock::System => SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
                .unwrap_or(0),
            #[cfg(test)]
            Clock::Manual(ns) => ns.load(std::sync::atomic::Ordering::SeqCst),
        }
    }
}

/// go-metrics' `AggregateSample` (without the rate, which the dump does not show).
#[derive(Debug, Clone, Default, PartialEq)]
struct Agg {
    count: i64,
    sum: f64,
    sum_sq: f64,
    min: f64,
    max: f64,
    last_ns: i64,
}

impl Agg {
    fn ingest(&mut self, v: f64, now_ns: i64) {
        self.count += 1;
        self.sum += v;
        self.sum_sq += v * v;
        if v < self.min || self.count == 1 {
            self.min = v;
        }
        if v > self.max || self.count == 1 {
            self.max = v;
        }
        self.last_ns = now_ns;
    }

    /// The sample standard deviation, computed as Go does.
    fn stddev(&self) -> f64 {
        let div = self.count.saturating_mul(self.count - 1);
        if div == 0 {
            return 0.0;
        }
        let num = self.count as f64 * self.sum_sq - self.sum * self.sum;
        (num / div as f64).sqrt()
    }

    fn mean(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.sum / self.count as f64
        }
    }
}

impl std::fmt::Display for Agg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sd = self.stddev();
        if self.count == 0 {
            write!(f, "Count: 0")
        } else if sd == 0.0 {
            write!(
                f,
                "Count: {} Sum: {} LastUpdated: {}",
                self.count,
                go_fixed(self.sum, 3),
                go_time(self.last_ns)
            )
        } else {
            write!(
                f,
                "Count: {} Min: {} Mean: {} Max: {} Stddev: {} Sum: {} LastUpdated: {}",
                self.count,
                go_fixed(self.min, 3),
                go_fixed(self.mean(), 3),
                go_fixed(self.max, 3),
                go_fixed(sd, 3),
                go_fixed(self.sum, 3),
                go_time(self.last_ns)
            )
        }
    }
}

/// One aggregation interval; maps are ordered so the dump is sorted.
#[derive(Debug, Default)]
struct Interval {
    start_ns: i64,
    gauges: BTreeMap<String, f32>,
    counters: BTreeMap<String, Agg>,
    samples: BTreeMap<String, Agg>,
}

impl Interval {
    fn names(&self) -> usize {
        self.gauges.len() + self.counters.len() + self.samples.len()
    }

    /// The aggregate for `name`, created when there is room for a new name.
    fn agg(&mut self, kind: Kind, name: &str) -> Option<&mut Agg> {
        let room = self.names() < MAX_NAMES;
        let map = if kind == Kind::Counter {
            &mut self.counters
        } else {
            &mut self.samples
        };
        if map.contains_key(name) {
            map.get_mut(name)
        } else if room {
            Some(map.entry(name.to_string()).or_default())
        } else {
            None
        }
    }

    fn set_gauge(&mut self, name: &str, v: f32) {
        if let Some(g) = self.gauges.get_mut(name) {
            *g = v;
        } else if self.names() < MAX_NAMES {
            self.gauges.insert(name.to_string(), v);
        }
    }
}

/// The retained intervals, oldest first.
#[derive(Debug, Default)]
struct Inmem {
    intervals: VecDeque<Interval>,
}

impl Inmem {
    /// The interval `now_ns` falls in, created (and old ones dropped) as needed.
    fn current(&mut self, now_ns: i64) -> Option<&mut Interval> {
        let start = now_ns - now_ns.rem_euclid(INTERVAL_NS);
        if self.intervals.back().map(|i| i.start_ns) != Some(start) {
            self.intervals.push_back(Interval {
                start_ns: start,
                ..Interval::default()
            });
            while self.intervals.len() > RETAIN {
                self.intervals.pop_front();
            }
        }
        self.intervals.back_mut()
    }

    /// The newest value held for a gauge.
    fn last_gauge(&self, name: &str) -> Option<f32> {
        self.intervals
            .iter()
            .rev()
            .find_map(|i| i.gauges.get(name).copied())
    }
}

/// State shared by the recorder, its handles and the background tasks.
struct Core {
    naming: Naming,
    clock: Clock,
    inmem: Mutex<Inmem>,
    sinks: Vec<mpsc::Sender<String>>,
}

impl std::fmt::Debug for Core {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core")
            .field("naming", &self.naming)
            .field("sinks", &self.sinks.len())
            .finish_non_exhaustive()
    }
}

impl Core {
    fn lock(&self) -> MutexGuard<'_, Inmem> {
        self.inmem.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a line on every network sink; drops it where the queue is full.
    fn emit(&self, full: &str, value: f32, kind: Kind) {
        if self.sinks.is_empty() {
            return;
        }
        let line = sink_line(full, value, kind);
        for s in &self.sinks {
            let _ = s.try_send(line.clone());
        }
    }

    fn aggregate(&self, kind: Kind, full: &str, value: f32) {
        let now = self.clock.now_ns();
        if let Some(a) = self.lock().current(now).and_then(|iv| iv.agg(kind, full)) {
            a.ingest(f64::from(value), now);
        }
        self.emit(full, value, kind);
    }

    fn set_gauge(&self, full: &str, value: f32) {
        let now = self.clock.now_ns();
        if let Some(iv) = self.lock().current(now) {
            iv.set_gauge(full, value);
        }
        self.emit(full, value, Kind::Gauge);
    }

    fn adjust_gauge(&self, full: &str, delta: f64) {
        let now = self.clock.now_ns();
        let value = {
            let mut inmem = self.lock();
            let old = inmem.last_gauge(full).unwrap_or(0.0);
            let value = (f64::from(old) + delta) as f32;
            if let Some(iv) = inmem.current(now) {
                iv.set_gauge(full, value);
            }
            value
        };
        self.emit(full, value, Kind::Gauge);
    }

    fn dump(&self) -> String {
        let now = self.clock.now_ns();
        let mut inmem = self.lock();
        // Like Go's `Data()`: make sure the current interval exists, then skip it.
        let _ = inmem.current(now);
        let done = inmem.intervals.len().saturating_sub(1);
        let mut out = String::new();
        for iv in inmem.intervals.iter().take(done) {
            let t = go_time(iv.start_ns);
            for (name, v) in &iv.gauges {
                let _ = writeln!(out, "[{t}][G] '{name}': {}", go_fixed(f64::from(*v), 3));
            }
            for (name, a) in &iv.counters {
                let _ = writeln!(out, "[{t}][C] '{name}': {a}");
            }
            for (name, a) in &iv.samples {
                let _ = writeln!(out, "[{t}][S] '{name}': {a}");
            }
        }
        out
    }
}

/// The recorder installed globally; hands out handles bound to a flattened name.
#[derive(Debug, Clone)]
struct TelemetryRecorder {
    core: Arc<Core>,
}

impl TelemetryRecorder {
    fn handle(&self, kind: Kind, key: &Key) -> Arc<MetricHandle> {
        let labels: Vec<&str> = key.labels().map(|l| l.value()).collect();
        Arc::new(MetricHandle {
            core: self.core.clone(),
            full: self.core.naming.full(kind, key.name(), &labels),
        })
    }
}

impl Recorder for TelemetryRecorder {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        Counter::from_arc(self.handle(Kind::Counter, key))
    }

    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::from_arc(self.handle(Kind::Gauge, key))
    }

    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::from_arc(self.handle(Kind::Sample, key))
    }
}

/// A registered metric: the shared state and the name it records under.
#[derive(Debug)]
struct MetricHandle {
    core: Arc<Core>,
    full: String,
}

impl CounterFn for MetricHandle {
    fn increment(&self, value: u64) {
        self.core.aggregate(Kind::Counter, &self.full, value as f32);
    }

    fn absolute(&self, _value: u64) {}
}

impl GaugeFn for MetricHandle {
    fn increment(&self, value: f64) {
        self.core.adjust_gauge(&self.full, value);
    }

    fn decrement(&self, value: f64) {
        self.core.adjust_gauge(&self.full, -value);
    }

    fn set(&self, value: f64) {
        self.core.set_gauge(&self.full, value as f32);
    }
}

impl HistogramFn for MetricHandle {
    fn record(&self, value: f64) {
        self.core.aggregate(Kind::Sample, &self.full, value as f32);
    }
}

/// Go's `emitRuntimeStats`, for what we can truly measure; first after one interval.
async fn runtime_gauges(core: Arc<Core>) {
    let mut tick = tokio::time::interval_at(
        tokio::time::Instant::now() + RUNTIME_INTERVAL,
        RUNTIME_INTERVAL,
    );
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let tasks = rt.metrics().num_alive_tasks();
            let name = core.naming.full(Kind::Gauge, "runtime.num_goroutines", &[]);
            core.set_gauge(&name, tasks as f32);
        }
        if let Some(rss) = rss_bytes() {
            let name = core.naming.full(Kind::Gauge, "runtime.sys_bytes", &[]);
            core.set_gauge(&name, rss as f32);
        }
    }
}

/// The resident set size, from `VmRSS` in `/proc/self/status`.
fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_vm_rss(&status)
}

fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line
        .trim_start_matches("VmRSS:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    kb.checked_mul(1024)
}

/// Go's standard logger, which go-metrics' sinks write their errors to.
fn log_err(msg: &str) {
    let _ = writeln!(
        std::io::stderr(),
        "{} [ERR] {msg}",
        crate::logging::timestamp()
    );
}

/// An I/O error as Go's `net` package words it: `connect: connection refused`.
fn go_net_text(op: &str, e: &std::io::Error) -> String {
    let lower = serf_gocompat::errors::io_text(e);
    if e.raw_os_error().is_some() {
        format!("{op}: {lower}")
    } else {
        lower
    }
}

/// Go's message for a failed write or flush of a sink.
fn write_err(what: &'static str, sink: &'static str) -> impl Fn(std::io::Error) -> String {
    move |e| format!("Error {what} {sink}! Err: {}", go_net_text("write", &e))
}

/// Accumulates lines into batches of at most `max` bytes (a single longer line is sent
/// on its own, as in Go).
#[derive(Debug)]
struct Packer {
    buf: Vec<u8>,
    max: usize,
}

impl Packer {
    fn new(max: usize) -> Self {
        Packer {
            buf: Vec::with_capacity(max),
            max,
        }
    }

    /// Adds a line; returns the batch to send first when the line does not fit.
    fn push(&mut self, line: &str) -> Option<Vec<u8>> {
        let full = (!self.buf.is_empty() && self.buf.len() + line.len() > self.max)
            .then(|| std::mem::replace(&mut self.buf, Vec::with_capacity(self.max)));
        self.buf.extend_from_slice(line.as_bytes());
        full
    }

    /// The pending batch, if any.
    fn take(&mut self) -> Option<Vec<u8>> {
        (!self.buf.is_empty())
            .then(|| std::mem::replace(&mut self.buf, Vec::with_capacity(self.max)))
    }
}

fn flush_ticker() -> tokio::time::Interval {
    let mut t = tokio::time::interval_at(tokio::time::Instant::now() + FLUSH, FLUSH);
    t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    t
}

/// Go's WAIT state: discard queued lines for a while. False when the queue is closed.
async fn discard_for(rx: &mut mpsc::Receiver<String>, wait: Duration) -> bool {
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
async fn dial_udp(addr: &str) -> Result<tokio::net::UdpSocket, String> {
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
enum Conn {
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
async fn dial(statsd: bool, addr: &str) -> Result<Conn, String> {
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
async fn sink_task(statsd: bool, addr: String, mut rx: mpsc::Receiver<String>) {
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
async fn sink_session(conn: &mut Conn, rx: &mut mpsc::Receiver<String>) -> Result<(), String> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicI64, Ordering};

    /// 2026-11-23 00:27:00 UTC.
    const T0: i64 = 1_795_393_620 * 1_000_000_000;

    fn fixed(host: Option<&str>, sinks: Vec<mpsc::Sender<String>>) -> (Telemetry, Arc<AtomicI64>) {
        let clock = Arc::new(AtomicI64::new(T0));
        let t = Telemetry::new(
            host.map(str::to_string),
            Clock::Manual(clock.clone()),
            sinks,
        );
        (t, clock)
    }

    fn with<F: FnOnce()>(t: &Telemetry, f: F) {
        metrics::with_local_recorder(&t.recorder(), f);
    }

    fn names(t: &Telemetry) -> Vec<String> {
        let inmem = t.core.lock();
        let mut v = Vec::new();
        for iv in &inmem.intervals {
            v.extend(iv.gauges.keys().cloned());
            v.extend(iv.counters.keys().cloned());
            v.extend(iv.samples.keys().cloned());
        }
        v
    }

    #[test]
    fn names_get_the_service_prefix_and_gauges_the_hostname() {
        let (t, _) = fixed(Some("vm"), vec![]);
        with(&t, || {
            metrics::gauge!("memberlist.health.score").set(1.0);
            metrics::counter!("serf.events").increment(1);
            metrics::histogram!("memberlist.probeNode").record(2.5);
            let dynamic = format!("serf.events.{}", "deploy now");
            metrics::counter!(dynamic).increment(1);
        });
        let mut n = names(&t);
        n.sort();
        assert_eq!(
            n,
            [
                "serf-agent.memberlist.probeNode",
                "serf-agent.serf.events",
                "serf-agent.serf.events.deploy_now",
                "serf-agent.vm.memberlist.health.score",
            ]
        );
    }

    #[test]
    fn no_hostname_without_network_sinks_or_name() {
        assert_eq!(gauge_host(true, "vm"), Some("vm".to_string()));
        assert_eq!(gauge_host(false, "vm"), None);
        assert_eq!(gauge_host(true, ""), None);
        let (t, _) = fixed(None, vec![]);
        with(&t, || metrics::gauge!("memberlist.health.score").set(1.0));
        assert_eq!(names(&t), ["serf-agent.memberlist.health.score"]);
    }

    #[test]
    fn labels_are_appended_as_values() {
        let n = Naming {
            service: SERVICE.to_string(),
            host: Some("vm".to_string()),
        };
        assert_eq!(n.full(Kind::Counter, "a.b", &["x y"]), "serf-agent.a.b.x_y");
        assert_eq!(n.full(Kind::Gauge, "a", &[]), "serf-agent.vm.a");
    }

    #[test]
    fn aggregate_math() {
        let mut a = Agg::default();
        for v in [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0] {
            a.ingest(v, 7);
        }
        assert_eq!(a.count, 8);
        assert_eq!(a.sum, 40.0);
        assert_eq!(a.sum_sq, 232.0);
        assert_eq!((a.min, a.max), (2.0, 9.0));
        assert_eq!(a.mean(), 5.0);
        // Sample standard deviation: sqrt(32 / 7).
        assert!((a.stddev() - (32.0f64 / 7.0).sqrt()).abs() < 1e-12);
        let mut one = Agg::default();
        one.ingest(-3.0, 1);
        assert_eq!((one.min, one.max, one.stddev()), (-3.0, -3.0, 0.0));
        assert_eq!(Agg::default().mean(), 0.0);
    }

    #[test]
    fn aggregate_strings() {
        assert_eq!(Agg::default().to_string(), "Count: 0");
        let mut a = Agg::default();
        a.ingest(38.0, T0 + 10_143_316_439);
        assert_eq!(
            a.to_string(),
            "Count: 1 Sum: 38.000 LastUpdated: 2026-11-23 00:27:10.143316439 +0000 UTC"
        );
        a.ingest(38.0, T0 + 10_500_000_000);
        assert_eq!(
            a.to_string(),
            "Count: 2 Sum: 76.000 LastUpdated: 2026-11-23 00:27:10.5 +0000 UTC"
        );
        let mut b = Agg::default();
        for v in [1.0, 2.0, 4.0] {
            b.ingest(v, T0);
        }
        assert_eq!(
            b.to_string(),
            "Count: 3 Min: 1.000 Mean: 2.333 Max: 4.000 Stddev: 1.528 Sum: 7.000 \
             LastUpdated: 2026-11-23 00:27:00 +0000 UTC"
        );
    }

    #[test]
    fn go_time_strings() {
        assert_eq!(go_time(0), "1970-01-01 00:00:00 +0000 UTC");
        assert_eq!(go_time(T0), "2026-11-23 00:27:00 +0000 UTC");
        assert_eq!(
            go_time(T0 + 9_944_820_021),
            "2026-11-23 00:27:09.944820021 +0000 UTC"
        );
        assert_eq!(go_time(T0 + 120_000), "2026-11-23 00:27:00.00012 +0000 UTC");
        // 2024-02-29 12:00:00 UTC (leap day).
        assert_eq!(
            go_time(1_709_208_000 * 1_000_000_000),
            "2024-02-29 12:00:00 +0000 UTC"
        );
    }

    #[test]
    fn go_float_formats() {
        assert_eq!(go_fixed(131.0, 6), "131.000000");
        assert_eq!(go_fixed(f64::from(0.1f32), 6), "0.100000");
        assert_eq!(go_fixed(121.785_714_285, 3), "121.786");
        assert_eq!(go_fixed(0.125, 2), "0.12");
        assert_eq!(go_fixed(-0.0, 3), "-0.000");
        assert_eq!(go_fixed(f64::NAN, 3), "NaN");
        assert_eq!(go_fixed(f64::INFINITY, 3), "+Inf");
        assert_eq!(go_fixed(f64::NEG_INFINITY, 3), "-Inf");
        assert_eq!(
            go_fixed(f64::from(16_777_217u32 as f32), 6),
            "16777216.000000"
        );
    }

    #[test]
    fn sink_names_and_lines() {
        assert_eq!(sink_name("serf-agent.a:b c\nd"), "serf-agent.a_b_c_d");
        assert_eq!(
            sink_line("serf-agent.memberlist.udp.sent", 131.0, Kind::Counter),
            "serf-agent.memberlist.udp.sent:131.000000|c\n"
        );
        assert_eq!(
            sink_line("serf-agent.vm.x", 0.5, Kind::Gauge),
            "serf-agent.vm.x:0.500000|g\n"
        );
        assert_eq!(
            sink_line("serf-agent.serf.queue:1", 1.25, Kind::Sample),
            "serf-agent.serf.queue_1:1.250000|ms\n"
        );
    }

    #[test]
    fn dump_format_with_fixed_clock() {
        let (t, clock) = fixed(Some("vm"), vec![]);
        with(&t, || {
            clock.store(T0 + 1_000_000_000, Ordering::SeqCst);
            metrics::gauge!("runtime.num_goroutines").set(24.0);
            metrics::counter!("memberlist.udp.received").increment(42);
            clock.store(T0 + 9_944_820_021, Ordering::SeqCst);
            metrics::counter!("memberlist.udp.received").increment(159);
            metrics::histogram!("serf.msgs.sent").record(38.0);
            metrics::gauge!("a.gauge").set(0.5);
        });
        // The current interval is not dumped.
        assert_eq!(t.dump(), "");
        clock.store(T0 + 10_143_316_439, Ordering::SeqCst);
        with(&t, || metrics::counter!("later").increment(1));
        let expected = "\
[2026-11-23 00:27:00 +0000 UTC][G] 'serf-agent.vm.a.gauge': 0.500
[2026-11-23 00:27:00 +0000 UTC][G] 'serf-agent.vm.runtime.num_goroutines': 24.000
[2026-11-23 00:27:00 +0000 UTC][C] 'serf-agent.memberlist.udp.received': Count: 2 Min: 42.000 Mean: 100.500 Max: 159.000 Stddev: 82.731 Sum: 201.000 LastUpdated: 2026-11-23 00:27:09.944820021 +0000 UTC
[2026-11-23 00:27:00 +0000 UTC][S] 'serf-agent.serf.msgs.sent': Count: 1 Sum: 38.000 LastUpdated: 2026-11-23 00:27:09.944820021 +0000 UTC
";
        assert_eq!(t.dump(), expected);
        // Time passing alone makes the newest interval dumpable (Go's Data()).
        clock.store(T0 + 20_000_000_000, Ordering::SeqCst);
        let d = t.dump();
        assert!(d.starts_with(expected));
        assert!(d.ends_with(
            "[2026-11-23 00:27:10 +0000 UTC][C] 'serf-agent.later': Count: 1 Sum: 1.000 \
             LastUpdated: 2026-11-23 00:27:10.143316439 +0000 UTC\n"
        ));
    }

    #[test]
    fn intervals_rotate_and_six_are_kept() {
        let (t, clock) = fixed(None, vec![]);
        for i in 0..10i64 {
            clock.store(T0 + i * INTERVAL_NS + 5, Ordering::SeqCst);
            with(&t, || metrics::counter!(format!("c{i}")).increment(1));
        }
        {
            let inmem = t.core.lock();
            assert_eq!(inmem.intervals.len(), RETAIN);
            let starts: Vec<i64> = inmem.intervals.iter().map(|i| i.start_ns).collect();
            let want: Vec<i64> = (4..10).map(|i| T0 + i * INTERVAL_NS).collect();
            assert_eq!(starts, want);
        }
        let d = t.dump();
        assert_eq!(d.lines().count(), RETAIN - 1);
        assert!(d.starts_with("[2026-11-23 00:27:40 +0000 UTC][C] 'serf-agent.c4'"));
        assert!(!d.contains("'serf-agent.c9'"));
        // Same interval: aggregated, not a new interval.
        clock.store(T0 + 9 * INTERVAL_NS + 9_999_999_999, Ordering::SeqCst);
        with(&t, || metrics::counter!("c9").increment(2));
        let inmem = t.core.lock();
        let last = inmem.intervals.back().expect("interval");
        assert_eq!(last.counters["serf-agent.c9"].count, 2);
    }

    #[test]
    fn names_are_bounded_per_interval() {
        let (t, clock) = fixed(None, vec![]);
        with(&t, || {
            for i in 0..MAX_NAMES + 100 {
                metrics::counter!(format!("serf.events.e{i}")).increment(1);
            }
            metrics::gauge!("late.gauge").set(1.0);
            metrics::histogram!("late.sample").record(1.0);
            // Existing names keep aggregating.
            metrics::counter!("serf.events.e0").increment(1);
        });
        {
            let inmem = t.core.lock();
            let iv = inmem.intervals.back().expect("interval");
            assert_eq!(iv.names(), MAX_NAMES);
            assert!(iv.gauges.is_empty() && iv.samples.is_empty());
            assert_eq!(iv.counters["serf-agent.serf.events.e0"].count, 2);
        }
        // A new interval has room again.
        clock.store(T0 + INTERVAL_NS, Ordering::SeqCst);
        with(&t, || metrics::gauge!("late.gauge").set(1.0));
        let inmem = t.core.lock();
        assert_eq!(inmem.intervals.back().expect("interval").gauges.len(), 1);
    }

    #[test]
    fn gauge_increments_follow_the_last_value() {
        let (t, clock) = fixed(None, vec![]);
        with(&t, || {
            metrics::gauge!("g").set(10.0);
            metrics::gauge!("g").increment(2.5);
            metrics::gauge!("g").decrement(1.0);
        });
        clock.store(T0 + INTERVAL_NS, Ordering::SeqCst);
        with(&t, || metrics::gauge!("g").increment(1.0));
        let inmem = t.core.lock();
        assert_eq!(inmem.intervals[0].gauges["serf-agent.g"], 11.5);
        assert_eq!(inmem.intervals[1].gauges["serf-agent.g"], 12.5);
    }

    #[test]
    fn sink_queue_gets_lines_and_drops_when_full() {
        let (tx, mut rx) = mpsc::channel(2);
        let (t, _) = fixed(Some("vm"), vec![tx]);
        with(&t, || {
            metrics::counter!("memberlist.udp.sent").increment(131);
            metrics::gauge!("memberlist.health.score").set(2.0);
            metrics::histogram!("memberlist.probeNode").record(0.25);
        });
        assert_eq!(
            rx.try_recv().ok().as_deref(),
            Some("serf-agent.memberlist.udp.sent:131.000000|c\n")
        );
        assert_eq!(
            rx.try_recv().ok().as_deref(),
            Some("serf-agent.vm.memberlist.health.score:2.000000|g\n")
        );
        // Dropped, not blocked on.
        assert!(rx.try_recv().is_err());
        // The in-memory sink got everything.
        assert_eq!(names(&t).len(), 3);
    }

    #[test]
    fn statsd_packing_stays_within_the_datagram_size() {
        let mut p = Packer::new(STATSD_MAX_LEN);
        let line = sink_line("serf-agent.memberlist.udp.sent", 131.0, Kind::Counter);
        let mut sent = Vec::new();
        for _ in 0..200 {
            if let Some(d) = p.push(&line) {
                sent.push(d);
            }
        }
        sent.extend(p.take());
        assert!(p.take().is_none());
        assert!(sent.len() > 1);
        let per = STATSD_MAX_LEN / line.len();
        for d in &sent[..sent.len() - 1] {
            assert!(d.len() <= STATSD_MAX_LEN);
            assert_eq!(d.len(), per * line.len());
        }
        let total: usize = sent.iter().map(Vec::len).sum();
        assert_eq!(total, 200 * line.len());
        // A line longer than a datagram goes out alone.
        let long = "x".repeat(STATSD_MAX_LEN + 1);
        let mut p = Packer::new(STATSD_MAX_LEN);
        assert!(p.push("a\n").is_none());
        assert_eq!(p.push(&long).as_deref(), Some(&b"a\n"[..]));
        assert_eq!(p.push("b\n").map(|d| d.len()), Some(long.len()));
    }

    #[test]
    fn net_errors_read_like_go() {
        let refused = std::io::Error::from_raw_os_error(111);
        assert_eq!(
            go_net_text("connect", &refused),
            "connect: connection refused"
        );
        let custom = std::io::Error::other("Failed to lookup address");
        assert_eq!(go_net_text("lookup", &custom), "failed to lookup address");
    }

    #[test]
    fn rss_parsing() {
        let status = "Name:\tserf\nVmPeak:\t  10 kB\nVmRSS:\t    7400 kB\nThreads:\t2\n";
        assert_eq!(parse_vm_rss(status), Some(7400 * 1024));
        assert_eq!(parse_vm_rss("Name:\tserf\n"), None);
        assert!(rss_bytes().is_some_and(|b| b > 0));
    }

    #[tokio::test]
    async fn statsd_sink_sends_batched_datagrams() {
        let server = tokio::net::UdpSocket::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = server.local_addr().expect("addr").to_string();
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(sink_task(true, addr, rx));
        let (t, _) = fixed(None, vec![tx]);
        with(&t, || {
            metrics::counter!("memberlist.udp.sent").increment(131);
            metrics::histogram!("memberlist.probeNode").record(1.5);
        });
        let mut buf = [0u8; 2048];
        let n = tokio::time::timeout(Duration::from_secs(5), server.recv(&mut buf))
            .await
            .expect("datagram in time")
            .expect("recv");
        assert_eq!(
            std::str::from_utf8(&buf[..n]).expect("utf8"),
            "serf-agent.memberlist.udp.sent:131.000000|c\nserf-agent.memberlist.probeNode:1.500000|ms\n"
        );
    }

    #[tokio::test]
    async fn statsite_sink_streams_lines() {
        use tokio::io::AsyncReadExt as _;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(sink_task(false, addr, rx));
        let (t, _) = fixed(Some("vm"), vec![tx]);
        with(&t, || metrics::gauge!("memberlist.health.score").set(3.0));
        let (mut conn, _) = tokio::time::timeout(Duration::from_secs(5), listener.accept())
            .await
            .expect("connection in time")
            .expect("accept");
        let want = "serf-agent.vm.memberlist.health.score:3.000000|g\n";
        let mut got = vec![0u8; want.len()];
        tokio::time::timeout(Duration::from_secs(5), conn.read_exact(&mut got))
            .await
            .expect("data in time")
            .expect("read");
        assert_eq!(std::str::from_utf8(&got).expect("utf8"), want);
    }
}
