//! Tests of mDNS discovery and its DNS codec.

use super::*;
use std::sync::Mutex;

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// Frame 1 of vectors/mdns_capture.txt (UDP payload): Go's query.
const GO_QUERY: &str = "70cd 0000 0001 0000 0000 0000 0c5f 7365 7266 5f74 6573 7463 6c04
    5f74 6370 056c 6f63 616c 0000 0c00 01";
/// Frame 2 (UDP payload): Go's answer for node md1, port 7959, host vm, 127.0.0.1.
const GO_ANSWER: &str = "0000 8400 0000 0004 0000 0000 0c5f 7365 7266 5f74 6573 7463 6c04
    5f74 6370 056c 6f63 616c 0000 0c00 0100 0000 7800 0603 6d64 31c0 0cc0 2f00 2100 0100
    0000 7800 0a00 0a00 011f 1702 766d 00c0 4700 0100 0100 0000 7800 047f 0000 01c0 2f00
    1000 0100 0000 7800 1615 5365 7266 2027 7465 7374 636c 2720 636c 7573 7465 72";

fn md1() -> Zone {
    Zone::new("md1", "testcl", "vm.", "127.0.0.1:7959".parse().unwrap()).unwrap()
}

#[test]
fn answer_is_byte_identical_to_go() {
    let from: SocketAddr = "192.0.2.2:33175".parse().unwrap();
    let replies = md1().handle(&hex(GO_QUERY), from);
    assert_eq!(
        replies,
        vec![Reply {
            bytes: hex(GO_ANSWER),
            multicast: false
        }]
    );
}

#[test]
fn query_is_byte_identical_to_go() {
    let name = Name::parse(&service_name("testcl")).unwrap();
    assert_eq!(encode_query(0x70cd, &name, false), hex(GO_QUERY));
}

#[test]
fn go_answer_gives_the_host() {
    let msg = Message::parse(&hex(GO_ANSWER)).unwrap();
    assert_eq!(msg.answers.len(), 4);
    assert!(msg.answers.iter().all(|r| r.ttl == 120 && r.class == 1));
    let mut e = Entries::default();
    let out = e.absorb(&msg);
    assert_eq!(out.complete, vec!["127.0.0.1:7959".parse().unwrap()]);
    assert!(out.incomplete.is_none());
    // The same answer again (e.g. over IPv6) is not reported twice.
    assert!(e.absorb(&msg).complete.is_empty());
}

#[test]
fn answers_from_other_layouts() {
    // mdns-sd / avahi style: PTR as answer, the rest as additional records with the
    // cache-flush bit, address last.
    let z = Zone::new("n2", "c", "h.local.", "[fd00::2]:7000".parse().unwrap()).unwrap();
    let mut recs = z.records(&Question {
        name: Name::parse("_serf_c._tcp.local.").unwrap(),
        qtype: TYPE_PTR,
        qclass: 1,
    });
    for r in recs.iter_mut().skip(1) {
        r.class |= 0x8000;
    }
    let ptr = recs.remove(0);
    let aaaa = recs.remove(1);
    recs.push(aaaa);
    let mut p = Packer::new();
    p.header(0, 0x8400, [0, 1, 0, recs.len()]).unwrap();
    p.record(&ptr).unwrap();
    for r in &recs {
        p.record(r).unwrap();
    }
    let msg = Message::parse(&p.buf).unwrap();
    let out = Entries::default().absorb(&msg);
    assert_eq!(out.complete, vec!["[fd00::2]:7000".parse().unwrap()]);

    // Only a PTR: incomplete, so the instance is asked for.
    let mut p = Packer::new();
    p.header(0, 0x8400, [0, 1, 0, 0]).unwrap();
    p.record(&ptr).unwrap();
    let out = Entries::default().absorb(&Message::parse(&p.buf).unwrap());
    assert!(out.complete.is_empty());
    assert_eq!(out.incomplete.as_deref(), Some("n2._serf_c._tcp.local."));
}

fn q(name: &str, qtype: u16) -> Question {
    Question {
        name: Name::parse(name).unwrap(),
        qtype,
        qclass: 1,
    }
}

