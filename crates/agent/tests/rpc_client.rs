//! `serf_rpc::Client` as a library user would drive it, against our own agent: plain
//! calls, an event stream, a query answered through `respond`, the log monitor, `stop`
//! and `leave`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serf_rpc::{
    Client, ClientError, EventRequest, MembersFilteredRequest, QueryRecordType, QueryRequest,
    StreamEvent, TagsRequest,
};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const OURS: &str = env!("CARGO_BIN_EXE_serf");

/// Kills the agent if the test ends early.
struct AgentProcess(Child);

impl Drop for AgentProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

async fn connect(addr: &str) -> Client {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match Client::connect(addr, "").await {
            Ok(c) => return c,
            Err(e) if Instant::now() > deadline => panic!("agent RPC at {addr}: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

#[tokio::test]
async fn client_drives_the_agent() {
    let (bind, rpc) = (free_port(), free_port());
    let rpc_addr = format!("127.0.0.1:{rpc}");
    let mut agent = AgentProcess(
        Command::new(OURS)
            .args([
                "agent",
                "-node=rpc-lib",
                &format!("-bind=127.0.0.1:{bind}"),
                &format!("-rpc-addr={rpc_addr}"),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the agent"),
    );
    let mut c = connect(&rpc_addr).await;

    let members = c.members().await.expect("members");
    assert_eq!(members.len(), 1);
    assert_eq!(members[0].name, "rpc-lib");
    assert_eq!(members[0].status, "alive");
    assert_eq!(members[0].ip(), Some([127, 0, 0, 1].into()));
    assert_eq!(members[0].port, bind);

    let tags = TagsRequest {
        tags: vec![("role".into(), "web".into())],
        delete_tags: None,
    };
    c.update_tags(&tags).await.expect("tags");
    let filter = |tag: &str| MembersFilteredRequest {
        tags: vec![("role".into(), tag.into())],
        ..MembersFilteredRequest::default()
    };
    assert_eq!(c.members_filtered(&filter("w.b")).await.unwrap().len(), 1);
    assert!(c.members_filtered(&filter("db")).await.unwrap().is_empty());

    // A user event comes back on a stream.
    let events = c.stream("user").await.expect("stream");
    let ev = EventRequest {
        name: "deploy".into(),
        payload: Some(b"v2".to_vec()),
        coalesce: false,
    };
    c.user_event(&ev).await.expect("event");
    let rec = tokio::time::timeout(Duration::from_secs(10), c.recv(&events))
        .await
        .expect("a stream record in time")
        .expect("a user event");
    assert!(
        matches!(&rec, StreamEvent::User { name, payload, .. } if name == "deploy" && payload == b"v2"),
        "{rec:?}"
    );
    c.stop(&events).await.expect("stop");

    // A query, seen on a query stream of the same connection and answered with `respond`.
    let queries = c.stream("query").await.expect("query stream");
    let q = QueryRequest {
        name: "ping-me".into(),
        request_ack: true,
        timeout_nanos: 3_000_000_000,
        ..QueryRequest::default()
    };
    let answers = c.query(&q).await.expect("query");
    let (mut acks, mut responses, mut done) = (Vec::new(), Vec::new(), false);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while !done {
        let rec = tokio::time::timeout_at(deadline, c.next_record())
            .await
            .expect("query records in time")
            .expect("a record");
        if let Some(ev) = queries.decode(&rec) {
            if let StreamEvent::Query { id, name, .. } = ev.expect("a query event") {
                assert_eq!(name, "ping-me");
                c.respond(id, b"pong").await.expect("respond");
            }
        } else if let Some(r) = answers.decode(&rec) {
            let r = r.expect("a query record");
            match r.kind {
                QueryRecordType::Ack => acks.push(r.from),
                QueryRecordType::Response => responses.push((r.from, r.payload)),
                QueryRecordType::Done => done = true,
                QueryRecordType::Other(t) => panic!("query record type {t:?}"),
            }
        }
    }
    assert_eq!(acks, vec!["rpc-lib".to_string()]);
    assert_eq!(responses, vec![("rpc-lib".to_string(), b"pong".to_vec())]);
    c.stop(&queries).await.expect("stop");

    // The monitor replays the log so far.
    let logs = c.monitor("debug").await.expect("monitor");
    let line = tokio::time::timeout(Duration::from_secs(10), c.recv(&logs))
        .await
        .expect("a log line in time")
        .expect("a log record");
    assert!(!line.log.is_empty());
    c.stop(&logs).await.expect("stop");

    let stats = c.stats().await.expect("stats");
    let sections = stats.sections.expect("sections");
    let agent_section = sections
        .iter()
        .find(|s| s.name == b"agent")
        .and_then(|s| s.entries.as_ref())
        .expect("an agent section");
    assert!(agent_section
        .iter()
        .any(|(k, v)| k == b"name" && v == b"rpc-lib"));
    assert_eq!(c.get_coordinate("nobody").await.expect("coordinate"), None);

    match c.join(&["127.0.0.1:1".to_string()], false).await {
        Err(ClientError::Remote(e)) => assert!(!e.is_empty()),
        other => panic!("join of a closed port: {other:?}"),
    }

    c.leave().await.expect("leave");
    c.close().await;
    assert!(matches!(c.members().await, Err(ClientError::Closed)));
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(status) = agent.0.try_wait().expect("wait") {
            assert!(status.success(), "agent exit: {status}");
            break;
        }
        assert!(Instant::now() < deadline, "agent still running after leave");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
