//! Tests of the event handler scripts.

use super::*;
use serf_core::coalesce::MemberEventType;
use serf_core::state::MemberStatus;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

fn tags(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn member(name: &str, t: &[(&str, &str)]) -> Member {
    Member {
        name: name.to_string(),
        addr: IpAddr::V4(Ipv4Addr::LOCALHOST),
        port: 7946,
        tags: tags(t),
        status: MemberStatus::Alive,
        vsn: [2, 5, 5, 2, 5, 4],
        status_ltime: 1,
        leave_time: None,
    }
}

fn members(kind: MemberEventType, ms: Vec<Member>) -> CoalescedEvent {
    CoalescedEvent::Members { kind, members: ms }
}

fn user(name: &str, ltime: u64, payload: &[u8]) -> CoalescedEvent {
    CoalescedEvent::Other(Event::User {
        ltime,
        name: name.to_string(),
        payload: payload.to_vec(),
        coalesce: true,
    })
}

fn query(name: &str, ltime: u64, id: u32, payload: &[u8]) -> CoalescedEvent {
    CoalescedEvent::Other(Event::Query {
        ltime,
        id,
        name: name.to_string(),
        payload: payload.to_vec(),
        source_node: "alpha".to_string(),
        deadline: Duration::from_secs(15),
    })
}

// ---------------------------------------------------------------- parsing

fn f(event: &str, name: &str) -> EventFilter {
    EventFilter {
        event: event.to_string(),
        name: name.to_string(),
    }
}

#[test]
fn parse_specs() {
    let s = parse_event_script("handler.sh");
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].filter, f("*", ""));
    assert_eq!(s[0].script, "handler.sh");

    let s = parse_event_script("member-join,member-leave=join.sh");
    assert_eq!(
        s.iter().map(|x| x.filter.clone()).collect::<Vec<_>>(),
        vec![f("member-join", ""), f("member-leave", "")]
    );
    assert!(s.iter().all(|x| x.script == "join.sh"));

    // Split at the first '=' only.
    let s = parse_event_script("user:deploy=deploy.sh a=b");
    assert_eq!(s[0].filter, f("user", "deploy"));
    assert_eq!(s[0].script, "deploy.sh a=b");

    let s = parse_event_script("query:load=uptime");
    assert_eq!(s[0].filter, f("query", "load"));
    let s = parse_event_script("user:=x");
    assert_eq!(s[0].filter, f("user", ""));
    let s = parse_event_script("=x");
    assert_eq!(s[0].filter, f("*", ""));
    let s = parse_event_script("member-join,user:deploy,query=s");
    assert_eq!(
        s.iter().map(|x| x.filter.clone()).collect::<Vec<_>>(),
        vec![f("member-join", ""), f("user", "deploy"), f("query", "")]
    );
    // Names may contain ':'.
    let s = parse_event_script("user:a:b=s");
    assert_eq!(s[0].filter, f("user", "a:b"));
}

#[test]
fn invalid_specs_give_go_error_text() {
    assert_eq!(
        parse_event_scripts(&["bogus=foo.sh"]),
        Err("Invalid event script: Event 'bogus' invoking 'foo.sh'".to_string())
    );
    assert_eq!(
        parse_event_scripts(&["ok.sh", "member-join,bogus=foo.sh"]),
        Err("Invalid event script: Event 'bogus' invoking 'foo.sh'".to_string())
    );
    assert_eq!(
        parse_event_scripts(&["member-join,,x=foo.sh"]),
        Err("Invalid event script: Event '' invoking 'foo.sh'".to_string())
    );
    assert_eq!(
        parse_event_scripts(&["users:x=foo.sh"]),
        Err("Invalid event script: Event 'users:x' invoking 'foo.sh'".to_string())
    );
    assert_eq!(
        parse_event_scripts(&["member-join:x=foo.sh"]),
        Err("Invalid event script: Event 'member-join:x' invoking 'foo.sh'".to_string())
    );
    let ok = parse_event_scripts(&[
        "a.sh",
        "member-join,member-leave,member-failed,member-update,member-reap=b.sh",
        "user,user:deploy,query,query:load,*=c.sh",
    ])
    .expect("valid");
    assert_eq!(ok.len(), 11);
    assert_eq!(
        ok.iter().map(|s| s.stats_key()).collect::<Vec<_>>(),
        vec![
            "*:",
            "member-join:",
            "member-leave:",
            "member-failed:",
            "member-update:",
            "member-reap:",
            "user:",
            "user:deploy",
            "query:",
            "query:load",
            "*:"
        ]
    );
    assert_eq!(ok[7].to_string(), "Event 'user:deploy' invoking 'c.sh'");
    assert_eq!(ok[0].to_string(), "Event '*' invoking 'a.sh'");
}

