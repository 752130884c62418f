//! Address strings as Go's `net` package splits them, with its error texts.

use std::fmt;

/// What is wrong with a `host:port` string (Go's `*net.AddrError` reasons).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddrProblem {
    /// No `:port`.
    MissingPort,
    /// A bare IPv6 address or several colons without brackets.
    TooManyColons,
    /// `[` without `]`.
    MissingBracket,
    /// A stray `[`.
    UnexpectedOpen,
    /// A stray `]`.
    UnexpectedClose,
}

/// Go's `*net.AddrError` for a `host:port` string: prints `address <addr>: <reason>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddrError {
    /// The address as given.
    pub addr: String,
    /// What is wrong with it.
    pub problem: AddrProblem,
}

impl fmt::Display for AddrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let why = match self.problem {
            AddrProblem::MissingPort => "missing port in address",
            AddrProblem::TooManyColons => "too many colons in address",
            AddrProblem::MissingBracket => "missing ']' in address",
            AddrProblem::UnexpectedOpen => "unexpected '[' in address",
            AddrProblem::UnexpectedClose => "unexpected ']' in address",
        };
        write!(f, "{}", addr_err(&self.addr, why))
    }
}

impl std::error::Error for AddrError {}

/// Lets callers that speak `Result<_, String>` use `?`.
impl From<AddrError> for String {
    fn from(e: AddrError) -> String {
        e.to_string()
    }
}

/// Go's `*net.AddrError` text for any reason: `address <addr>: <why>`.
pub fn addr_err(addr: &str, why: &str) -> String {
    format!("address {addr}: {why}")
}

/// `net.SplitHostPort`: `host:port` or `[v6]:port`.
pub fn split_host_port(s: &str) -> Result<(&str, &str), AddrError> {
    let fail = |problem| {
        Err(AddrError {
            addr: s.to_string(),
            problem,
        })
    };
    let Some(i) = s.rfind(':') else {
        return fail(AddrProblem::MissingPort);
    };
    let (host, j, k) = if let Some(rest) = s.strip_prefix('[') {
        let Some(end) = rest.find(']').map(|e| e + 1) else {
            return fail(AddrProblem::MissingBracket);
        };
        if end + 1 == s.len() {
            return fail(AddrProblem::MissingPort);
        }
        if end + 1 != i {
            if s.as_bytes().get(end + 1) == Some(&b':') {
                return fail(AddrProblem::TooManyColons);
            }
            return fail(AddrProblem::MissingPort);
        }
        (&s[1..end], 1, end + 1)
    } else {
        let host = &s[..i];
        if host.contains(':') {
            return fail(AddrProblem::TooManyColons);
        }
        (host, 0, 0)
    };
    if s[j..].contains('[') {
        return fail(AddrProblem::UnexpectedOpen);
    }
    if s[k..].contains(']') {
        return fail(AddrProblem::UnexpectedClose);
    }
    Ok((host, &s[i + 1..]))
}

#[cfg(test)]
mod tests {
    use super::{split_host_port, AddrProblem};

    #[test]
    fn splits_like_go() {
        assert_eq!(split_host_port("127.0.0.1:7946"), Ok(("127.0.0.1", "7946")));
        assert_eq!(split_host_port("[::1]:7373"), Ok(("::1", "7373")));
        assert_eq!(split_host_port(":7373"), Ok(("", "7373")));
        let err = |s: &str| {
            split_host_port(s)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
        };
        assert_eq!(
            err("127.0.0.1"),
            "address 127.0.0.1: missing port in address"
        );
        assert_eq!(err("::1:5"), "address ::1:5: too many colons in address");
        assert_eq!(err("[::1"), "address [::1: missing ']' in address");
        assert_eq!(err("[::1]"), "address [::1]: missing port in address");
        assert_eq!(
            split_host_port("a]:1").err().map(|e| e.problem),
            Some(AddrProblem::UnexpectedClose)
        );
    }
}
