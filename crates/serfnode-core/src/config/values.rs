//! Typed values out of YAML nodes and environment strings, each error naming the key
//! (`$SERF_PORT`, `serfnode.serf_port`, `children[1].b.image`).

use super::*;

pub(super) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}

/// A mapping with string keys, in document order; null counts as empty.
pub(super) fn as_mapping_or_empty<'a>(
    v: &'a Value,
    key: &str,
) -> Result<Vec<(String, &'a Value)>, ConfigError> {
    match v {
        Value::Null => Ok(Vec::new()),
        Value::Mapping(m) => {
            let mut out = Vec::with_capacity(m.len());
            for (k, val) in m {
                match k {
                    Value::String(s) => out.push((s.clone(), val)),
                    other => {
                        return Err(ConfigError::WrongType {
                            key: format!("{key} (a key)"),
                            expected: "a string",
                            found: type_name(other),
                        })
                    }
                }
            }
            Ok(out)
        }
        other => Err(ConfigError::WrongType {
            key: key.to_string(),
            expected: "a mapping",
            found: type_name(other),
        }),
    }
}

/// A scalar as text: strings as they are, numbers and booleans spelled out.
pub(super) fn scalar(v: &Value, key: &str) -> Result<String, ConfigError> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        other => Err(ConfigError::WrongType {
            key: key.to_string(),
            expected: "a string, number or boolean",
            found: type_name(other),
        }),
    }
}

pub(super) fn non_empty_string(v: &Value, key: &str) -> Result<String, ConfigError> {
    let s = scalar(v, key)?;
    if s.is_empty() {
        return Err(ConfigError::InvalidValue {
            key: key.to_string(),
            value: s,
            reason: "must not be empty".to_string(),
        });
    }
    Ok(s)
}

pub(super) fn boolean(v: &Value, key: &str) -> Result<bool, ConfigError> {
    match v {
        Value::Bool(b) => Ok(*b),
        other => Err(ConfigError::WrongType {
            key: key.to_string(),
            expected: "a boolean (true or false)",
            found: type_name(other),
        }),
    }
}

pub(super) fn string_list(v: &Value, key: &str) -> Result<Vec<String>, ConfigError> {
    match v {
        Value::Null => Ok(Vec::new()),
        Value::Sequence(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| scalar(item, &format!("{key}[{i}]")))
            .collect(),
        other => Err(ConfigError::WrongType {
            key: key.to_string(),
            expected: "a list",
            found: type_name(other),
        }),
    }
}

/// A command or entrypoint: a string (split like a shell would, without expansion) or a
/// list of arguments.
pub(super) fn words(v: &Value, key: &str) -> Result<Vec<String>, ConfigError> {
    match v {
        Value::Sequence(_) => string_list(v, key),
        Value::String(s) => split_words(s).map_err(|reason| ConfigError::InvalidValue {
            key: key.to_string(),
            value: s.clone(),
            reason,
        }),
        other => Err(ConfigError::WrongType {
            key: key.to_string(),
            expected: "a string or a list of strings",
            found: type_name(other),
        }),
    }
}

/// `environment`: a mapping, or a list of `KEY=VALUE` strings.
pub(super) fn environment(v: &Value, key: &str) -> Result<BTreeMap<String, String>, ConfigError> {
    let mut out = BTreeMap::new();
    match v {
        Value::Null => {}
        Value::Mapping(_) => {
            for (k, val) in as_mapping_or_empty(v, key)? {
                let path = format!("{key}.{k}");
                check_env_name(&k, &path)?;
                let val = scalar(val, &path)?;
                out.insert(k, val);
            }
        }
        Value::Sequence(_) => {
            for (i, item) in string_list(v, key)?.into_iter().enumerate() {
                let path = format!("{key}[{i}]");
                match item.split_once('=') {
                    Some((k, val)) => {
                        check_env_name(k, &path)?;
                        out.insert(k.to_string(), val.to_string());
                    }
                    None => {
                        return Err(ConfigError::InvalidValue {
                            key: path,
                            value: item,
                            reason: "expected KEY=VALUE".to_string(),
                        })
                    }
                }
            }
        }
        other => {
            return Err(ConfigError::WrongType {
                key: key.to_string(),
                expected: "a mapping or a list of KEY=VALUE strings",
                found: type_name(other),
            })
        }
    }
    Ok(out)
}

pub(super) fn check_env_name(name: &str, key: &str) -> Result<(), ConfigError> {
    if name.is_empty() || name.contains('=') || name.chars().any(char::is_control) {
        return Err(ConfigError::InvalidValue {
            key: key.to_string(),
            value: name.to_string(),
            reason: "not a valid environment variable name".to_string(),
        });
    }
    Ok(())
}

/// Docker's container name rule: `[a-zA-Z0-9][a-zA-Z0-9_.-]*`.
pub(super) fn check_container_name(name: &str, key: &str) -> Result<(), ConfigError> {
    let mut chars = name.chars();
    let ok = match chars.next() {
        Some(first) => {
            first.is_ascii_alphanumeric()
                && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        }
        None => false,
    };
    if ok {
        Ok(())
    } else {
        Err(ConfigError::InvalidValue {
            key: key.to_string(),
            value: name.to_string(),
            reason: "a container name must match [a-zA-Z0-9][a-zA-Z0-9_.-]*".to_string(),
        })
    }
}

