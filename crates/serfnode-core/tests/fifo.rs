//! Tests of `serfnode_core::fifo`.
//!
//! SPEC §8 items covered: 28 (`["deploy", {"v": 2}]` gives event `deploy`, payload
//! `{"v": 2}`), 29 (`not json` is `Wrong payload: not json`, next line still served),
//! 30 (`["a", 1, 2]` and `{"x":1}` are errors, decided stricter than the original),
//! 31 (name plus payload over 512 bytes: error, no event), 32 (two complete lines give two
//! events), 33 (a writer closing is not the end of the stream; a partial line is reported).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serfnode_core::fifo::{
    parse_line, EventDecoder, FifoError, LineBuffer, UserEvent, USER_EVENT_SIZE_LIMIT,
};

fn event(name: &str, payload: &str) -> UserEvent {
    UserEvent {
        name: name.to_string(),
        payload: payload.as_bytes().to_vec(),
    }
}

#[test]
fn a_good_line() {
    // §8 item 28.
    assert_eq!(
        parse_line(br#"["deploy", {"v": 2}]"#),
        Ok(event("deploy", r#"{"v": 2}"#))
    );
    assert_eq!(
        parse_line(br#"["deploy",{"v":2}]"#),
        Ok(event("deploy", r#"{"v": 2}"#))
    );
    assert_eq!(
        parse_line(br#" ["x", {"b": [1,2,{"c":null}], "a": "\u00e9"}] "#),
        Ok(event("x", r#"{"a": "\u00e9", "b": [1, 2, {"c": null}]}"#))
    );
    assert_eq!(
        parse_line(br#"["x", "caf\u00e9"]"#),
        Ok(event("x", r#""caf\u00e9""#))
    );
    assert_eq!(
        parse_line("[\"x\", \"café\"]".as_bytes()),
        Ok(event("x", r#""caf\u00e9""#))
    );
    assert_eq!(parse_line(br#"["x", null]"#), Ok(event("x", "null")));
    assert_eq!(parse_line(b"[\"x\", 1]\r"), Ok(event("x", "1")));
}

#[test]
fn not_json() {
    // §8 item 29.
    let e = parse_line(b"not json").unwrap_err();
    assert!(matches!(&e, FifoError::NotJson { line, .. } if line == "not json"));
    assert!(
        e.to_string()
            .starts_with("Wrong payload: not json (not JSON: "),
        "{e}"
    );
    assert_eq!(parse_line(b""), Err(FifoError::EmptyLine));
    assert_eq!(parse_line(b"  \t"), Err(FifoError::EmptyLine));
    assert!(matches!(
        parse_line(b"[\"a\", 1"),
        Err(FifoError::NotJson { .. })
    ));
    assert!(matches!(
        parse_line(b"\xff\xfe"),
        Err(FifoError::NotJson { .. })
    ));
    let long = vec![b'x'; 1000];
    match parse_line(&long).unwrap_err() {
        FifoError::NotJson { line, .. } => assert_eq!(line.chars().count(), 201),
        other => panic!("{other:?}"),
    }
}

#[test]
fn wrong_shapes() {
    // §8 item 30, stricter: only ["name", payload].
    assert_eq!(
        parse_line(br#"["a", 1, 2]"#),
        Err(FifoError::WrongLength { len: 3 })
    );
    assert_eq!(
        parse_line(br#"["a"]"#),
        Err(FifoError::WrongLength { len: 1 })
    );
    assert_eq!(
        parse_line(br#"{"x":1}"#),
        Err(FifoError::NotAnArray { found: "an object" })
    );
    assert_eq!(
        parse_line(br#"{"a":1,"b":2}"#),
        Err(FifoError::NotAnArray { found: "an object" })
    );
    assert_eq!(
        parse_line(br#""ab""#),
        Err(FifoError::NotAnArray { found: "a string" })
    );
    assert_eq!(
        parse_line(br#"[1, 2]"#),
        Err(FifoError::NameNotString { found: "a number" })
    );
    assert_eq!(
        parse_line(br#"["", 2]"#),
        Err(FifoError::BadName {
            name: String::new()
        })
    );
    assert!(matches!(
        parse_line(br#"["a\nb", 2]"#),
        Err(FifoError::BadName { .. })
    ));
    assert_eq!(
        FifoError::WrongLength { len: 3 }.to_string(),
        "expected an event is a JSON array [\"name\", payload] on one line, found an array of 3 items"
    );
}

#[test]
fn size_limit() {
    // §8 item 31: name + encoded payload <= 512 bytes.
    let fits = format!(r#"["e", "{}"]"#, "x".repeat(USER_EVENT_SIZE_LIMIT - 1 - 2));
    assert!(parse_line(fits.as_bytes()).is_ok());
    let over = format!(r#"["e", "{}"]"#, "x".repeat(USER_EVENT_SIZE_LIMIT - 2));
    assert_eq!(
        parse_line(over.as_bytes()),
        Err(FifoError::TooLarge {
            size: 513,
            limit: 512
        })
    );
    assert_eq!(
        FifoError::TooLarge {
            size: 513,
            limit: 512
        }
        .to_string(),
        "user event is 513 bytes (name plus encoded payload); serf's limit is 512"
    );
    // The size is the re-encoded one: `{"a":1}` becomes `{"a": 1}`, and é becomes \u00e9.
    let payload = "é".repeat(84); // 168 bytes as UTF-8, 504 as \u00e9 escapes, +2 quotes
    let line = format!(r#"["abcdefg", "{payload}"]"#);
    assert_eq!(
        parse_line(line.as_bytes()),
        Err(FifoError::TooLarge {
            size: 513,
            limit: 512
        })
    );
}

#[test]
fn lines_across_reads_and_several_per_read() {
    // §8 item 32.
    let mut d = EventDecoder::new();
    assert!(d.push(b"[\"a\", 1").is_empty());
    assert!(d.push(b"]").is_empty());
    let got = d.push(b"\n[\"b\", 2]\nnot json\n[\"c\"");
    assert_eq!(got.len(), 3);
    assert_eq!(got[0], Ok(event("a", "1")));
    assert_eq!(got[1], Ok(event("b", "2")));
    assert!(matches!(got[2], Err(FifoError::NotJson { .. })));
    assert_eq!(d.push(b", 3]\n"), vec![Ok(event("c", "3"))]);
    assert_eq!(d.close(), None);
}

#[test]
fn writer_closing_mid_line() {
    // §8 item 33: closing is not the end; a partial line is reported and dropped.
    let mut d = EventDecoder::new();
    assert!(d.push(b"[\"a\", ").is_empty());
    assert_eq!(d.close(), Some(FifoError::Partial { len: 6 }));
    assert_eq!(d.push(b"[\"b\", 2]\n"), vec![Ok(event("b", "2"))]);
    assert_eq!(d.close(), None);
    assert!(FifoError::Partial { len: 6 }
        .to_string()
        .contains("partial line dropped"));
}

#[test]
fn too_long_lines_are_skipped_once() {
    let mut b = LineBuffer::new(8);
    assert_eq!(b.push(b"12345678\n"), vec![Ok(b"12345678".to_vec())]);
    assert_eq!(
        b.push(b"123456789\nok\n"),
        vec![
            Err(FifoError::LineTooLong { len: 9, limit: 8 }),
            Ok(b"ok".to_vec())
        ]
    );
    // Over the limit across reads: reported once, when its newline comes.
    assert!(b.push(b"12345").is_empty());
    assert!(b.push(b"6789").is_empty());
    assert_eq!(b.pending(), 0);
    assert!(b.push(b"abc").is_empty());
    assert_eq!(
        b.push(b"\nnext\n"),
        vec![
            Err(FifoError::LineTooLong { len: 12, limit: 8 }),
            Ok(b"next".to_vec())
        ]
    );
    // And when the writer closes while skipping.
    assert!(b.push(b"0123456789").is_empty());
    assert_eq!(
        b.close(),
        Some(FifoError::LineTooLong { len: 10, limit: 8 })
    );
    assert_eq!(b.push(b"x\n"), vec![Ok(b"x".to_vec())]);
}

#[test]
fn every_split_of_a_stream_gives_the_same_lines() {
    let stream = b"[\"a\", 1]\nbad\n\n[\"b\", {\"k\": [1, 2]}]\n[\"c\", 3]\n";
    let whole = EventDecoder::new().push(stream);
    assert_eq!(whole.len(), 5);
    for i in 0..=stream.len() {
        for j in i..=stream.len() {
            let mut d = EventDecoder::new();
            let mut got = d.push(&stream[..i]);
            got.extend(d.push(&stream[i..j]));
            got.extend(d.push(&stream[j..]));
            assert_eq!(got, whole, "split at {i}, {j}");
            assert_eq!(d.close(), None);
        }
    }
}
