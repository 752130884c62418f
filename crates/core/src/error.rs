//! Why Serf refused an operation. Each variant prints Go's `serf` error text, so the agent
//! can pass them on unchanged to RPC clients and logs.

use std::fmt;

/// What [`Serf`](crate::Serf) operations fail with.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The configured Serf protocol version is outside what this implementation speaks.
    ProtocolVersion {
        /// The version asked for.
        version: u8,
    },
    /// The tags do not fit in memberlist's node metadata (the wire codec's reason).
    Tags(String),
    /// A user event is larger than the configured or the hard limit.
    UserEventTooLarge {
        /// The limit exceeded.
        limit: usize,
        /// Whether it is the configured limit (else the hard one).
        configured: bool,
        /// Whether the encoded event (else name plus payload) was measured.
        encoded: bool,
    },
    /// Queries need Serf protocol 4 or later.
    QueriesNotSupported,
    /// The encoded query is larger than the configured limit.
    QueryTooLarge {
        /// The limit.
        limit: usize,
    },
    /// No query with this `(ltime, id)` waits for an answer here.
    NoPendingQuery,
    /// This query was already answered.
    AlreadyResponded,
    /// This query's deadline has passed.
    ResponsePastDeadline,
    /// The encoded response is larger than the configured limit.
    ResponseTooLarge {
        /// The limit.
        limit: usize,
    },
    /// A graceful leave is already running.
    LeaveInProgress,
    /// A graceful leave step did not finish in time.
    LeaveTimeout,
    /// A push/pull exchange (join, anti-entropy) failed: memberlist's reason.
    PushPull(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::ProtocolVersion { version } => {
                let (lo, hi) = (crate::PROTOCOL_MIN, crate::PROTOCOL_MAX);
                let which = if *version < lo { "low" } else { "high" };
                write!(
                    f,
                    "Protocol version '{version}' too {which}. Must be in range: [{lo}, {hi}]"
                )
            }
            Error::Tags(e) | Error::PushPull(e) => f.write_str(e),
            Error::UserEventTooLarge {
                limit,
                configured,
                encoded,
            } => {
                let kind = if *configured { "configured" } else { "sane" };
                if *encoded {
                    write!(
                        f,
                        "encoded user event exceeds {kind} limit of {limit} bytes after encoding"
                    )
                } else {
                    write!(
                        f,
                        "user event exceeds {kind} limit of {limit} bytes before encoding"
                    )
                }
            }
            Error::QueriesNotSupported => f.write_str("Feature not supported"),
            Error::QueryTooLarge { limit } => write!(f, "query exceeds limit of {limit} bytes"),
            Error::NoPendingQuery => f.write_str("No pending queries matching ID"),
            Error::AlreadyResponded => {
                f.write_str("failed to respond to key query: response already sent")
            }
            Error::ResponsePastDeadline => {
                f.write_str("failed to respond to key query: response is past the deadline")
            }
            Error::ResponseTooLarge { limit } => write!(
                f,
                "failed to respond to key query: response exceeds limit of {limit} bytes"
            ),
            Error::LeaveInProgress => f.write_str("Leave already in progress"),
            Error::LeaveTimeout => f.write_str("timeout while waiting for graceful leave"),
        }
    }
}

impl std::error::Error for Error {}

/// Lets callers that still speak `Result<_, String>` use `?`.
impl From<Error> for String {
    fn from(e: Error) -> String {
        e.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::Error;

    #[test]
    fn texts_are_gos() {
        let cases = [
            (
                Error::ProtocolVersion { version: 1 },
                "Protocol version '1' too low. Must be in range: [2, 5]",
            ),
            (
                Error::ProtocolVersion { version: 6 },
                "Protocol version '6' too high. Must be in range: [2, 5]",
            ),
            (
                Error::UserEventTooLarge {
                    limit: 512,
                    configured: true,
                    encoded: false,
                },
                "user event exceeds configured limit of 512 bytes before encoding",
            ),
            (
                Error::UserEventTooLarge {
                    limit: 9216,
                    configured: false,
                    encoded: true,
                },
                "encoded user event exceeds sane limit of 9216 bytes after encoding",
            ),
            (
                Error::QueryTooLarge { limit: 1024 },
                "query exceeds limit of 1024 bytes",
            ),
            (Error::LeaveInProgress, "Leave already in progress"),
        ];
        for (e, text) in cases {
            assert_eq!(e.to_string(), text);
        }
    }
}
