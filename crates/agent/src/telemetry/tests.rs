//! Tests of the telemetry recorder and its sinks.

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
