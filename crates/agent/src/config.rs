//! Agent configuration (docs/agent-cli.md sections 3.1-3.2): JSON config files and
//! `-config-dir`, merged in Go's order (defaults <- files in command-line order <- flags).

use crate::flags::{FlagSet, Kind, Parsed};
use serde_json::Value;
use std::path::Path;
use std::time::Duration;

/// Every agent setting. `None` = not set by this source.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Config {
    pub node_name: Option<String>,
    pub role: Option<String>,
    pub disable_coordinates: bool,
    pub tags: Vec<(String, String)>,
    pub tags_file: Option<String>,
    pub bind: Option<String>,
    pub interface: Option<String>,
    pub advertise: Option<String>,
    pub encrypt_key: Option<String>,
    pub keyring_file: Option<String>,
    pub log_level: Option<String>,
    pub rpc_addr: Option<String>,
    pub rpc_auth: Option<String>,
    pub protocol: Option<i64>,
    pub replay_on_join: bool,
    pub query_response_size_limit: Option<i64>,
    pub query_size_limit: Option<i64>,
    pub user_event_size_limit: Option<i64>,
    pub start_join: Vec<String>,
    pub event_handlers: Vec<String>,
    pub profile: Option<String>,
    pub snapshot_path: Option<String>,
    pub leave_on_terminate: bool,
    pub skip_leave_on_interrupt: bool,
    pub discover: Option<String>,
    pub reconnect_interval: Option<Duration>,
    pub reconnect_timeout: Option<Duration>,
    pub tombstone_timeout: Option<Duration>,
    pub disable_name_resolution: bool,
    pub enable_syslog: bool,
    /// Log lines as JSON objects (hclog's field names); not in Go 0.9.4.
    pub log_json: bool,
    /// Where the read-only HTTP API listens; not in Go 0.9.4.
    pub http_addr: Option<String>,
    pub syslog_facility: Option<String>,
    pub retry_join: Vec<String>,
    pub retry_max_attempts: Option<i64>,
    pub retry_interval: Option<Duration>,
    pub rejoin_after_leave: bool,
    pub enable_compression: Option<bool>,
    pub statsite_addr: Option<String>,
    pub statsd_addr: Option<String>,
    pub broadcast_timeout: Option<Duration>,
}

/// Go's `time.ParseDuration`.
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    let err = || format!("time: invalid duration \"{s}\"");
    let mut rest = s.trim();
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    if let Some(r) = rest.strip_prefix('+') {
        rest = r;
    }
    if rest.starts_with('-') || rest.is_empty() {
        return Err(err());
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_end == 0 {
            return Err(err());
        }
        let n: f64 = rest[..num_end].parse().map_err(|_| err())?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let mult = match &rest[..unit_end] {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "" => return Err(format!("time: missing unit in duration \"{s}\"")),
            u => return Err(format!("time: unknown unit \"{u}\" in duration \"{s}\"")),
        };
        total += n * mult;
        rest = &rest[unit_end..];
    }
    // Go's durations are int64 nanoseconds: a longer one (about 292 years) is invalid.
    // Checked before converting, which would panic on an overflow.
    if !total.is_finite() || total * 1e9 >= i64::MAX as f64 {
        return Err(err());
    }
    Duration::try_from_secs_f64(total).map_err(|_| err())
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "<nil>",
        Value::Bool(_) => "bool",
        Value::Number(_) => "float64",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        other => other.to_string(),
    }
}