fn types(recs: &[Record]) -> Vec<u16> {
    recs.iter().map(|r| r.rtype).collect()
}

#[test]
fn records_follow_hashicorp_mdns() {
    let z = Zone::new("md1", "testcl", "vm.", "10.0.0.1:7946".parse().unwrap()).unwrap();
    let svc = "_serf_testcl._tcp.local.";
    let inst = "md1._serf_testcl._tcp.local.";
    assert_eq!(types(&z.records(&q(svc, TYPE_PTR))), [12, 33, 1, 16]);
    assert_eq!(types(&z.records(&q(svc, TYPE_ANY))), [12, 33, 1, 16]);
    assert!(z.records(&q(svc, TYPE_SRV)).is_empty());
    assert_eq!(
        types(&z.records(&q("_SERF_testcl._TCP.local", TYPE_PTR))),
        [12, 33, 1, 16]
    );
    assert_eq!(types(&z.records(&q(inst, TYPE_ANY))), [33, 1, 16]);
    assert_eq!(types(&z.records(&q(inst, TYPE_SRV))), [33, 1]);
    assert_eq!(types(&z.records(&q(inst, TYPE_TXT))), [16]);
    assert_eq!(types(&z.records(&q(inst, TYPE_A))), [1]);
    assert!(z.records(&q(inst, TYPE_AAAA)).is_empty());
    assert!(z.records(&q(inst, TYPE_PTR)).is_empty());
    assert_eq!(types(&z.records(&q("vm.", TYPE_A))), [1]);
    assert!(z.records(&q("vm.", TYPE_TXT)).is_empty());
    let e = z.records(&q("_services._dns-sd._udp.local.", TYPE_PTR));
    assert_eq!(e[0].data, RData::Ptr(Name::parse(svc).unwrap()));
    assert!(z
        .records(&q("_serf_other._tcp.local.", TYPE_PTR))
        .is_empty());
    // An IPv6 advertise address gives an AAAA record instead.
    let z6 = Zone::new("md1", "testcl", "vm.", "[fd00::1]:7946".parse().unwrap()).unwrap();
    assert_eq!(types(&z6.records(&q(svc, TYPE_PTR))), [12, 33, 28, 16]);
    // Dotted node names give more labels, as in Go.
    let zd = Zone::new("a.b", "c", "h.", "10.0.0.1:1".parse().unwrap()).unwrap();
    assert_eq!(zd.instance.0.len(), 5);
}

#[test]
fn reply_destinations_and_ids() {
    let z = md1();
    let name = Name::parse(&service_name("testcl")).unwrap();
    // QM from port 5353: multicast, ID 0.
    let r = z.handle(
        &encode_query(7, &name, false),
        "10.0.0.9:5353".parse().unwrap(),
    );
    assert_eq!(r.len(), 1);
    assert!(r[0].multicast);
    assert_eq!(&r[0].bytes[..2], &[0, 0]);
    // QU: unicast with the query's ID.
    let r = z.handle(
        &encode_query(7, &name, true),
        "10.0.0.9:5353".parse().unwrap(),
    );
    assert_eq!(r.len(), 1);
    assert!(!r[0].multicast);
    assert_eq!(&r[0].bytes[..2], &[0, 7]);
    // Responses, unknown names: nothing.
    assert!(z
        .handle(&hex(GO_ANSWER), "10.0.0.9:5353".parse().unwrap())
        .is_empty());
    let other = Name::parse("_serf_x._tcp.local.").unwrap();
    assert!(z
        .handle(
            &encode_query(7, &other, false),
            "10.0.0.9:1".parse().unwrap()
        )
        .is_empty());
}

#[test]
fn bad_names_are_refused() {
    assert!(Zone::new("", "c", "h.", "10.0.0.1:1".parse().unwrap()).is_err());
    assert!(Zone::new("n", "c", "h.", "10.0.0.1:0".parse().unwrap()).is_err());
    let long = "x".repeat(64);
    assert!(Zone::new(&long, "c", "h.", "10.0.0.1:1".parse().unwrap()).is_err());
    assert!(Zone::new("a..b", "c", "h.", "10.0.0.1:1".parse().unwrap()).is_err());
}

