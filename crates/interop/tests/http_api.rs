//! The read-only HTTP API (`-http-addr`, ours only) against a live mixed cluster: every
//! endpoint, its filters and errors, the event stream, the token rule, bad clients, and
//! the web view as headless Chromium shows it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::Value;
use serf_interop::{
    free_tcp_port, go_cli, keygen, require, wait_converged, wait_member_status, wait_until, Agent,
    AgentSpec, Impl, Prereq, CLI_TIMEOUT, DEADLINE,
};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

const POLL: Duration = Duration::from_millis(100);

/// One request over a fresh connection; (status, body).
fn http(port: u16, method: &str, path: &str, headers: &str) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n{headers}\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).to_string();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map_or("", |x| x.1).to_string();
    (status, body)
}

fn get_json(port: u16, path: &str) -> (u16, Value) {
    let (st, body) = http(port, "GET", path, "");
    (
        st,
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: not JSON ({e}): {body}")),
    )
}

fn names(v: &Value) -> Vec<String> {
    let mut n: Vec<String> = v["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap().to_string())
        .collect();
    n.sort();
    n
}

#[test]
fn http_api_endpoints_filters_errors_and_events() {
    require!(Prereq::GoSerf, Prereq::RustSerf);
    let key = keygen();
    let port = free_tcp_port();
    let web = Agent::start(
        AgentSpec::new(Impl::Rust, "rs-web")
            .tag("role", "web")
            .encrypt(&key)
            .arg(&format!("-http-addr=127.0.0.1:{port}")),
    )
    .expect("rs-web");
    let go = Agent::start(
        AgentSpec::new(Impl::Go, "go-db")
            .tag("role", "db")
            .encrypt(&key)
            .join(&web.addr()),
    )
    .expect("go-db");
    let rs = Agent::start(
        AgentSpec::new(Impl::Rust, "rs-db")
            .tag("role", "db")
            .encrypt(&key)
            .join(&web.addr()),
    )
    .expect("rs-db");
    wait_converged(&[&web, &go, &rs], DEADLINE).expect("converged");

    let (st, all) = get_json(port, "/v1/members");
    assert_eq!(st, 200);
    assert_eq!(names(&all), ["go-db", "rs-db", "rs-web"]);
    let m = all["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "go-db")
        .unwrap();
    assert_eq!(m["tags"]["role"], "db");
    assert_eq!(m["status"], "alive");
    assert_eq!(m["addr"], go.addr().as_str());
    // Filters: the semantics of RPC members-filtered (anchored regular expressions).
    assert_eq!(
        names(&get_json(port, "/v1/members?tag=role=db").1),
        ["go-db", "rs-db"]
    );
    assert_eq!(
        names(&get_json(port, "/v1/members?name=rs-.*&status=alive").1),
        ["rs-db", "rs-web"]
    );
    assert_eq!(
        names(&get_json(port, "/v1/members?name=rs").1),
        Vec::<String>::new()
    );
    let (st, e) = get_json(port, "/v1/members?name=(");
    assert_eq!(st, 400, "{e}");
    assert_eq!(get_json(port, "/v1/members?colour=red").0, 400);
    let (st, one) = get_json(port, "/v1/members/go-db");
    assert_eq!((st, one["name"].as_str()), (200, Some("go-db")));
    assert_eq!(get_json(port, "/v1/members/nobody").0, 404);
    // Info, keys (fingerprints only), health, coordinates.
    let (st, info) = get_json(port, "/v1/info");
    assert_eq!(st, 200);
    assert_eq!(info["agent"]["name"], "rs-web");
    assert_eq!(info["serf"]["encrypted"], "true");
    let (st, keys) = get_json(port, "/v1/keys");
    assert_eq!(st, 200);
    assert_eq!(keys["keys"].as_array().map(Vec::len), Some(1));
    assert!(!keys.to_string().contains(&key), "a key leaked: {keys}");
    let (st, health) = get_json(port, "/v1/health");
    assert_eq!((st, health["alive"].as_u64()), (200, Some(3)));
    assert!(wait_until(DEADLINE, POLL, || {
        get_json(port, "/v1/coordinates")
            .1
            .as_object()
            .is_some_and(|o| o.len() == 3)
    }));
    // Prometheus.
    let (st, metrics) = http(port, "GET", "/metrics", "");
    assert_eq!(st, 200);
    assert!(
        metrics.contains("serf_members{status=\"alive\"} 3"),
        "{metrics}"
    );
    assert!(metrics.contains("serf_health_score"), "{metrics}");
    assert!(metrics.contains("memberlist_"), "{metrics}");
    for name in [
        "serf_queue_depth{queue=\"broadcast\"}",
        "serf_rpc_clients",
        "serf_handler_runs_total{outcome=\"failed\"}",
        "serf_lamport_time{clock=\"event\"}",
        "memberlist_probeNode",
    ] {
        assert!(metrics.contains(name), "{name} missing: {metrics}");
    }
    // Errors: unknown path, other methods, a huge request head.
    assert_eq!(http(port, "GET", "/nope", "").0, 404);
    assert_eq!(
        http(port, "POST", "/v1/members", "Content-Length: 0\r\n").0,
        405
    );
    let huge = format!("/v1/members?name={}", "a".repeat(100_000));
    assert_eq!(http(port, "GET", &huge, "").0, 431);
    // The web view is one page with no external resources.
    let (st, page) = http(port, "GET", "/", "");
    assert_eq!(st, 200);
    assert!(
        page.contains("EventSource") && !page.contains("http://") && !page.contains("https://")
    );

    // The event stream: a user event sent through Go's CLI arrives as JSON.
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(s, "GET /v1/events?type=user HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut seen = String::new();
    let mut buf = [0u8; 4096];
    // Wait for the stream to open before sending.
    while !seen.contains(": serf events") {
        let n = s.read(&mut buf).expect("stream opens");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    let out = go_cli(
        "event",
        &go.rpc_addr(),
        &["-coalesce=false", "hello", "world"],
        CLI_TIMEOUT,
    )
    .expect("serf event");
    assert!(out.success(), "{}", out.stderr);
    let line = loop {
        if let Some(l) = seen.lines().find(|l| l.starts_with("data: ")) {
            break l.to_string();
        }
        let n = s.read(&mut buf).expect("an event");
        assert!(n > 0, "stream closed: {seen}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    };
    let ev: Value = serde_json::from_str(line.trim_start_matches("data: ")).unwrap();
    assert_eq!(
        (
            ev["type"].as_str(),
            ev["name"].as_str(),
            ev["payload"].as_str()
        ),
        (Some("user"), Some("hello"), Some("world"))
    );
    assert_eq!(get_json(port, "/v1/events?type=bogus").0, 400);

    // 1,000 idle connections hold nothing up: a request and the RPC are still answered.
    let idle: Vec<TcpStream> = (0..1000)
        .filter_map(|_| TcpStream::connect(("127.0.0.1", port)).ok())
        .collect();
    assert!(idle.len() >= 900, "opened {}", idle.len());
    let t = std::time::Instant::now();
    assert_eq!(get_json(port, "/v1/health").0, 200);
    let members = go_cli("members", &web.rpc_addr(), &[], CLI_TIMEOUT).expect("members");
    assert!(members.success() && members.stdout.contains("go-db"));
    eprintln!(
        "measured: with {} idle HTTP connections, a request and an RPC answered in {:?}",
        idle.len(),
        t.elapsed()
    );
    drop(idle);
    // A killed member turns failed.
    rs.kill9();
    wait_member_status(&web.rpc_addr(), "rs-db", "failed", Duration::from_secs(60))
        .expect("failed");
    assert_eq!(get_json(port, "/v1/members/rs-db").1["status"], "failed");
}

#[test]
fn http_health_and_token_rules() {
    require!(Prereq::RustSerf);
    // Still joining: 503.
    let port = free_tcp_port();
    let dead = format!("127.0.0.1:{}", free_tcp_port());
    let joining = Agent::start(
        AgentSpec::new(Impl::Rust, "joining")
            .arg(&format!("-http-addr=127.0.0.1:{port}"))
            .arg(&format!("-retry-join={dead}"))
            .arg("-retry-interval=1s"),
    )
    .expect("joining");
    let (st, h) = get_json(port, "/v1/health");
    assert_eq!((st, h["status"].as_str()), (503, Some("joining")));
    drop(joining);
    // A non-loopback address without a token is refused with a clear message.
    let port = free_tcp_port();
    let refused =
        Agent::spawn(AgentSpec::new(Impl::Rust, "open").arg(&format!("-http-addr=0.0.0.0:{port}")))
            .expect("spawn");
    let status = refused.wait_exit(Duration::from_secs(20)).expect("exits");
    assert_eq!(status.code(), Some(1));
    assert!(
        refused
            .log_text()
            .contains("Refusing to serve HTTP on 0.0.0.0"),
        "{}",
        refused.log_text()
    );
    // With rpc_auth the token is required.
    let port = free_tcp_port();
    let dir = std::env::temp_dir().join(format!("serf-http-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("auth.json");
    std::fs::write(&cfg, r#"{"rpc_auth": "tok"}"#).unwrap();
    let guarded = Agent::spawn(
        AgentSpec::new(Impl::Rust, "guarded")
            .arg(&format!("-http-addr=0.0.0.0:{port}"))
            .arg(&format!("-config-file={}", cfg.display())),
    )
    .expect("guarded");
    assert!(wait_until(DEADLINE, POLL, || TcpStream::connect((
        "127.0.0.1",
        port
    ))
    .is_ok()));
    assert_eq!(http(port, "GET", "/v1/members", "").0, 401);
    assert_eq!(
        http(port, "GET", "/v1/members", "Authorization: Bearer nope\r\n").0,
        401
    );
    assert_eq!(
        http(port, "GET", "/v1/members", "Authorization: Bearer tok\r\n").0,
        200
    );
    assert_eq!(http(port, "GET", "/v1/members?token=tok", "").0, 200);
    drop(guarded);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Headless Chromium driven over the DevTools protocol; killed and its profile removed on
/// drop.
struct Browser {
    child: std::process::Child,
    profile: std::path::PathBuf,
    ws: tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<TcpStream>>,
    next_id: u64,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

fn chromium_bin() -> Option<std::path::PathBuf> {
    // Debian's `chromium` is a wrapper script; killing it would leave the browser running.
    // Start the browser itself, whose helper processes exit with it.
    let direct = std::path::Path::new("/usr/lib/chromium/chromium");
    if direct.is_file() {
        return Some(direct.to_path_buf());
    }
    ["chromium", "chromium-browser"].iter().find_map(|b| {
        std::env::var_os("PATH").and_then(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join(b))
                .find(|c| c.is_file())
        })
    })
}

impl Browser {
    fn start(bin: &std::path::Path) -> Browser {
        use std::io::BufRead as _;
        let profile = std::env::temp_dir().join(format!("serf-chromium-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&profile);
        let mut child = std::process::Command::new(bin)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--window-size=1200,760",
                "--remote-debugging-port=0",
                &format!("--user-data-dir={}", profile.display()),
                "about:blank",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("chromium");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                if let Some(url) = line.strip_prefix("DevTools listening on ") {
                    let _ = tx.send(url.to_string());
                }
            }
        });
        let browser_url = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("DevTools URL");
        let port: u16 = browser_url
            .trim_start_matches("ws://127.0.0.1:")
            .split('/')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("port");
        // The page chromium opened.
        let page_ws = {
            let mut found = None;
            assert!(wait_until(DEADLINE, POLL, || {
                let (_, body) = http(port, "GET", "/json/list", "");
                let list: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
                found = list.as_array().and_then(|l| {
                    l.iter()
                        .find(|t| t["type"] == "page")
                        .and_then(|t| t["id"].as_str())
                        .map(|id| format!("ws://127.0.0.1:{port}/devtools/page/{id}"))
                });
                found.is_some()
            }));
            found.expect("page")
        };
        let (ws, _) = tungstenite::connect(page_ws.as_str()).expect("websocket");
        Browser {
            child,
            profile,
            ws,
            next_id: 0,
        }
    }

    /// Sends a DevTools command and returns its result.
    fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let msg = serde_json::json!({"id": id, "method": method, "params": params});
        self.ws
            .send(tungstenite::Message::text(msg.to_string()))
            .expect("send");
        loop {
            let m = self.ws.read().expect("read");
            if let tungstenite::Message::Text(t) = m {
                let v: Value = serde_json::from_str(t.as_str()).unwrap_or(Value::Null);
                if v["id"] == id {
                    return v["result"].clone();
                }
            }
        }
    }

    /// Evaluates a JavaScript expression in the page; its JSON value.
    fn eval(&mut self, expr: &str) -> Value {
        self.call(
            "Runtime.evaluate",
            serde_json::json!({"expression": expr, "returnByValue": true}),
        )["result"]["value"]
            .clone()
    }
}

/// What the page's member table shows: (name, status) per row.
const ROWS: &str = "[...document.querySelectorAll('tr[data-member]')].map(r => [r.dataset.member, r.dataset.status])";

#[test]
fn web_view_in_headless_chromium() {
    require!(Prereq::RustSerf);
    let Some(bin) = chromium_bin() else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but chromium is not installed (apt-get install chromium)"
        );
        eprintln!(
            "skipping web_view_in_headless_chromium: needs chromium (apt-get install chromium)"
        );
        return;
    };
    let port = free_tcp_port();
    let a = Agent::start(
        AgentSpec::new(Impl::Rust, "view-a")
            .tag("role", "web")
            .arg(&format!("-http-addr=127.0.0.1:{port}")),
    )
    .expect("a");
    let b = Agent::start(
        AgentSpec::new(Impl::Rust, "view-b")
            .tag("role", "db")
            .join(&a.addr()),
    )
    .expect("b");
    let c = Agent::start(AgentSpec::new(Impl::Rust, "view-c").join(&a.addr())).expect("c");
    wait_converged(&[&a, &b, &c], DEADLINE).expect("converged");
    let mut browser = Browser::start(&bin);
    browser.call(
        "Page.navigate",
        serde_json::json!({"url": format!("http://127.0.0.1:{port}/")}),
    );
    let alive = serde_json::json!([
        ["view-a", "alive"],
        ["view-b", "alive"],
        ["view-c", "alive"]
    ]);
    assert!(
        wait_until(DEADLINE, POLL, || browser.eval(ROWS) == alive),
        "the page shows {}",
        browser.eval(ROWS)
    );
    // The event stream is open; a killed node turns failed, and the feed says so.
    c.kill9();
    let failed = serde_json::json!([
        ["view-a", "alive"],
        ["view-b", "alive"],
        ["view-c", "failed"]
    ]);
    assert!(
        wait_until(Duration::from_secs(60), POLL, || browser.eval(ROWS)
            == failed),
        "the page shows {}",
        browser.eval(ROWS)
    );
    assert!(
        wait_until(Duration::from_secs(20), POLL, || {
            browser
            .eval("[...document.querySelectorAll('#events div')].some(d => d.dataset.type === 'member-failed')")
            == Value::Bool(true)
        }),
        "no member-failed line in the event feed"
    );
    let summary = browser.eval("document.getElementById('summary').textContent");
    assert_eq!(summary, "3 members: 2 alive, 1 failed, 0 left");
    // `SERF_WEBVIEW_SCREENSHOT=docs/webview.png cargo test -p serf-interop --test http_api
    // web_view` refreshes the README's picture.
    if let Some(path) = std::env::var_os("SERF_WEBVIEW_SCREENSHOT") {
        let shot = browser.call(
            "Page.captureScreenshot",
            serde_json::json!({"format": "png"}),
        );
        let data = shot["data"].as_str().expect("png");
        use base64::Engine as _;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(data)
            .expect("base64");
        std::fs::write(&path, bytes).expect("write screenshot");
        eprintln!(
            "screenshot written to {}",
            std::path::Path::new(&path).display()
        );
    }
}