/// Parses one JSON config document; errors in Go's mapstructure wording.
pub(crate) fn parse_json(text: &str) -> Result<Config, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let map = match v {
        Value::Object(map) => map,
        // `null` decodes to an unchanged (empty) config in Go.
        Value::Null => return Ok(Config::default()),
        other => {
            let kind = match other {
                Value::Array(_) => "slice",
                ref v => type_name(v),
            };
            return Err(format!("'' expected a map, got '{kind}'"));
        }
    };
    let mut c = Config::default();
    let mut errors = Vec::new();
    let mut invalid = Vec::new();
    let unconvertible = |k: &str, want: &str, v: &Value| {
        format!(
            "'{k}' expected type '{want}', got unconvertible type '{}', value: '{}'",
            type_name(v),
            value_text(v)
        )
    };
    for (k, v) in &map {
        let key = k.as_str();
        let s = |errors: &mut Vec<String>| -> Option<String> {
            match v {
                Value::String(s) => Some(s.clone()),
                _ => {
                    errors.push(unconvertible(key, "string", v));
                    None
                }
            }
        };
        let b = |errors: &mut Vec<String>| -> bool {
            match v {
                Value::Bool(b) => *b,
                _ => {
                    errors.push(unconvertible(key, "bool", v));
                    false
                }
            }
        };
        let i = |errors: &mut Vec<String>| -> Option<i64> {
            match v.as_f64() {
                Some(f) if f.fract() == 0.0 => Some(f as i64),
                _ => {
                    errors.push(unconvertible(key, "int", v));
                    None
                }
            }
        };
        let d = |errors: &mut Vec<String>| -> Option<Duration> {
            match v {
                Value::String(s) => match parse_duration(s) {
                    Ok(d) => Some(d),
                    Err(e) => {
                        errors.push(format!("'{key}' {e}"));
                        None
                    }
                },
                Value::Number(n) => n.as_u64().map(Duration::from_nanos),
                _ => {
                    errors.push(unconvertible(key, "time.Duration", v));
                    None
                }
            }
        };
        let list = |errors: &mut Vec<String>| -> Vec<String> {
            match v {
                Value::Array(a) => a
                    .iter()
                    .filter_map(|x| match x {
                        Value::String(s) => Some(s.clone()),
                        other => {
                            errors.push(unconvertible(key, "string", other));
                            None
                        }
                    })
                    .collect(),
                _ => {
                    errors.push(unconvertible(key, "[]string", v));
                    Vec::new()
                }
            }
        };
        match key {
            "node_name" => c.node_name = s(&mut errors),
            "role" => c.role = s(&mut errors),
            "disable_coordinates" => c.disable_coordinates = b(&mut errors),
            "tags" => match v {
                Value::Object(m) => {
                    for (tk, tv) in m {
                        match tv {
                            Value::String(sv) => c.tags.push((tk.clone(), sv.clone())),
                            other => {
                                errors.push(unconvertible(&format!("tags[{tk}]"), "string", other))
                            }
                        }
                    }
                }
                _ => errors.push(unconvertible(key, "map[string]string", v)),
            },
            "tags_file" => c.tags_file = s(&mut errors),
            "bind" => c.bind = s(&mut errors),
            "interface" => c.interface = s(&mut errors),
            "advertise" => c.advertise = s(&mut errors),
            "encrypt_key" => c.encrypt_key = s(&mut errors),
            "keyring_file" => c.keyring_file = s(&mut errors),
            "log_level" => c.log_level = s(&mut errors),
            "rpc_addr" => c.rpc_addr = s(&mut errors),
            "rpc_auth" => c.rpc_auth = s(&mut errors),
            "protocol" => c.protocol = i(&mut errors),
            "replay_on_join" => c.replay_on_join = b(&mut errors),
            "query_response_size_limit" => c.query_response_size_limit = i(&mut errors),
            "query_size_limit" => c.query_size_limit = i(&mut errors),
            "user_event_size_limit" => c.user_event_size_limit = i(&mut errors),
            "start_join" => c.start_join = list(&mut errors),
            "event_handlers" => c.event_handlers = list(&mut errors),
            "profile" => c.profile = s(&mut errors),
            "snapshot_path" => c.snapshot_path = s(&mut errors),
            "leave_on_terminate" => c.leave_on_terminate = b(&mut errors),
            "skip_leave_on_interrupt" => c.skip_leave_on_interrupt = b(&mut errors),
            "discover" => c.discover = s(&mut errors),
            "reconnect_interval" => c.reconnect_interval = d(&mut errors),
            "reconnect_timeout" => c.reconnect_timeout = d(&mut errors),
            "tombstone_timeout" => c.tombstone_timeout = d(&mut errors),
            "disable_name_resolution" => c.disable_name_resolution = b(&mut errors),
            "enable_syslog" => c.enable_syslog = b(&mut errors),
            "log_json" => c.log_json = b(&mut errors),
            "http_addr" => c.http_addr = s(&mut errors),
            "syslog_facility" => c.syslog_facility = s(&mut errors),
            "retry_join" => c.retry_join = list(&mut errors),
            "retry_max_attempts" => c.retry_max_attempts = i(&mut errors),
            "retry_interval" => c.retry_interval = d(&mut errors),
            "rejoin_after_leave" => c.rejoin_after_leave = b(&mut errors),
            "enable_compression" => c.enable_compression = Some(b(&mut errors)),
            "statsite_addr" => c.statsite_addr = s(&mut errors),
            "statsd_addr" => c.statsd_addr = s(&mut errors),
            "broadcast_timeout" => c.broadcast_timeout = d(&mut errors),
            _ => invalid.push(key.to_string()),
        }
    }
    if !invalid.is_empty() {
        invalid.sort();
        errors.insert(0, format!("'' has invalid keys: {}", invalid.join(", ")));
    }
    if !errors.is_empty() {
        let body: Vec<String> = errors.iter().map(|e| format!("* {e}")).collect();
        return Err(format!(
            "{} error(s) decoding:\n\n{}",
            errors.len(),
            body.join("\n")
        ));
    }
    Ok(c)
}