#[test]
fn filter_matching() {
    let join = members(MemberEventType::Join, vec![member("a", &[])]);
    let reap = members(MemberEventType::Reap, vec![member("a", &[])]);
    let deploy = user("deploy", 1, b"");
    let other = user("other", 1, b"");
    let q = query("load", 1, 1, b"");
    let ack = CoalescedEvent::Other(Event::QueryDone { ltime: 1, id: 1 });

    assert!(f("*", "").matches(&join));
    assert!(f("*", "").matches(&q));
    assert!(f("member-join", "").matches(&join));
    assert!(!f("member-join", "").matches(&reap));
    assert!(f("member-reap", "").matches(&reap));
    assert!(f("user", "").matches(&deploy));
    assert!(f("user", "deploy").matches(&deploy));
    assert!(!f("user", "deploy").matches(&other));
    assert!(!f("user", "").matches(&q));
    assert!(f("query", "").matches(&q));
    assert!(f("query", "load").matches(&q));
    assert!(!f("query", "x").matches(&q));
    assert!(!f("query", "deploy").matches(&deploy));
    assert!(!f("member-join", "").matches(&ack));
}

// ---------------------------------------------------------- env and stdin

#[test]
fn tag_env_names() {
    assert_eq!(tag_env_name("weird-tag.name"), "SERF_TAG_WEIRD_TAG_NAME");
    assert_eq!(tag_env_name("dc"), "SERF_TAG_DC");
    assert_eq!(tag_env_name("k2"), "SERF_TAG_K2");
    assert_eq!(tag_env_name("a_b c"), "SERF_TAG_A_B_C");
    assert_eq!(tag_env_name("é"), "SERF_TAG__");
}

#[test]
fn stdin_formats() {
    let ev = members(
        MemberEventType::Join,
        vec![
            member("beta", &[("role", "db")]),
            member("al\tp\nha", &[("role", "w\teb"), ("x", "1\n2")]),
            member("gamma", &[]),
        ],
    );
    assert_eq!(
        script_stdin(&ev),
        b"beta\t127.0.0.1\tdb\trole=db\n\
          al\\tp\\nha\t127.0.0.1\tw\\teb\trole=w\\teb,x=1\\n2\n\
          gamma\t127.0.0.1\t\t\n"
            .to_vec()
    );
    let mut m6 = member("v6", &[]);
    m6.addr = IpAddr::V6(Ipv4Addr::new(10, 0, 0, 1).to_ipv6_mapped());
    let mut m6b = member("v6b", &[]);
    m6b.addr = IpAddr::V6(Ipv6Addr::LOCALHOST);
    assert_eq!(
        script_stdin(&members(MemberEventType::Leave, vec![m6, m6b])),
        b"v6\t10.0.0.1\t\t\nv6b\t::1\t\t\n".to_vec()
    );
    assert_eq!(script_stdin(&user("x", 1, b"v9")), b"v9\n".to_vec());
    assert_eq!(script_stdin(&user("x", 1, b"v9\n")), b"v9\n".to_vec());
    assert_eq!(script_stdin(&user("x", 1, b"")), b"".to_vec());
    assert_eq!(script_stdin(&query("q", 1, 1, b"a\nb")), b"a\nb\n".to_vec());
}

// ---------------------------------------------- invocations vs. Go's vectors

static COUNTER: AtomicU32 = AtomicU32::new(0);

