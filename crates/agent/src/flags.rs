//! Go `flag` package syntax: `-name=value`, `-name value`, `--name=value`; boolean flags as
//! `-name` or `-name=true|false`; parsing stops at the first non-flag argument or `--`.

use std::collections::HashMap;

/// How a flag takes its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Takes a value; the last one wins.
    Value,
    /// Takes a value; repeatable.
    Multi,
    /// Boolean.
    Bool,
    /// A Go `time.Duration` (`-timeout=2s`); checked while parsing like Go's `DurationVar`.
    Duration,
    /// A Go `int` (`strconv.ParseInt(s, 0, 64)`); checked while parsing like `IntVar`.
    Int,
}

/// A set of flags.
#[derive(Debug, Default)]
pub(crate) struct FlagSet {
    defs: Vec<(&'static str, Kind)>,
}

/// Parsed flags.
#[derive(Debug, Default)]
pub(crate) struct Parsed {
    values: HashMap<String, Vec<String>>,
    /// Arguments after the flags.
    pub args: Vec<String>,
}

impl FlagSet {
    /// An empty set.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Adds a flag.
    pub(crate) fn add(mut self, name: &'static str, kind: Kind) -> Self {
        self.defs.push((name, kind));
        self
    }

    fn kind(&self, name: &str) -> Option<Kind> {
        self.defs.iter().find(|(n, _)| *n == name).map(|(_, k)| *k)
    }

    /// Parses; errors use Go's wording.
    pub(crate) fn parse(&self, args: &[String]) -> Result<Parsed, String> {
        let mut p = Parsed::default();
        let mut i = 0;
        while i < args.len() {
            let a = &args[i];
            if a == "--" {
                p.args.extend_from_slice(&args[i + 1..]);
                return Ok(p);
            }
            if !a.starts_with('-') || a == "-" {
                p.args.extend_from_slice(&args[i..]);
                return Ok(p);
            }
            let body = a.trim_start_matches('-');
            if a.starts_with("---") || body.is_empty() || body.starts_with('=') {
                return Err(format!("bad flag syntax: {a}"));
            }
            let (name, inline) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (body, None),
            };
            let kind = self
                .kind(name)
                .ok_or_else(|| format!("flag provided but not defined: -{name}"))?;
            let value = match (kind, inline) {
                (Kind::Bool, None) => "true".to_string(),
                (Kind::Bool, Some(v)) => match v.as_str() {
                    "1" | "t" | "T" | "true" | "TRUE" | "True" => "true".to_string(),
                    "0" | "f" | "F" | "false" | "FALSE" | "False" => "false".to_string(),
                    _ => {
                        return Err(format!(
                            "invalid boolean value {} for -{name}: parse error",
                            crate::gofmt::quote_str(&v)
                        ))
                    }
                },
                (_, Some(v)) => v,
                (_, None) => {
                    i += 1;
                    args.get(i)
                        .cloned()
                        .ok_or_else(|| format!("flag needs an argument: -{name}"))?
                }
            };
            let invalid = match kind {
                Kind::Duration if crate::gofmt::parse_duration(&value).is_none() => {
                    Some("parse error")
                }
                Kind::Int => match crate::gofmt::parse_int(&value) {
                    Ok(_) => None,
                    Err(crate::gofmt::IntError::Syntax) => Some("parse error"),
                    Err(crate::gofmt::IntError::Range) => Some("value out of range"),
                },
                _ => None,
            };
            if let Some(why) = invalid {
                return Err(format!(
                    "invalid value {} for flag -{name}: {why}",
                    crate::gofmt::quote_str(&value)
                ));
            }
            p.values.entry(name.to_string()).or_default().push(value);
            i += 1;
        }
        Ok(p)
    }
}

impl Parsed {
    /// Last value of a flag.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.values
            .get(name)
            .and_then(|v| v.last())
            .map(String::as_str)
    }

    /// Every value of a repeatable flag.
    pub(crate) fn all(&self, name: &str) -> Vec<String> {
        self.values.get(name).cloned().unwrap_or_default()
    }

    /// A boolean flag.
    pub(crate) fn bool(&self, name: &str) -> bool {
        self.get(name) == Some("true")
    }

    /// A boolean flag with a default for when it was not given.
    pub(crate) fn bool_or(&self, name: &str, default: bool) -> bool {
        self.get(name).map_or(default, |v| v == "true")
    }

    /// A [`Kind::Duration`] flag in nanoseconds (0 when absent).
    pub(crate) fn duration_nanos(&self, name: &str) -> i64 {
        self.get(name)
            .and_then(crate::gofmt::parse_duration)
            .unwrap_or(0)
    }

    /// A [`Kind::Int`] flag (0 when absent).
    pub(crate) fn int(&self, name: &str) -> i64 {
        self.get(name)
            .and_then(|v| crate::gofmt::parse_int(v).ok())
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn go_syntax() {
        let fs = FlagSet::new()
            .add("node", Kind::Value)
            .add("tag", Kind::Multi)
            .add("replay", Kind::Bool);
        let p = fs
            .parse(&s(&[
                "-node",
                "a",
                "--tag=x=1",
                "-tag",
                "y=2",
                "-replay",
                "rest",
                "-node=z",
            ]))
            .expect("ok");
        assert_eq!(p.get("node"), Some("a"));
        assert_eq!(p.all("tag"), vec!["x=1", "y=2"]);
        assert!(p.bool("replay"));
        assert_eq!(p.args, vec!["rest", "-node=z"]);
        assert_eq!(
            fs.parse(&s(&["-bogus"])).err().as_deref(),
            Some("flag provided but not defined: -bogus")
        );
        assert_eq!(
            fs.parse(&s(&["-node"])).err().as_deref(),
            Some("flag needs an argument: -node")
        );
        assert_eq!(
            fs.parse(&s(&["-replay=maybe"])).err().as_deref(),
            Some("invalid boolean value \"maybe\" for -replay: parse error")
        );
    }

    #[test]
    fn typed_values() {
        let fs = FlagSet::new()
            .add("timeout", Kind::Duration)
            .add("relay-factor", Kind::Int);
        let p = fs
            .parse(&s(&["-timeout=1m30s", "-relay-factor", "0x10"]))
            .expect("ok");
        assert_eq!(p.duration_nanos("timeout"), 90_000_000_000);
        assert_eq!(p.int("relay-factor"), 16);
        assert_eq!(
            fs.parse(&s(&["-timeout=5"])).err().as_deref(),
            Some("invalid value \"5\" for flag -timeout: parse error")
        );
        assert_eq!(
            fs.parse(&s(&["-relay-factor=x"])).err().as_deref(),
            Some("invalid value \"x\" for flag -relay-factor: parse error")
        );
        assert_eq!(
            fs.parse(&s(&["-relay-factor=99999999999999999999"]))
                .err()
                .as_deref(),
            Some(
                "invalid value \"99999999999999999999\" for flag -relay-factor: value out of range"
            )
        );
    }
}
