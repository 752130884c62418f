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
//!   aggregates. Unlike Go, each interval holds at most `MAX_NAMES` distinct names
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
    /// Also record for Prometheus (`/metrics` of the HTTP API).
    pub prometheus: bool,
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
    if cfg.prometheus {
        let fanout = metrics_util::layers::FanoutBuilder::default()
            .add_recorder(telemetry.recorder())
            .add_recorder(prometheus::recorder())
            .build();
        let _ = metrics::set_global_recorder(fanout);
    } else {
        let _ = metrics::set_global_recorder(telemetry.recorder());
    }
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
    crate::shared::os_hostname().unwrap_or_default()
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
                serf_gocompat::time::time_string(self.last_ns)
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
                serf_gocompat::time::time_string(self.last_ns)
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
            let t = serf_gocompat::time::time_string(iv.start_ns);
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

mod prometheus;
mod sinks;

pub(crate) use prometheus::prometheus_text;
use sinks::*;

#[cfg(test)]
mod tests;