fn temp_dir() -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "serf-handlers-test-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::create_dir_all(&d).expect("mkdir");
    d
}

/// A handler that records its sorted SERF_* environment and exact stdin.
fn recorder(dir: &std::path::Path, tag: &str) -> String {
    format!(
        "*=env | grep '^SERF_' | LC_ALL=C sort > '{d}/{tag}.env'; cat > '{d}/{tag}.stdin'",
        d = dir.display()
    )
}

fn read_env(dir: &std::path::Path, tag: &str) -> Vec<String> {
    std::fs::read_to_string(dir.join(format!("{tag}.env")))
        .expect("env file")
        .lines()
        .map(str::to_string)
        .collect()
}

fn read_stdin(dir: &std::path::Path, tag: &str) -> Vec<u8> {
    std::fs::read(dir.join(format!("{tag}.stdin"))).expect("stdin file")
}

fn alpha() -> SelfInfo {
    (
        "alpha".to_string(),
        tags(&[("weird-tag.name", "x y"), ("role", "web"), ("dc", "east")]),
    )
}

fn beta() -> SelfInfo {
    ("beta".to_string(), tags(&[("role", "db")]))
}

fn alpha_member() -> Member {
    member(
        "alpha",
        &[("weird-tag.name", "x y"), ("role", "web"), ("dc", "east")],
    )
}

fn no_respond() -> Respond {
    Arc::new(|_, _, _| Err("unexpected respond".to_string()))
}

async fn run_events(
    scripts: Vec<EventScript>,
    cfg: HandlerConfig,
    events: Vec<CoalescedEvent>,
    me: fn() -> SelfInfo,
    respond: Respond,
) {
    let (tx, rx) = mpsc::channel(64);
    let handlers = Arc::new(Handlers::new(scripts, cfg));
    let task = tokio::spawn(run(rx, handlers, me, respond));
    for e in events {
        tx.send(e).await.expect("send");
    }
    drop(tx);
    task.await.expect("run");
}

async fn record_one(event: CoalescedEvent, me: fn() -> SelfInfo) -> (Vec<String>, Vec<u8>) {
    let dir = temp_dir();
    let scripts = parse_event_scripts(&[recorder(&dir, "r")]).expect("parse");
    run_events(
        scripts,
        HandlerConfig::default(),
        vec![event],
        me,
        no_respond(),
    )
    .await;
    let r = (read_env(&dir, "r"), read_stdin(&dir, "r"));
    let _ = std::fs::remove_dir_all(&dir);
    r
}

