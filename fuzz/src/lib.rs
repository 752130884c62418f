//! Fuzz harnesses for the parsers outside `serf-wire` (which has its own project in
//! `crates/wire/fuzz`), one function per target.
//!
//! The cargo-fuzz targets in `fuzz_targets/` call these, and
//! `crates/fuzz-seeds/tests/replay.rs` includes this very file (`#[path]`) to replay the seed
//! corpus through the same code in the normal `cargo test`. Every function accepts any
//! bytes; it panics only when a parser panics or breaks one of the invariants checked here
//! (bounded output, decode -> encode -> decode is stable, chunking does not matter).
#![forbid(unsafe_code)]

use serf_agent::fuzzing as agent;
use serf_rpc::{Body, Command, ObjectReader, ReadError, Request, RequestHeader, MAX_OBJECT};
use serfnode_core::config::{Config as NodeConfig, Env};
use serfnode_core::fifo::{self, EventDecoder, FifoError, USER_EVENT_SIZE_LIMIT};
use serfnode_core::tags::PortMap;
use std::future::Future;
use std::pin::{pin, Pin};
use std::task::{Context, Poll, Waker};
use tokio::io::{AsyncRead, ReadBuf};

/// Splits on NUL bytes (the argument, file and write separator of several targets).
fn pieces(data: &[u8]) -> Vec<&[u8]> {
    data.split(|&b| b == 0).collect()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

// ---------------------------------------------------------------------------------------
// RPC

/// An in-memory stream handing out at most `chunk` bytes per read (never pending).
struct Chunked<'a> {
    data: &'a [u8],
    chunk: usize,
}

impl AsyncRead for Chunked<'_> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let n = self.data.len().min(self.chunk).min(buf.remaining());
        buf.put_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Poll::Ready(Ok(()))
    }
}

/// Runs a future that never waits (its reader is in memory) to completion.
fn ready<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

/// Target `rpc_request`: the agent's request loop without the handlers: `ObjectReader`
/// over the bytes (delivered in chunks of `1 + data[0] % 16` bytes), each header through
/// `RequestHeader::decode_after`, the command name, the body object and `Request::decode`.
/// Checks: objects are within the input and consecutive; a request re-encodes to bytes
/// that decode to the same request (up to nil decoding as empty, as in Go).
pub fn rpc_request(data: &[u8]) {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let chunk = 1 + usize::from(first % 16);
    let mut reader = ObjectReader::new(Chunked { data: rest, chunk });
    let mut header = RequestHeader::default();
    let mut consumed = 0usize;
    let mut next = |consumed: &mut usize| -> Option<Vec<u8>> {
        match ready(reader.next()) {
            Ok(obj) => {
                assert!(!obj.is_empty() && obj.len() <= MAX_OBJECT);
                assert_eq!(
                    &rest[*consumed..*consumed + obj.len()],
                    &obj[..],
                    "object is not the next bytes of the stream"
                );
                *consumed += obj.len();
                Some(obj)
            }
            Err(ReadError::Closed | ReadError::Truncated | ReadError::Malformed(_)) => None,
            Err(e) => panic!("unexpected read error on a small input: {e}"),
        }
    };
    // At most as many requests as objects; each costs at least one byte.
    while let Some(obj) = next(&mut consumed) {
        header = match RequestHeader::decode_after(&obj, &header) {
            Ok(h) => h,
            Err(_) => return,
        };
        let Some(cmd) = Command::from_name(&header.command) else {
            return;
        };
        assert_eq!(cmd.name(), header.command);
        let body = if cmd.has_body() {
            match next(&mut consumed) {
                Some(b) => b,
                None => return,
            }
        } else {
            Vec::new()
        };
        let Ok(req) = Request::decode(cmd, &body) else {
            return;
        };
        assert_eq!(req.command(), cmd);
        let enc = req.encode(header.seq);
        let mut again = ObjectReader::new(Chunked {
            data: &enc,
            chunk: enc.len().max(1),
        });
        let h = match ready(again.next()) {
            Ok(o) => RequestHeader::decode(&o),
            Err(e) => panic!("re-encoded header unreadable: {e}"),
        };
        assert_eq!(
            h.ok(),
            Some(RequestHeader {
                command: header.command.clone(),
                seq: header.seq
            })
        );
        let body = if cmd.has_body() {
            match ready(again.next()) {
                Ok(b) => b,
                Err(e) => panic!("re-encoded body unreadable: {e}"),
            }
        } else {
            Vec::new()
        };
        // As in Go, a missing list or payload field is nil, and nil decodes as empty: the
        // first re-encoding may turn `None` into `Some(empty)`; after that it is stable.
        let again = match Request::decode(cmd, &body) {
            Ok(r) => r,
            Err(e) => panic!("re-encoded request does not decode: {e}"),
        };
        let body2 = again.encode_body().unwrap_or_default();
        match Request::decode(cmd, &body2) {
            Ok(r) => assert_eq!(r, again, "request changed after re-encoding"),
            Err(e) => panic!("re-encoded request does not decode: {e}"),
        }
        if req.encode_body() == Some(body2) {
            assert_eq!(again, req);
        }
    }
}

