//! `serf info`.

use super::{connect, out, out_bytes, parse_flags, trim_space, with_rpc};
use crate::flags::{FlagSet, Kind};
use crate::gofmt::{json_str_map, json_string, sprintf_noargs};
use crate::help::INFO_HELP;
use serf_rpc::{StatsResponse, StatsSection};

/// One `stats` section: raw key/value bytes, `None` for a nil map.
type Section = Option<Vec<(Vec<u8>, Vec<u8>)>>;

/// `stats` as decoded: named sections; `None` for a nil map.
type Stats = Option<Vec<StatsSection>>;

/// Sections sorted by name, one per name (the last one wins, as in a Go map).
pub(super) fn sorted_sections(stats: &[StatsSection]) -> Vec<(&Vec<u8>, &Section)> {
    let mut v: Vec<(&Vec<u8>, &Section)> = Vec::new();
    for s in stats {
        v.retain(|(vk, _)| **vk != s.name);
        v.push((&s.name, &s.entries));
    }
    v.sort_by(|a, b| a.0.cmp(b.0));
    v
}

/// `json.MarshalIndent(map[string]map[string]string, "", "  ")`.
fn stats_json(stats: &Stats) -> Vec<u8> {
    let Some(stats) = stats else {
        return b"null".to_vec();
    };
    if stats.is_empty() {
        return b"{}".to_vec();
    }
    let items: Vec<String> = sorted_sections(stats)
        .into_iter()
        .map(|(k, s)| {
            let v = match s {
                None => "null".to_string(),
                Some(m) => json_str_map(m, 1),
            };
            format!("  {}: {v}", json_string(k))
        })
        .collect();
    format!("{{\n{}\n}}", items.join(",\n")).into_bytes()
}

/// `StatsContainer.String()`.
fn stats_text(stats: &Stats) -> Vec<u8> {
    let mut out = Vec::new();
    let Some(stats) = stats else {
        return out;
    };
    for (k, s) in sorted_sections(stats) {
        // Go uses the section name as a format string.
        let mut head = String::from_utf8_lossy(k).into_owned();
        head.push_str(":\n");
        if String::from_utf8(k.clone()).is_ok() {
            out.extend_from_slice(sprintf_noargs(&head).as_bytes());
        } else {
            out.extend_from_slice(k);
            out.extend_from_slice(b":\n");
        }
        let Some(m) = s else {
            continue;
        };
        let mut entries: Vec<&(Vec<u8>, Vec<u8>)> = Vec::new();
        for e in m {
            entries.retain(|x| x.0 != e.0);
            entries.push(e);
        }
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        for (sk, sv) in entries {
            out.push(b'\t');
            out.extend_from_slice(sk);
            out.extend_from_slice(b" = ");
            out.extend_from_slice(sv);
            out.push(b'\n');
        }
    }
    out
}

/// `serf info [-format=text|json]`.
pub(super) async fn info(args: &[String]) -> i32 {
    let fs = with_rpc(FlagSet::new().add("format", Kind::Value));
    let Some(p) = parse_flags(fs, args, INFO_HELP) else {
        return 1;
    };
    let Some(mut c) = connect(&p).await else {
        return 1;
    };
    let stats = c.stats().await;
    c.close().await;
    let stats = match stats {
        Ok(StatsResponse { sections }) => sections,
        Err(e) => {
            out(&format!("Error querying agent: {e}"));
            return 1;
        }
    };
    let text = match p.get("format").unwrap_or("text") {
        "json" => stats_json(&stats),
        "text" => stats_text(&stats),
        other => {
            out(&format!(
                "Encoding error: Invalid output format \"{other}\""
            ));
            return 1;
        }
    };
    out_bytes(trim_space(&text));
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats() -> Stats {
        Some(vec![
            StatsSection {
                name: b"tags".to_vec(),
                entries: Some(vec![
                    (b"role".to_vec(), b"web".to_vec()),
                    (b"dc".to_vec(), b"east".to_vec()),
                ]),
            },
            StatsSection {
                name: b"agent".to_vec(),
                entries: Some(vec![(b"name".to_vec(), b"alpha".to_vec())]),
            },
        ])
    }

    #[test]
    fn text_and_json_like_go() {
        assert_eq!(
            String::from_utf8_lossy(trim_space(&stats_text(&stats()))),
            "agent:\n\tname = alpha\ntags:\n\tdc = east\n\trole = web"
        );
        assert_eq!(
            String::from_utf8_lossy(&stats_json(&stats())),
            "{\n  \"agent\": {\n    \"name\": \"alpha\"\n  },\n  \"tags\": {\n    \"dc\": \"east\",\n    \"role\": \"web\"\n  }\n}"
        );
        assert_eq!(stats_json(&None), b"null");
        assert_eq!(stats_json(&Some(Vec::new())), b"{}");
    }
}