fn expect_env(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

const ALPHA_ENV: [&str; 3] = [
    "SERF_TAG_DC=east",
    "SERF_TAG_ROLE=web",
    "SERF_TAG_WEIRD_TAG_NAME=x y",
];

fn alpha_env(event: &str, extra: &[&str]) -> Vec<String> {
    let mut v = vec![
        format!("SERF_EVENT={event}"),
        "SERF_SELF_NAME=alpha".to_string(),
        "SERF_SELF_ROLE=web".to_string(),
    ];
    v.extend(ALPHA_ENV.iter().map(|s| s.to_string()));
    v.extend(extra.iter().map(|s| s.to_string()));
    v.sort();
    v
}

// Recorded: handler_invocations[0] (alpha sees its own join).
#[tokio::test]
async fn vector_member_join_self() {
    let (env, stdin) =
        record_one(members(MemberEventType::Join, vec![alpha_member()]), alpha).await;
    assert_eq!(env, alpha_env("member-join", &[]));
    assert_eq!(
        stdin,
        b"alpha\t127.0.0.1\tweb\tweird-tag.name=x y,role=web,dc=east\n".to_vec()
    );
}

// Recorded: handler_invocations[1] (beta's coalesced join of itself and alpha).
#[tokio::test]
async fn vector_member_join_coalesced_two_members() {
    let alpha_dc_first = member(
        "alpha",
        &[("dc", "east"), ("weird-tag.name", "x y"), ("role", "web")],
    );
    let (env, stdin) = record_one(
        members(
            MemberEventType::Join,
            vec![member("beta", &[("role", "db")]), alpha_dc_first],
        ),
        beta,
    )
    .await;
    assert_eq!(
        env,
        expect_env(&[
            "SERF_EVENT=member-join",
            "SERF_SELF_NAME=beta",
            "SERF_SELF_ROLE=db",
            "SERF_TAG_ROLE=db"
        ])
    );
    assert_eq!(
        String::from_utf8(stdin).expect("utf8"),
        "beta\t127.0.0.1\tdb\trole=db\nalpha\t127.0.0.1\tweb\tdc=east,weird-tag.name=x y,role=web\n"
    );
}

// Recorded: tmpnode join / leave (a member without tags).
#[tokio::test]
async fn vector_member_without_tags() {
    for (kind, name) in [
        (MemberEventType::Join, "member-join"),
        (MemberEventType::Leave, "member-leave"),
        (MemberEventType::Failed, "member-failed"),
        (MemberEventType::Reap, "member-reap"),
    ] {
        let (env, stdin) = record_one(members(kind, vec![member("tmpnode", &[])]), alpha).await;
        assert_eq!(env, alpha_env(name, &[]));
        assert_eq!(stdin, b"tmpnode\t127.0.0.1\t\t\n".to_vec());
    }
}

// Recorded: member-update of alpha after `serf tags -set k=v -set k2=v2`.
#[tokio::test]
async fn vector_member_update_with_new_tags() {
    fn alpha_more() -> SelfInfo {
        let (n, mut t) = alpha();
        t.extend(tags(&[("k", "v"), ("k2", "v2")]));
        (n, t)
    }
    let m = member(
        "alpha",
        &[
            ("weird-tag.name", "x y"),
            ("role", "web"),
            ("dc", "east"),
            ("k", "v"),
            ("k2", "v2"),
        ],
    );
    let (env, stdin) = record_one(members(MemberEventType::Update, vec![m]), alpha_more).await;
    // The recording lists SERF_TAG_K2 before SERF_TAG_K (C collation).
    assert_eq!(
        env,
        expect_env(&[
            "SERF_EVENT=member-update",
            "SERF_SELF_NAME=alpha",
            "SERF_SELF_ROLE=web",
            "SERF_TAG_DC=east",
            "SERF_TAG_K2=v2",
            "SERF_TAG_K=v",
            "SERF_TAG_ROLE=web",
            "SERF_TAG_WEIRD_TAG_NAME=x y"
        ])
    );
    assert_eq!(
        stdin,
        b"alpha\t127.0.0.1\tweb\tweird-tag.name=x y,role=web,dc=east,k=v,k2=v2\n".to_vec()
    );
}

// Recorded: user events `deploy` (payload "v9", newline appended), `ping-evt`
// (no payload).
#[tokio::test]
async fn vector_user_events() {
    let (env, stdin) = record_one(user("deploy", 1, b"v9"), alpha).await;
    assert_eq!(
        env,
        alpha_env("user", &["SERF_USER_EVENT=deploy", "SERF_USER_LTIME=1"])
    );
    assert_eq!(stdin, b"v9\n".to_vec());

    let (env, stdin) = record_one(user("ping-evt", 2, b""), beta).await;
    assert_eq!(
        env,
        expect_env(&[
            "SERF_EVENT=user",
            "SERF_SELF_NAME=beta",
            "SERF_SELF_ROLE=db",
            "SERF_TAG_ROLE=db",
            "SERF_USER_EVENT=ping-evt",
            "SERF_USER_LTIME=2"
        ])
    );
    assert!(stdin.is_empty());
}

// Recorded: query `rpc-q` with payload "question", `filtered` without payload.
#[tokio::test]
async fn vector_queries() {
    let (env, stdin) = record_one(query("rpc-q", 1, 7, b"question"), alpha).await;
    assert_eq!(
        env,
        alpha_env("query", &["SERF_QUERY_LTIME=1", "SERF_QUERY_NAME=rpc-q"])
    );
    assert_eq!(stdin, b"question\n".to_vec());

    let (env, stdin) = record_one(query("filtered", 2, 8, b""), beta).await;
    assert_eq!(
        env,
        expect_env(&[
            "SERF_EVENT=query",
            "SERF_QUERY_LTIME=2",
            "SERF_QUERY_NAME=filtered",
            "SERF_SELF_NAME=beta",
            "SERF_SELF_ROLE=db",
            "SERF_TAG_ROLE=db"
        ])
    );
    assert!(stdin.is_empty());
}

#[tokio::test]
async fn inherits_agent_environment_and_self_role_empty() {
    // PATH is inherited (the recorder uses env/grep/sort); a node without
    // a role tag gets an empty SERF_SELF_ROLE.
    fn plain() -> SelfInfo {
        ("n".to_string(), Vec::new())
    }
    let (env, _) = record_one(user("u", 3, b""), plain).await;
    assert_eq!(
        env,
        expect_env(&[
            "SERF_EVENT=user",
            "SERF_SELF_NAME=n",
            "SERF_SELF_ROLE=",
            "SERF_USER_EVENT=u",
            "SERF_USER_LTIME=3"
        ])
    );
}

/// Replays every recorded Go invocation (`handler_invocations`, 82 runs of
/// the real agent): rebuilds the event and the local node from the recorded
/// environment and stdin, runs it through a recording script and compares
/// environment (SERF_* only, sorted) and stdin bytes exactly
/// (`testdata/serf/vectors/agent_vectors.json`).
#[tokio::test]
async fn all_recorded_go_invocations() {
    let text = serf_testdata::read_string(&format!(
        "{}/agent_vectors.json",
        serf_testdata::SERF_VECTORS
    ));
    let v: serde_json::Value = serde_json::from_str(&text).expect("json");
    let runs = v["handler_invocations"].as_array().expect("array");
    assert!(!runs.is_empty());
    for (i, rec) in runs.iter().enumerate() {
        let env: Vec<String> = rec["env"]
            .as_array()
            .expect("env")
            .iter()
            .map(|e| e.as_str().expect("str").to_string())
            .collect();
        let stdin = hex_decode(rec["stdin_hex"].as_str().expect("hex"));
        let get = |k: &str| {
            env.iter()
                .find_map(|e| e.strip_prefix(&format!("{k}=")).map(str::to_string))
        };
        let self_name = get("SERF_SELF_NAME").expect("self name");
        let self_tags: Vec<(String, String)> = env
            .iter()
            .filter_map(|e| e.strip_prefix("SERF_TAG_"))
            .filter_map(|e| e.split_once('='))
            .map(|(k, v)| (k.to_lowercase(), v.to_string()))
            .collect();
        let kind = get("SERF_EVENT").expect("event");
        let event = match kind.as_str() {
            "user" => user(
                &get("SERF_USER_EVENT").expect("name"),
                get("SERF_USER_LTIME").expect("ltime").parse().expect("num"),
                // Go appended the newline: strip it so ours is exercised.
                stdin.strip_suffix(b"\n").unwrap_or(&stdin),
            ),
            "query" => query(
                &get("SERF_QUERY_NAME").expect("name"),
                get("SERF_QUERY_LTIME")
                    .expect("ltime")
                    .parse()
                    .expect("num"),
                1,
                stdin.strip_suffix(b"\n").unwrap_or(&stdin),
            ),
            member_kind => {
                let kind = match member_kind {
                    "member-join" => MemberEventType::Join,
                    "member-leave" => MemberEventType::Leave,
                    "member-failed" => MemberEventType::Failed,
                    "member-update" => MemberEventType::Update,
                    "member-reap" => MemberEventType::Reap,
                    other => panic!("unknown event {other}"),
                };
                let text = String::from_utf8(stdin.clone()).expect("utf8");
                let ms = text
                    .lines()
                    .map(|line| {
                        let f: Vec<&str> = line.split('\t').collect();
                        assert_eq!(f.len(), 4, "run {i}: {line:?}");
                        let t: Vec<(&str, &str)> = if f[3].is_empty() {
                            Vec::new()
                        } else {
                            f[3].split(',')
                                .map(|kv| kv.split_once('=').expect("k=v"))
                                .collect()
                        };
                        let mut m = member(f[0], &t);
                        m.addr = f[1].parse().expect("ip");
                        assert_eq!(tag(&m.tags, "role"), f[2], "run {i}");
                        m
                    })
                    .collect();
                members(kind, ms)
            }
        };
        let dir = temp_dir();
        let scripts = parse_event_scripts(&[recorder(&dir, "r")]).expect("parse");
        let (tx, rx) = mpsc::channel(4);
        let handlers = Arc::new(Handlers::new(scripts, HandlerConfig::default()));
        let me = (self_name, self_tags);
        let task = tokio::spawn(run(rx, handlers, move || me.clone(), no_respond()));
        tx.send(event).await.expect("send");
        drop(tx);
        task.await.expect("run");
        assert_eq!(read_env(&dir, "r"), env, "run {i}: environment");
        assert_eq!(read_stdin(&dir, "r"), stdin, "run {i}: stdin");
        let _ = std::fs::remove_dir_all(&dir);
    }
}

fn hex_decode(h: &str) -> Vec<u8> {
    (0..h.len() / 2)
        .map(|i| u8::from_str_radix(&h[2 * i..2 * i + 2], 16).expect("hex"))
        .collect()
}

// ------------------------------------------------------------ query responses

type Sent = Arc<Mutex<Vec<(u64, u32, Vec<u8>)>>>;

fn capture() -> (Sent, Respond) {
    let sent: Sent = Arc::new(Mutex::new(Vec::new()));
    let s2 = sent.clone();
    let respond: Respond = Arc::new(move |l, i, p| {
        s2.lock().expect("lock").push((l, i, p));
        Ok(())
    });
    (sent, respond)
}

#[tokio::test]
async fn query_output_is_the_response() {
    let (sent, respond) = capture();
    let scripts = parse_event_scripts(&[
        "query:load=read p; echo \"got $p\"; echo err >&2",
        // exit status != 0: no response
        "query:load=echo nope; exit 3",
        // no output: no response
        "query:load=true",
        // other query name: not run
        "query:other=echo other",
        // non-query events never respond
        "user=echo user-output",
    ])
    .expect("parse");
    run_events(
        scripts,
        HandlerConfig::default(),
        vec![query("load", 5, 42, b"hi"), user("u", 1, b"")],
        alpha,
        respond,
    )
    .await;
    let sent = sent.lock().expect("lock").clone();
    assert_eq!(sent, vec![(5, 42, b"got hi\nerr\n".to_vec())]);
}

#[tokio::test]
async fn query_output_is_capped_to_last_8k() {
    let (sent, respond) = capture();
    // 10000 'a' then "END"
    let scripts = parse_event_scripts(&["query=head -c 10000 /dev/zero | tr '\\0' a; printf END"])
        .expect("parse");
    run_events(
        scripts,
        HandlerConfig::default(),
        vec![query("big", 1, 1, b"")],
        alpha,
        respond,
    )
    .await;
    let sent = sent.lock().expect("lock").clone();
    assert_eq!(sent.len(), 1);
    let p = &sent[0].2;
    assert_eq!(p.len(), MAX_OUTPUT);
    assert!(p.ends_with(b"aaaEND"));
}

#[tokio::test]
async fn respond_error_is_only_logged() {
    let calls = Arc::new(AtomicU32::new(0));
    let c2 = calls.clone();
    let respond: Respond = Arc::new(move |_, _, _| {
        c2.fetch_add(1, Ordering::SeqCst);
        Err("response exceeds limit of 1024 bytes".to_string())
    });
    let dir = temp_dir();
    let scripts = parse_event_scripts(&[
        "query=echo a".to_string(),
        format!("query=echo b; touch '{}/after'", dir.display()),
    ])
    .expect("parse");
    run_events(
        scripts,
        HandlerConfig::default(),
        vec![query("q", 1, 1, b"")],
        alpha,
        respond,
    )
    .await;
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert!(dir.join("after").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

// ------------------------------------------------- timeout, order, reload

#[tokio::test]
async fn hanging_script_is_killed_and_next_event_runs() {
    let dir = temp_dir();
    let d = dir.display();
    let scripts = parse_event_scripts(&[
        // The first event hangs (also in a background child holding the
        // output pipe); later events append their name.
        format!(
            "user=if [ \"$SERF_USER_EVENT\" = hang ]; then sleep 60 & echo $! > '{d}/bgpid'; sleep 60; fi; echo $SERF_USER_EVENT >> '{d}/log'"
        ),
    ])
    .expect("parse");
    let cfg = HandlerConfig {
        timeout: Some(Duration::from_millis(500)),
        ..HandlerConfig::default()
    };
    let started = std::time::Instant::now();
    run_events(
        scripts,
        cfg,
        vec![user("hang", 1, b""), user("next", 2, b"")],
        alpha,
        no_respond(),
    )
    .await;
    let took = started.elapsed();
    assert!(took < Duration::from_secs(5), "took {took:?}");
    let log = std::fs::read_to_string(dir.join("log")).expect("log");
    assert_eq!(log, "next\n");
    // The background sleeper was in the process group and is gone.
    let bg = std::fs::read_to_string(dir.join("bgpid")).expect("bgpid");
    let bg = bg.trim();
    // Gone, or a zombie waiting for its new parent to reap it.
    let alive = std::fs::read_to_string(format!("/proc/{bg}/stat"))
        .ok()
        .and_then(|st| st.rsplit(')').next().map(|r| r.trim_start().to_string()))
        .is_some_and(|r| !r.starts_with('Z') && !r.starts_with('X'));
    assert!(!alive, "background child {bg} survived");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn events_and_scripts_run_in_order() {
    let dir = temp_dir();
    let d = dir.display();
    let scripts = parse_event_scripts(&[
        // The first script of the first event is slow: nothing may overtake it.
        format!(
            "user=[ $SERF_USER_LTIME = 1 ] && sleep 0.3; echo \"$SERF_USER_EVENT-a\" >> '{d}/log'"
        ),
        format!("user,member-join=echo \"${{SERF_USER_EVENT:-join}}-b\" >> '{d}/log'"),
    ])
    .expect("parse");
    let mut events: Vec<CoalescedEvent> = (1..=5).map(|i| user(&format!("e{i}"), i, b"")).collect();
    events.insert(2, members(MemberEventType::Join, vec![member("x", &[])]));
    run_events(
        scripts,
        HandlerConfig::default(),
        events,
        alpha,
        no_respond(),
    )
    .await;
    let log = std::fs::read_to_string(dir.join("log")).expect("log");
    assert_eq!(
        log,
        "e1-a\ne1-b\ne2-a\ne2-b\njoin-b\ne3-a\ne3-b\ne4-a\ne4-b\ne5-a\ne5-b\n"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn queue_overflow_drops_oldest() {
    let dir = temp_dir();
    let d = dir.display();
    let scripts = parse_event_scripts(&[format!(
        "user=[ $SERF_USER_LTIME = 1 ] && sleep 0.5; echo $SERF_USER_LTIME >> '{d}/log'"
    )])
    .expect("parse");
    let cfg = HandlerConfig {
        max_pending: 2,
        ..HandlerConfig::default()
    };
    let (tx, rx) = mpsc::channel(64);
    let handlers = Arc::new(Handlers::new(scripts, cfg));
    let task = tokio::spawn(run(rx, handlers, alpha, no_respond()));
    tx.send(user("u", 1, b"")).await.expect("send");
    tokio::time::sleep(Duration::from_millis(100)).await;
    for i in 2..=5 {
        tx.send(user("u", i, b"")).await.expect("send");
    }
    drop(tx);
    task.await.expect("run");
    let log = std::fs::read_to_string(dir.join("log")).expect("log");
    assert_eq!(log, "1\n4\n5\n");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn reload_takes_effect_at_next_event() {
    let dir = temp_dir();
    let d = dir.display();
    let first =
        parse_event_scripts(&[format!("echo old-$SERF_USER_LTIME >> '{d}/log'; sleep 0.3")])
            .expect("parse");
    let second = parse_event_scripts(&[format!("user=echo new-$SERF_USER_LTIME >> '{d}/log'")])
        .expect("parse");
    let (tx, rx) = mpsc::channel(64);
    let handlers = Arc::new(Handlers::new(first, HandlerConfig::default()));
    let task = tokio::spawn(run(rx, handlers.clone(), alpha, no_respond()));
    tx.send(user("u", 1, b"")).await.expect("send");
    tx.send(user("u", 2, b"")).await.expect("send");
    tokio::time::sleep(Duration::from_millis(100)).await;
    // Event 1 is running with the old scripts, event 2 is queued.
    handlers.replace(second.clone());
    assert_eq!(*handlers.scripts(), second);
    drop(tx);
    task.await.expect("run");
    let log = std::fs::read_to_string(dir.join("log")).expect("log");
    assert_eq!(log, "old-1\nnew-2\n");
    let _ = std::fs::remove_dir_all(&dir);
}

fn sh(script: &str) -> EventScript {
    EventScript {
        filter: EventFilter {
            event: "*".to_string(),
            name: String::new(),
        },
        script: script.to_string(),
        direct: false,
    }
}

#[tokio::test]
async fn handler_dir_runs_the_program_named_after_the_event_without_a_shell() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = std::env::temp_dir().join(format!("serf-hdir-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let log = dir.join("log");
    let script = format!(
        "#!/bin/sh\necho \"$SERF_EVENT $SERF_USER_EVENT $(cat)\" >> {}\n",
        log.display()
    );
    for name in ["deploy", "member_join"] {
        let p = dir.join(name);
        std::fs::write(&p, &script).expect("write");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let handlers = Handlers::new(Vec::new(), HandlerConfig::default()).with_dir(dir.clone());
    let user = |name: &str| {
        CoalescedEvent::Other(Event::User {
            ltime: 1,
            name: name.to_string(),
            payload: b"p".to_vec(),
            coalesce: false,
        })
    };
    let found = handlers.matching(&user("deploy"));
    assert_eq!(found.len(), 1);
    assert!(found[0].direct);
    for bad in ["other", "..", ".", "", "../deploy", "a/deploy"] {
        assert!(handlers.matching(&user(bad)).is_empty(), "{bad:?}");
    }
    let out = invoke(
        &found[0],
        &script_env(&user("deploy"), "n", &[]),
        b"p",
        HandlerConfig::default(),
    )
    .await
    .expect("spawn");
    assert_eq!(out.result, Ok(()));
    assert_eq!(
        std::fs::read_to_string(&log).expect("log"),
        "user deploy p\n"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn exit_errors_like_go() {
    let ok = invoke(&sh("exit 0"), &[], b"", HandlerConfig::default())
        .await
        .expect("spawn");
    assert_eq!(ok.result, Ok(()));
    let r = invoke(&sh("echo x; exit 2"), &[], b"", HandlerConfig::default())
        .await
        .expect("spawn");
    assert_eq!(r.result, Err("exit status 2".to_string()));
    assert_eq!(r.output, b"x\n".to_vec());
    let r = invoke(&sh("kill -9 $$"), &[], b"", HandlerConfig::default())
        .await
        .expect("spawn");
    assert_eq!(r.result, Err("signal: killed".to_string()));
    // A script that does not read a large stdin still completes.
    let big = vec![b'x'; 1 << 20];
    let r = invoke(&sh("true"), &[], &big, HandlerConfig::default())
        .await
        .expect("spawn");
    assert_eq!(r.result, Ok(()));
}

#[test]
fn ring_keeps_last_bytes() {
    let mut r = Ring::new(4);
    r.write(b"ab");
    r.write(b"cde");
    assert_eq!(r.buf.iter().copied().collect::<Vec<_>>(), b"bcde".to_vec());
    r.write(b"123456");
    assert_eq!(r.buf.iter().copied().collect::<Vec<_>>(), b"3456".to_vec());
    assert_eq!(r.total, 11);
}

#[test]
fn durations() {
    assert_eq!(fmt_duration(Duration::from_secs(30)), "30s");
    assert_eq!(fmt_duration(Duration::from_millis(1500)), "1500ms");
}