/// Go's `MergeConfig`: strings/numbers/durations override when set, booleans only turn on,
/// tags merge by key, lists concatenate.
pub(crate) fn merge(a: &mut Config, b: Config) {
    // Go's MergeConfig copies a value only when it is set: a string that is not empty,
    // a number or duration that is not zero.
    macro_rules! over_str {
        ($($f:ident),*) => { $( if b.$f.as_deref().is_some_and(|v| !v.is_empty()) { a.$f = b.$f; } )* };
    }
    over_str!(
        node_name,
        role,
        tags_file,
        bind,
        interface,
        advertise,
        encrypt_key,
        keyring_file,
        log_level,
        rpc_addr,
        rpc_auth,
        profile,
        snapshot_path,
        discover,
        syslog_facility,
        statsite_addr,
        statsd_addr,
        http_addr
    );
    macro_rules! over_num {
        ($($f:ident),*) => { $( if b.$f.is_some_and(|v| v != 0) { a.$f = b.$f; } )* };
    }
    over_num!(
        query_response_size_limit,
        query_size_limit,
        user_event_size_limit,
        retry_max_attempts
    );
    if b.protocol.is_some_and(|v| v > 0) {
        a.protocol = b.protocol;
    }
    macro_rules! over_dur {
        ($($f:ident),*) => { $( if b.$f.is_some_and(|v| !v.is_zero()) { a.$f = b.$f; } )* };
    }
    over_dur!(
        reconnect_interval,
        reconnect_timeout,
        tombstone_timeout,
        retry_interval,
        broadcast_timeout
    );
    macro_rules! on {
        ($($f:ident),*) => { $( a.$f |= b.$f; )* };
    }
    on!(
        disable_coordinates,
        replay_on_join,
        leave_on_terminate,
        skip_leave_on_interrupt,
        disable_name_resolution,
        enable_syslog,
        log_json,
        rejoin_after_leave
    );
    for (k, v) in b.tags {
        match a.tags.iter_mut().find(|(ak, _)| *ak == k) {
            Some(t) => t.1 = v,
            None => a.tags.push((k, v)),
        }
    }
    a.start_join.extend(b.start_join);
    a.event_handlers.extend(b.event_handlers);
    a.retry_join.extend(b.retry_join);
    a.enable_compression = b.enable_compression.or(a.enable_compression);
}