pub(super) fn parse_ip(text: &str, key: &str) -> Result<IpAddr, ConfigError> {
    text.trim()
        .parse::<IpAddr>()
        .map_err(|_| ConfigError::InvalidValue {
            key: key.to_string(),
            value: text.to_string(),
            reason: "not an IP address".to_string(),
        })
}

pub(super) fn ip_from_yaml(v: &Value, key: &str) -> Result<IpAddr, ConfigError> {
    match v {
        Value::String(s) => parse_ip(s, key),
        other => Err(ConfigError::WrongType {
            key: key.to_string(),
            expected: "an IP address string",
            found: type_name(other),
        }),
    }
}

pub(super) fn parse_port(text: &str, key: &str, zero_ok: bool) -> Result<u16, ConfigError> {
    let invalid = |reason: &str| ConfigError::InvalidValue {
        key: key.to_string(),
        value: text.to_string(),
        reason: reason.to_string(),
    };
    let t = text.trim();
    if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid("not a port number (0-65535)"));
    }
    let port = t
        .parse::<u16>()
        .map_err(|_| invalid("not a port number (0-65535)"))?;
    if port == 0 && !zero_ok {
        return Err(invalid("port 0 is not allowed here"));
    }
    Ok(port)
}

pub(super) fn port_from_yaml(v: &Value, key: &str, zero_ok: bool) -> Result<u16, ConfigError> {
    match v {
        Value::Number(_) | Value::String(_) => parse_port(&scalar(v, key)?, key, zero_ok),
        other => Err(ConfigError::WrongType {
            key: key.to_string(),
            expected: "a port number",
            found: type_name(other),
        }),
    }
}

pub(super) fn split_peers(text: &str, key: &str) -> Result<Vec<String>, ConfigError> {
    let mut out = Vec::new();
    for part in text.split(',') {
        let p = part.trim();
        if p.is_empty() {
            continue;
        }
        if p.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(ConfigError::InvalidValue {
                key: key.to_string(),
                value: text.to_string(),
                reason: format!("{p:?} is not an address (host or host:port)"),
            });
        }
        out.push(p.to_string());
    }
    Ok(out)
}

pub(super) fn peers_from_yaml(v: &Value, key: &str) -> Result<Vec<String>, ConfigError> {
    match v {
        Value::Null => Ok(Vec::new()),
        Value::String(s) => split_peers(s, key),
        Value::Sequence(_) => {
            let mut out = Vec::new();
            for (i, item) in string_list(v, key)?.into_iter().enumerate() {
                out.extend(split_peers(&item, &format!("{key}[{i}]"))?);
            }
            Ok(out)
        }
        other => Err(ConfigError::WrongType {
            key: key.to_string(),
            expected: "an address string or a list of them",
            found: type_name(other),
        }),
    }
}

/// `APP_PORTS` and friends: a YAML list inside an environment variable.
pub(super) fn env_list(text: Option<&str>, key: &str) -> Result<Vec<String>, ConfigError> {
    let Some(text) = text else {
        return Ok(Vec::new());
    };
    let value = serde_norway::from_str::<Value>(text).map_err(|e| ConfigError::InvalidValue {
        key: key.to_string(),
        value: text.to_string(),
        reason: format!("not a YAML list like [\"a\", \"b\"]: {e}"),
    })?;
    match value {
        Value::Sequence(_) | Value::Null => string_list(&value, key),
        other => Err(ConfigError::WrongType {
            key: key.to_string(),
            expected: "a YAML list like [\"a\", \"b\"]",
            found: type_name(&other),
        }),
    }
}

pub(super) fn parse_encrypt_key(text: &str) -> Result<EncryptKey, ConfigError> {
    let invalid = |reason: String| ConfigError::InvalidValue {
        key: "$SERF_ENCRYPT_KEY".to_string(),
        // Never echo a secret, not even a malformed one.
        value: "<redacted>".to_string(),
        reason,
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|e| invalid(format!("not base64: {e}")))?;
    if !matches!(bytes.len(), 16 | 24 | 32) {
        return Err(invalid(format!(
            "the key is {} bytes; it must be 16, 24 or 32",
            bytes.len()
        )));
    }
    Ok(EncryptKey {
        text: Secret(text.trim().to_string()),
        bytes,
    })
}

/// Splits a command line into words like a POSIX shell, without any expansion:
/// whitespace separates words, single quotes keep everything literally, double quotes
/// keep everything but `\"` and `\\`, a backslash outside quotes escapes the next
/// character. An unterminated quote or a trailing backslash is an error.
pub(crate) fn split_words(text: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(x) => cur.push(x),
                        None => return Err("unterminated single quote".to_string()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(x @ ('"' | '\\')) => cur.push(x),
                            Some(x) => {
                                cur.push('\\');
                                cur.push(x);
                            }
                            None => return Err("unterminated double quote".to_string()),
                        },
                        Some(x) => cur.push(x),
                        None => return Err("unterminated double quote".to_string()),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some(x) => cur.push(x),
                    None => return Err("trailing backslash".to_string()),
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}
