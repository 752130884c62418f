//! `serf members`.

use super::{columnize_lines, connect, out, parse_flags, unmarshal_tags, with_rpc};
use crate::flags::{FlagSet, Kind};
use crate::gofmt::{json_str_map, json_string};
use crate::help::MEMBERS_HELP;
use serf_rpc::{Member as RpcMember, MembersFilteredRequest};
use std::net::IpAddr;

/// Go's `net.TCPAddr{IP, Port}.String()`: `ip:port`, `[v6]:port`, `:port` without an IP,
/// `?<hex>:port` for an address of odd length.
fn addr_text(m: &RpcMember) -> String {
    let host = match m.ip() {
        Some(IpAddr::V4(ip)) => ip.to_string(),
        Some(IpAddr::V6(ip)) => format!("[{ip}]"),
        None if m.addr.is_empty() => String::new(),
        None => {
            let hex: String = m.addr.iter().map(|b| format!("{b:02x}")).collect();
            format!("?{hex}")
        }
    };
    format!("{host}:{}", m.port)
}

/// The JSON `serf members -format=json` prints (`json.MarshalIndent`, two spaces).
pub(super) fn members_json(members: &[RpcMember]) -> String {
    if members.is_empty() {
        return "{\n  \"members\": null\n}".to_string();
    }
    let items: Vec<String> = members
        .iter()
        .map(|m| {
            let tags: Vec<(Vec<u8>, Vec<u8>)> = m
                .tags
                .iter()
                .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
                .collect();
            format!(
                "    {{\n      \"name\": {},\n      \"addr\": {},\n      \"port\": {},\n      \"tags\": {},\n      \"status\": {},\n      \"protocol\": {{\n        \"max\": {},\n        \"min\": {},\n        \"version\": {}\n      }}\n    }}",
                json_string(m.name.as_bytes()),
                json_string(addr_text(m).as_bytes()),
                m.port,
                json_str_map(&tags, 3),
                json_string(m.status.as_bytes()),
                m.delegate[1],
                m.delegate[0],
                m.delegate[2]
            )
        })
        .collect();
    format!("{{\n  \"members\": [\n{}\n  ]\n}}", items.join(",\n"))
}

/// The text `serf members` prints (before trimming).
fn members_text(members: &[RpcMember], detailed: bool) -> String {
    let lines: Vec<String> = members
        .iter()
        .map(|m| {
            let tags: Vec<String> = m.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let mut line = format!(
                "{}|{}|{}|{}",
                m.name,
                addr_text(m),
                m.status,
                tags.join(",")
            );
            if detailed {
                line.push_str(&format!(
                    "|Protocol Version: {}|Available Protocol Range: [{}, {}]",
                    m.delegate[2], m.delegate[0], m.delegate[1]
                ));
            }
            line
        })
        .collect();
    columnize_lines(&lines)
}

/// `serf members`.
pub(super) async fn members(args: &[String]) -> i32 {
    let fs = with_rpc(FlagSet::new())
        .add("detailed", Kind::Bool)
        .add("role", Kind::Value)
        .add("status", Kind::Value)
        .add("format", Kind::Value)
        .add("tag", Kind::Multi)
        .add("name", Kind::Value);
    let Some(p) = parse_flags(fs, args, MEMBERS_HELP) else {
        return 1;
    };
    let mut tags = p.all("tag");
    if let Some(role) = p.get("role").filter(|r| !r.is_empty()) {
        out("Deprecation warning: 'Role' has been replaced with 'Tags'");
        tags.push(format!("role={role}"));
    }
    let tags = match unmarshal_tags(&tags) {
        Ok(t) => t,
        Err(e) => {
            out(&format!("Error: {e}"));
            return 1;
        }
    };
    let Some(mut c) = connect(&p).await else {
        return 1;
    };
    let list = match c
        .members_filtered(&MembersFilteredRequest {
            name: p.get("name").unwrap_or("").to_string(),
            status: p.get("status").unwrap_or("").to_string(),
            tags,
        })
        .await
    {
        Ok(l) => l,
        Err(e) => {
            out(&format!("Error retrieving members: {e}"));
            c.close().await;
            return 1;
        }
    };
    c.close().await;
    match p.get("format").unwrap_or("text") {
        "json" => out(&members_json(&list)),
        "text" => out(members_text(&list, p.bool("detailed")).trim()),
        other => {
            out(&format!(
                "Encoding error: Invalid output format \"{other}\""
            ));
            return 1;
        }
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(name: &str, tags: &[(&str, &str)]) -> RpcMember {
        RpcMember {
            name: name.into(),
            addr: vec![127, 0, 0, 1],
            port: 17946,
            tags: tags
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            status: "alive".into(),
            protocol: [1, 5, 2],
            delegate: [2, 5, 5],
        }
    }

    #[test]
    fn json_like_go() {
        let m = member("alpha", &[("role", "web"), ("dc", "east")]);
        assert_eq!(
            members_json(&[m]),
            "{\n  \"members\": [\n    {\n      \"name\": \"alpha\",\n      \"addr\": \"127.0.0.1:17946\",\n      \"port\": 17946,\n      \"tags\": {\n        \"dc\": \"east\",\n        \"role\": \"web\"\n      },\n      \"status\": \"alive\",\n      \"protocol\": {\n        \"max\": 5,\n        \"min\": 2,\n        \"version\": 5\n      }\n    }\n  ]\n}"
        );
        assert_eq!(members_json(&[]), "{\n  \"members\": null\n}");
    }

    #[test]
    fn text_like_go() {
        let a = member("alpha", &[("role", "web")]);
        let mut b = member("tmpnode", &[]);
        b.status = "left".into();
        assert_eq!(
            members_text(&[a.clone(), b], true),
            "alpha    127.0.0.1:17946  alive  role=web  Protocol Version: 5  Available Protocol Range: [2, 5]\ntmpnode  127.0.0.1:17946  left             Protocol Version: 5  Available Protocol Range: [2, 5]"
        );
        let mut odd = a;
        odd.addr = Vec::new();
        assert_eq!(addr_text(&odd), ":17946");
        odd.addr = vec![1, 2];
        assert_eq!(addr_text(&odd), "?0102:17946");
    }
}