/// Reads a config file, or every `*.json` of a directory in lexical order.
pub(crate) fn read_path(path: &str) -> Result<Config, String> {
    let p = Path::new(path);
    let meta = std::fs::metadata(p)
        .map_err(|e| format!("Error reading '{path}': {}", open_error(path, &e)))?;
    if !meta.is_dir() {
        let text = std::fs::read_to_string(p)
            .map_err(|e| format!("Error reading '{path}': {}", open_error(path, &e)))?;
        return parse_json(&text).map_err(|e| format!("Error decoding '{path}': {e}"));
    }
    let mut files: Vec<_> = std::fs::read_dir(p)
        .map_err(|e| format!("Error reading '{path}': {e}"))?
        .flatten()
        .map(|e| e.path())
        .filter(|f| f.extension().is_some_and(|x| x == "json") && f.is_file())
        .collect();
    files.sort();
    let mut out = Config::default();
    for f in files {
        let fs = f.display().to_string();
        let text = std::fs::read_to_string(&f).map_err(|e| format!("Error reading '{fs}': {e}"))?;
        let c = parse_json(&text).map_err(|e| format!("Error decoding '{fs}': {e}"))?;
        merge(&mut out, c);
    }
    Ok(out)
}

fn open_error(path: &str, e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => format!("open {path}: no such file or directory"),
        std::io::ErrorKind::PermissionDenied => format!("open {path}: permission denied"),
        _ => format!("open {path}: {e}"),
    }
}

/// The agent's flags.
pub(crate) fn flagset() -> FlagSet {
    FlagSet::new()
        .add("advertise", Kind::Value)
        .add("bind", Kind::Value)
        .add("broadcast-timeout", Kind::Value)
        .add("config-dir", Kind::Multi)
        .add("config-file", Kind::Multi)
        .add("disable-compression", Kind::Bool)
        .add("discover", Kind::Value)
        .add("encrypt", Kind::Value)
        .add("event-handler", Kind::Multi)
        .add("iface", Kind::Value)
        .add("join", Kind::Multi)
        .add("keyring-file", Kind::Value)
        .add("log-level", Kind::Value)
        .add("node", Kind::Value)
        .add("profile", Kind::Value)
        .add("protocol", Kind::Value)
        .add("rejoin", Kind::Bool)
        .add("replay", Kind::Bool)
        .add("retry-interval", Kind::Value)
        .add("retry-join", Kind::Multi)
        .add("retry-max", Kind::Value)
        .add("role", Kind::Value)
        .add("rpc-addr", Kind::Value)
        .add("snapshot", Kind::Value)
        .add("syslog", Kind::Bool)
        .add("log-json", Kind::Bool)
        .add("http-addr", Kind::Value)
        .add("tag", Kind::Multi)
        .add("tags-file", Kind::Value)
}

/// The config given by flags. Errors: (text, show usage).
pub(crate) fn from_flags(p: &Parsed) -> Result<Config, (String, bool)> {
    let s = |n: &str| p.get(n).map(str::to_string);
    let dur = |n: &str| -> Result<Option<Duration>, (String, bool)> {
        match p.get(n) {
            None => Ok(None),
            // Go reads these flags as strings and parses them after the tags.
            Some("") => Ok(None),
            Some(v) => parse_duration(v)
                .map(Some)
                .map_err(|e| (format!("Error: {e}"), false)),
        }
    };
    let int = |n: &str| -> Result<Option<i64>, (String, bool)> {
        match p.get(n) {
            None => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|_| {
                (
                    format!("invalid value \"{v}\" for flag -{n}: parse error"),
                    true,
                )
            }),
        }
    };
    let mut tags = Vec::new();
    for t in p.all("tag") {
        let Some((k, v)) = t.split_once('=').filter(|(k, _)| !k.is_empty()) else {
            return Err((format!("Error: Invalid tag: '{t}'"), false));
        };
        match tags
            .iter_mut()
            .find(|(tk, _): &&mut (String, String)| tk == k)
        {
            Some(x) => x.1 = v.to_string(),
            None => tags.push((k.to_string(), v.to_string())),
        }
    }
    Ok(Config {
        node_name: s("node"),
        role: s("role"),
        tags,
        tags_file: s("tags-file"),
        bind: s("bind"),
        interface: s("iface"),
        advertise: s("advertise"),
        encrypt_key: s("encrypt"),
        keyring_file: s("keyring-file"),
        log_level: s("log-level"),
        rpc_addr: s("rpc-addr"),
        protocol: int("protocol")?,
        replay_on_join: p.bool("replay"),
        start_join: p.all("join"),
        event_handlers: p.all("event-handler"),
        profile: s("profile"),
        snapshot_path: s("snapshot"),
        discover: s("discover"),
        enable_syslog: p.bool("syslog"),
        log_json: p.bool("log-json"),
        http_addr: s("http-addr"),
        retry_join: p.all("retry-join"),
        retry_max_attempts: int("retry-max")?,
        retry_interval: dur("retry-interval")?,
        rejoin_after_leave: p.bool("rejoin"),
        enable_compression: Some(!p.bool("disable-compression")),
        broadcast_timeout: dur("broadcast-timeout")?,
        ..Config::default()
    })
}