/// Target `rpc_skim`: `skim::skim_chunks` (oversized requests), the input cut in chunks of
/// `1 + data[0] % 64` bytes; when `data[0] % 16 == 1`, up to 72 KiB of zero bytes follow, so
/// that long strings and binaries get cut. Checks: chunking does not change the result;
/// the object is within `MAX_SKIMMED` (plus one header); a value never cut is copied
/// verbatim and is what `msgpack::Reader::skip` reads; the copy is valid msgpack.
pub fn rpc_skim(data: &[u8]) {
    use serf_rpc::skim::{skim_chunks, MAX_SKIMMED};
    use serf_wire::msgpack::Reader;
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let chunk = 1 + usize::from(first % 64);
    let filler = vec![0u8; 8192];
    let fill = if first % 16 == 1 { 9 } else { 0 };
    let whole = skim_chunks(std::iter::once(rest).chain(std::iter::repeat_n(&filler[..], fill)));
    let cut = skim_chunks(
        rest.chunks(chunk)
            .chain(std::iter::repeat_n(&filler[..], fill)),
    );
    assert_eq!(whole, cut, "chunking changed the skimmed object");
    let Ok(Some((obj, used))) = whole else {
        return;
    };
    assert!(obj.len() <= MAX_SKIMMED + 16, "skimmed {} bytes", obj.len());
    let mut full = rest.to_vec();
    full.extend(std::iter::repeat_n(0u8, fill * filler.len()));
    assert!(used <= full.len());
    let mut r = Reader::new(&obj);
    let skipped = r.skip();
    if fill == 0 {
        // Nothing longer than the cut fits in a fuzz input: the copy is the object.
        assert_eq!(&obj[..], &rest[..used], "short object not copied verbatim");
        let mut r = Reader::new(rest);
        if r.skip().is_ok() {
            assert_eq!(r.position(), used, "skim and skip disagree on the end");
        }
    }
    if let Ok(()) = skipped {
        assert_eq!(r.position(), obj.len(), "skimmed copy has trailing bytes");
    }
}

// ---------------------------------------------------------------------------------------
// Regex