#[test]
fn malformed_input_never_panics() {
    let z = md1();
    let from: SocketAddr = "10.0.0.9:4000".parse().unwrap();
    for packet in [hex(GO_QUERY), hex(GO_ANSWER)] {
        for cut in 0..packet.len() {
            let _ = z.handle(&packet[..cut], from);
            if let Ok(m) = Message::parse(&packet[..cut]) {
                let _ = Entries::default().absorb(&m);
            }
        }
        for i in 0..packet.len() {
            for v in [0x00, 0x3f, 0xc0, 0xff] {
                let mut p = packet.clone();
                p[i] = v;
                let _ = z.handle(&p, from);
                if let Ok(m) = Message::parse(&p) {
                    let _ = Entries::default().absorb(&m);
                }
            }
        }
    }
    // A pointer loop.
    let mut p = hex("0000 0000 0001 0000 0000 0000");
    p.extend_from_slice(&[0xc0, 12, 0, 12, 0, 1]);
    assert!(Message::parse(&p).is_err());
}

#[tokio::test]
async fn batches_after_quiet_and_never_repeats() {
    let joins: Arc<Mutex<Vec<Vec<String>>>> = Arc::default();
    let polls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (stop_tx, stop) = watch::channel(false);
    let j = joins.clone();
    let p = polls.clone();
    let task = tokio::spawn(discover_loop(
        move |tx: mpsc::Sender<SocketAddr>| {
            p.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            tokio::spawn(async move {
                for a in ["10.0.0.1:7946", "10.0.0.2:7946", "10.0.0.1:7946"] {
                    let _ = tx.send(a.parse().unwrap()).await;
                    tokio::time::sleep(Duration::from_millis(30)).await;
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
                for a in ["10.0.0.2:7946", "10.0.0.3:7946"] {
                    let _ = tx.send(a.parse().unwrap()).await;
                }
            });
        },
        move |addrs: Vec<String>| {
            let j = j.clone();
            async move {
                let n = addrs.len();
                j.lock().unwrap().push(addrs);
                Ok(n)
            }
        },
        stop,
    ));
    tokio::time::sleep(Duration::from_millis(900)).await;
    let _ = stop_tx.send(true);
    task.await.unwrap();
    assert_eq!(polls.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert_eq!(
        *joins.lock().unwrap(),
        vec![
            vec!["10.0.0.1:7946".to_string(), "10.0.0.2:7946".to_string()],
            vec!["10.0.0.3:7946".to_string()],
        ]
    );
}

#[test]
fn repeated_questions_do_not_amplify_the_reply() {
    // Regression (fuzz target `mdns`): one question for the service, then 599 copies of it
    // as 6-byte compression pointers (3.6 KB) drew a 51 KB reply, to the group or, with the
    // QU bit, to the (possibly spoofed) source. Each record is now answered once, also when
    // a copy spells the name in another case.
    let z = md1();
    let name = Name::parse(&service_name("testcl")).unwrap();
    for qu in [false, true] {
        let one = encode_query(7, &name, qu);
        let single = z.handle(&one, "10.0.0.9:5353".parse().unwrap());
        let mut many = one.clone();
        many[4..6].copy_from_slice(&600u16.to_be_bytes());
        let tail = one[one.len() - 4..].to_vec();
        for i in 0..599 {
            many.extend_from_slice(&[0xc0, 0x0c]);
            many.extend_from_slice(&tail);
            if i == 0 {
                // The same name in upper case, written out.
                let upper = Name(name.0.iter().map(|l| l.to_ascii_uppercase()).collect());
                let mut p = Packer::new();
                p.name(&upper, false).unwrap();
                many.extend_from_slice(&p.buf);
                many.extend_from_slice(&tail);
            }
        }
        many[4..6].copy_from_slice(&601u16.to_be_bytes());
        assert!(many.len() > 3600);
        let replies = z.handle(&many, "10.0.0.9:5353".parse().unwrap());
        assert_eq!(replies, single, "qu={qu}");
        assert!(
            replies[0].bytes.len() < 300,
            "{} bytes",
            replies[0].bytes.len()
        );
    }
}