/// Defaults ← config files/dirs in command-line order ← flags.
pub(crate) fn load(args: &[String]) -> Result<Config, (String, bool)> {
    let p = flagset().parse(args).map_err(|e| (e, true))?;
    let flags = from_flags(&p)?;
    let mut c = Config::default();
    // Files and directories in the order given (Go keeps -config-file and -config-dir in
    // one list, in command-line order).
    for a in config_paths(args) {
        let fc = read_path(&a).map_err(|e| (e, false))?;
        merge(&mut c, fc);
    }
    merge(&mut c, flags);
    Ok(c)
}

pub(crate) fn config_paths(args: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let a = args[i].trim_start_matches('-');
        for name in ["config-file", "config-dir"] {
            if a == name {
                if let Some(v) = args.get(i + 1) {
                    out.push(v.clone());
                    i += 1;
                }
            } else if let Some(v) = a.strip_prefix(&format!("{name}=")) {
                out.push(v.to_string());
            }
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("abc").is_err());
        // Regression (fuzz target `agent_config`): an overflowing duration panicked in
        // `Duration::from_secs_f64`; Go refuses anything beyond int64 nanoseconds.
        assert_eq!(
            parse_duration("77777777777777777777777777777777h"),
            Err("time: invalid duration \"77777777777777777777777777777777h\"".to_string())
        );
        assert!(parse_duration("2562047h").is_ok());
        assert!(parse_duration("2562048h").is_err());
        assert!(parse_duration(&format!("{}s", "9".repeat(400))).is_err());
    }

    #[test]
    fn go_error_texts() {
        assert_eq!(
            parse_json(r#"{"bogus_key": 1}"#).err().as_deref(),
            Some("1 error(s) decoding:\n\n* '' has invalid keys: bogus_key")
        );
        assert_eq!(
            parse_json(r#"{"node_name": 5}"#).err().as_deref(),
            Some("1 error(s) decoding:\n\n* 'node_name' expected type 'string', got unconvertible type 'float64', value: '5'")
        );
    }

    #[test]
    fn merge_rules() {
        let mut a = parse_json(
            r#"{"node_name":"a","tags":{"x":"1"},"leave_on_terminate":true,"start_join":["j1"]}"#,
        )
        .expect("a");
        let b = parse_json(r#"{"tags":{"y":"2"},"leave_on_terminate":false,"start_join":["j2"],"reconnect_timeout":"1h"}"#)
            .expect("b");
        merge(&mut a, b);
        assert_eq!(a.node_name.as_deref(), Some("a"));
        assert!(a.leave_on_terminate);
        assert_eq!(a.tags.len(), 2);
        assert_eq!(a.start_join, vec!["j1", "j2"]);
        assert_eq!(a.reconnect_timeout, Some(Duration::from_secs(3600)));
    }
}