/// Target `regex`: `gocompat::regex::compile` (and `translate`) on the input (up to 2 KiB)
/// as an expression. Checks: `\Q...` makes the rest literal; a compiled expression matches in
/// bounded time on a small haystack.
pub fn regex(data: &[u8]) {
    use serf_gocompat::regex::{compile, translate};
    // Real filters are short; longer inputs only slow the fuzzer down.
    if data.len() > 2048 {
        return;
    }
    let Ok(expr) = std::str::from_utf8(data) else {
        return;
    };
    let t = translate(expr);
    assert!(t.len() <= 2 * expr.len() + 8 || expr.contains("\\Q"));
    if let Ok(re) = compile(expr) {
        let _ = re.is_match(expr);
        let _ = re.find_iter("serf-node-1 web=1 dc=eu").count();
    }
    // Quoted text is literal: it compiles and matches itself.
    if !expr.contains("\\E") {
        let quoted = format!("\\Q{expr}");
        match compile(&quoted) {
            Ok(re) => assert!(re.is_match(expr), "\\Q{expr:?} does not match itself"),
            Err(e) => {
                let msg = e.to_string();
                assert!(
                    msg.contains("size limit") || msg.contains("exceeds"),
                    "\\Q{expr:?} refused: {msg}"
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Agent configuration, flags, files

/// Target `agent_config`: one JSON config text (`-config-file`), and Go's duration syntax
/// on the same text. Checks: merging a parsed config into the default gives a config whose
/// lists are the parsed ones; parsing is deterministic.
pub fn agent_config(data: &[u8]) {
    let t = text(data);
    let _ = agent::duration(&t);
    if let Ok(c) = agent::config_json(&t) {
        assert_eq!(agent::config_json(&t).ok().as_ref(), Some(&c));
        let mut d = agent::AgentConfig::default();
        d.merge(c.clone());
        assert_eq!(d.list_lens(), c.list_lens());
        let _ = agent::event_handlers(c.event_handlers());
    }
}

/// Target `config_dir`: the input split at NUL bytes into up to four JSON texts, merged in
/// order as `-config-dir` merges its files. Checks: lists concatenate, tags merge by key.
pub fn config_dir(data: &[u8]) {
    let mut merged = agent::AgentConfig::default();
    for p in pieces(data).into_iter().take(4) {
        let Ok(c) = agent::config_json(&text(p)) else {
            continue;
        };
        let before = merged.list_lens();
        let add = c.list_lens();
        let tags = merged.tags().to_vec();
        merged.merge(c.clone());
        let after = merged.list_lens();
        for i in 1..4 {
            assert_eq!(after[i], before[i] + add[i], "list {i} not concatenated");
        }
        assert!(after[0] <= before[0] + add[0] && after[0] >= before[0]);
        // Every later tag wins; earlier keys keep their place.
        for (k, v) in c.tags() {
            let last = c.tags().iter().rev().find(|(ck, _)| ck == k).map(|t| &t.1);
            let got = merged.tags().iter().find(|(mk, _)| mk == k).map(|t| &t.1);
            assert_eq!(got, last, "tag {k:?}={v:?} not merged");
        }
        for (i, (k, _)) in tags.iter().enumerate() {
            assert_eq!(
                merged.tags().get(i).map(|t| &t.0),
                Some(k),
                "tag order changed"
            );
        }
    }
}

/// Target `agent_flags`: the input split at NUL bytes into an argument vector for
/// `serf agent` (Go flag syntax), then the configuration the flags give. Checks: the
/// config files named are arguments' suffixes; the flags merge over the default config.
pub fn agent_flags(data: &[u8]) {
    let args: Vec<String> = pieces(data).into_iter().map(text).collect();
    if let Ok((c, paths)) = agent::agent_flags(&args) {
        assert!(paths.len() <= args.len());
        for p in &paths {
            assert!(
                args.iter().any(|a| a.ends_with(p.as_str())),
                "path {p:?} from nowhere"
            );
        }
        let mut d = agent::AgentConfig::default();
        d.merge(c.clone());
        assert_eq!(d.list_lens(), c.list_lens());
        let _ = agent::event_handlers(c.event_handlers());
    }
}

/// Target `key_tag_files`: the text as a keyring file and as a tags file. Checks: keys are
/// AES key sizes; a keyring file holding the keys again gives the same keys; tags files
/// roundtrip through JSON.
pub fn key_tag_files(data: &[u8]) {
    use base64::Engine as _;
    let t = text(data);
    if let Ok(keys) = agent::keyring_file(&t) {
        assert!(!keys.is_empty());
        assert!(keys.iter().all(|k| matches!(k.len(), 16 | 24 | 32)));
        let b64 = base64::engine::general_purpose::STANDARD;
        let again: Vec<String> = keys.iter().map(|k| b64.encode(k)).collect();
        let json = serde_json::to_string(&again).unwrap_or_default();
        let back = agent::keyring_file(&json);
        assert!(back.is_ok(), "keyring {json} refused: {back:?}");
    }
    if let Ok(tags) = agent::tags_file(&t) {
        let map: serde_json::Map<String, serde_json::Value> = tags
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect();
        let json = serde_json::Value::Object(map).to_string();
        let back = agent::tags_file(&json);
        assert_eq!(
            back.as_ref().ok(),
            Some(&tags),
            "tags changed after re-encoding"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Snapshot

/// Target `snapshot`: `snapshot::replay_bytes` with and without `rejoin_after_leave`.
/// Checks: warnings are bounded; a compacted snapshot of the result (alive lines and
/// clocks, as compaction writes them) replays to the same state.
pub fn snapshot(data: &[u8]) {
    use serf_runtime::snapshot::{replay_bytes, MAX_WARNINGS};
    for rejoin in [false, true] {
        let r = replay_bytes(data, rejoin);
        assert!(
            r.warnings.len() <= MAX_WARNINGS + 2,
            "{} warnings",
            r.warnings.len()
        );
        let lines = data.iter().filter(|&&b| b == b'\n').count();
        assert!(r.alive.len() <= lines);
        let mut compact = String::new();
        for (name, addr) in &r.alive {
            compact.push_str(&format!("alive: {name} {addr}\n"));
        }
        compact.push_str(&format!(
            "clock: {}\nevent-clock: {}\nquery-clock: {}\n",
            r.last_clock, r.last_event_clock, r.last_query_clock
        ));
        let again = replay_bytes(compact.as_bytes(), rejoin);
        assert_eq!(again.alive, r.alive, "alive set changed after compaction");
        assert_eq!(
            (
                again.last_clock,
                again.last_event_clock,
                again.last_query_clock
            ),
            (r.last_clock, r.last_event_clock, r.last_query_clock)
        );
        assert!(again.warnings.is_empty(), "compacted: {:?}", again.warnings);
    }
}

// ---------------------------------------------------------------------------------------
// Handlers

/// Target `handler_output`: the input split at NUL bytes into writes of a handler script,
/// kept as the query response payload; the same pieces as `-event-handler` values.
/// Checks: the payload is the last `MAX_HANDLER_OUTPUT` bytes of what was written.
pub fn handler_output(data: &[u8]) {
    let writes = pieces(data);
    let (kept, total) = agent::handler_output(&writes);
    let all: Vec<u8> = writes.concat();
    assert_eq!(total, all.len() as u64);
    assert!(kept.len() <= agent::MAX_HANDLER_OUTPUT);
    assert_eq!(&kept[..], &all[all.len() - kept.len()..]);
    assert_eq!(kept.len(), all.len().min(agent::MAX_HANDLER_OUTPUT));
    let specs: Vec<String> = writes.into_iter().map(text).collect();
    if let Ok(n) = agent::event_handlers(&specs) {
        assert!(n >= specs.len());
    }
}

/// Target `journal`: the handler journal parser. Checks: the largest id is at least every
/// pending id; the pending events written back as journal lines parse to the same.
pub fn journal(data: &[u8]) {
    let t = text(data);
    let (events, max) = agent::journal(&t);
    assert!(events.len() <= t.lines().count());
    assert!(events.iter().all(|(id, _)| *id <= max));
    let mut again = String::new();
    for (id, e) in &events {
        again.push_str(&agent::journal_line(*id, e));
    }
    let (back, _) = agent::journal(&again);
    assert_eq!(back, events, "journal changed after re-writing");
}

// ---------------------------------------------------------------------------------------
// mDNS

/// Target `mdns`: one packet through the DNS codec, the responder (a fixed zone) and the
/// querier's bookkeeping. Checks: a re-encoded message parses to the same message; every
/// reply parses; replies are bounded.
pub fn mdns(data: &[u8]) {
    let Ok(r) = agent::dns(data) else {
        return;
    };
    if let Some(enc) = &r.reencoded {
        match agent::dns(enc) {
            Ok(again) => assert_eq!(
                again.message, r.message,
                "message changed after re-encoding"
            ),
            Err(e) => panic!("re-encoded message does not parse: {e}"),
        }
    }
    for reply in &r.replies {
        assert!(reply.len() <= 9000, "reply of {} bytes", reply.len());
        if let Err(e) = agent::dns(reply) {
            panic!("reply does not parse: {e}");
        }
    }
}

// ---------------------------------------------------------------------------------------
// serfnode

/// Target `serfnode_config`: the input split at NUL bytes: the first piece is the text of
/// `/serfnode.yml`, the others `NAME=value` environment entries; resolved with
/// `Config::from_sources`, with and without the file. Checks: child names are unique.
pub fn serfnode_config(data: &[u8]) {
    let parts = pieces(data);
    let yaml = text(parts[0]);
    let mut env = Env::new();
    for p in &parts[1..] {
        let e = text(p);
        if let Some((k, v)) = e.split_once('=') {
            env.insert(k.to_string(), v.to_string());
        }
    }
    if let Ok(c) = NodeConfig::from_sources(&env, Some(&yaml)) {
        // Child names are unique (a duplicate is an error).
        let names: std::collections::BTreeSet<_> = c.children.iter().map(|ch| &ch.name).collect();
        assert_eq!(names.len(), c.children.len(), "duplicate child names");
    }
    if !env.is_empty() {
        let _ = NodeConfig::from_sources(&env, None);
    }
}

/// Target `serfnode_fifo`: `EventDecoder` (lines through `fifo::parse_line`) fed the bytes
/// whole and in chunks of `1 + data[0] % 32` bytes. Checks: events are within `USER_EVENT_SIZE_LIMIT` and have
/// names; the decoder gives the same results however the bytes are chunked.
pub fn serfnode_fifo(data: &[u8]) {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let run = |chunk: usize| -> (Vec<Result<fifo::UserEvent, FifoError>>, Option<FifoError>) {
        let mut d = EventDecoder::new();
        let mut out = Vec::new();
        for c in rest.chunks(chunk) {
            out.extend(d.push(c));
        }
        let end = d.close();
        (out, end)
    };
    let whole = run(rest.len().max(1));
    for e in whole.0.iter().flatten() {
        assert!(!e.name.is_empty());
        assert!(e.name.len() + e.payload.len() <= USER_EVENT_SIZE_LIMIT);
    }
    let cut = run(1 + usize::from(first % 32));
    assert_eq!(
        format!("{whole:?}"),
        format!("{cut:?}"),
        "chunking changed the events"
    );
}

/// Target `serfnode_tags`: `tags::PortMap::decode` (strict and lenient) and
/// `hosts::rewrite` of the text as `/etc/hosts`. Checks: a decoded map re-encodes to a tag
/// that decodes to the same map; the lenient decoder agrees when the strict one accepts;
/// rewriting is idempotent.
pub fn serfnode_tags(data: &[u8]) {
    let t = text(data);
    if let Ok(m) = PortMap::decode(&t) {
        let enc = m.encode();
        assert_eq!(
            PortMap::decode(&enc).ok().as_ref(),
            Some(&m),
            "ports tag changed"
        );
        assert_eq!(PortMap::decode_lenient(&t), m);
    }
    let _ = PortMap::decode_lenient(&t);
    let members = members();
    let once = serfnode_core::hosts::rewrite(&t, &members);
    let twice = serfnode_core::hosts::rewrite(&once, &members);
    assert_eq!(once, twice, "hosts rewrite not idempotent");
}

fn members() -> Vec<serf_core::Member> {
    use serf_core::{Member, MemberStatus};
    let m = |name: &str, ip: [u8; 4], role: &str, ts: &str| Member {
        name: name.to_string(),
        addr: std::net::IpAddr::from(ip),
        port: 7946,
        tags: vec![
            ("role".to_string(), role.to_string()),
            ("timestamp".to_string(), ts.to_string()),
        ],
        status: MemberStatus::Alive,
        vsn: [2, 5, 5, 2, 5, 4],
        status_ltime: 1,
        leave_time: None,
    };
    vec![
        m("a", [10, 0, 0, 1], "web", "1700000000.5"),
        m("b", [10, 0, 0, 2], "web", "1700000001"),
        m("c", [10, 0, 0, 3], "db", "1700000002"),
    ]
}
