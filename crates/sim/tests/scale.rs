//! The scale scenario (`scripts/sim-scale`, `tests/support/scale.rs`) on 200 nodes: a
//! quick regression check of its invariants. The 10,000-node run is a benchmark, not a
//! test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/dissemination.rs"]
mod support;

#[path = "support/scale.rs"]
mod scale;

fn field<'a>(line: &'a str, key: &str) -> &'a str {
    line.split(' ')
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
        .unwrap_or_else(|| panic!("no {key}= in {line}"))
}

#[test]
fn two_hundred_nodes() {
    let p = scale::ScaleParams {
        nodes: 200,
        vsecs: 25.0,
        loss: 0.0,
        seed: 1,
    };
    let r = scale::run(&p);
    let line = r.line();
    println!("{line}");
    for key in [
        "nodes",
        "wall_s",
        "rss_mib",
        "bytes_per_pair",
        "event_t99_9_s",
        "model_t99_9_s",
        "detect_p99_s",
        "false_failures",
    ] {
        field(&line, key);
    }
    assert_eq!(field(&line, "nodes"), "200");
    assert_eq!(field(&line, "false_failures"), "0");
    // Every user event reached every node, within the model.
    assert_eq!(field(&line, "event_reach"), "200");
    let t: f64 = field(&line, "event_t99_9_s").parse().unwrap();
    let model: f64 = field(&line, "model_t99_9_s").parse().unwrap();
    assert!(t <= model * 1.2, "{line}");
    // Both crashed nodes were detected by every live node.
    assert_eq!(field(&line, "killed"), "2");
    assert!(
        field(&line, "detect_all_s").parse::<f64>().is_ok(),
        "{line}"
    );
    let d: f64 = field(&line, "detect_p99_s").parse().unwrap();
    assert!(d > 0.0 && d < 13.0, "{line}");
    // Every node acked and answered the query.
    assert_eq!(field(&line, "query_acks"), "200");
    assert_eq!(field(&line, "query_responses"), "200");
}
