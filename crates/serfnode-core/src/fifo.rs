//! The event FIFO `/serfnode/parent` (SPEC §4): children write one JSON line
//! `["<event name>", <payload>]` per event; serfnode broadcasts a Serf user event.
//!
//! - [`parse_line`] turns one line into a [`UserEvent`]: the name, and the payload
//!   re-encoded as the original did (Python's `json.dumps` with default arguments:
//!   separators `", "` and `": "`, non-ASCII as `\uXXXX`; so `{"v":2}` is sent as
//!   `{"v": 2}`; object keys come out sorted, where Python 2 used its dict order).
//! - [`LineBuffer`] splits the byte stream read from the FIFO into lines: partial reads
//!   are joined, a line longer than its limit is reported once and skipped, and a partial
//!   line left when the last writer closes is reported, not sent.
//! - [`EventDecoder`] is both together.
//!
//! Validation is stricter than the original (SPEC §9.8): only a JSON array of exactly two
//! items with a string name is an event (the original also accepted any value that Python
//! could unpack into two items, like the string `"ab"` or a two-key object); an empty name
//! or one with control characters is refused; name plus payload must fit Serf's default
//! user event limit of [`USER_EVENT_SIZE_LIMIT`] bytes, checked here so the writer's error
//! is clear. Every error is a [`FifoError`] and the caller goes on with the next line.

use std::fmt;

use crate::pyjson;

/// Serf's default user event size limit: name plus payload, in bytes.
pub const USER_EVENT_SIZE_LIMIT: usize = 512;

/// Default longest line [`LineBuffer`] keeps (a valid event is far shorter; the slack
/// allows for whitespace that re-encoding removes).
pub const DEFAULT_MAX_LINE: usize = 64 * 1024;

/// How much of a bad line an error message shows.
const SHOWN_LINE_CHARS: usize = 200;

/// A user event to broadcast.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserEvent {
    /// Event name.
    pub name: String,
    /// Payload: the JSON value, encoded as Python's `json.dumps` does.
    pub payload: Vec<u8>,
}

/// Why a line from the FIFO is not an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FifoError {
    /// An empty (or all-whitespace) line.
    EmptyLine,
    /// Not JSON (the original's `Wrong payload: <line>`).
    NotJson {
        /// The line (lossy UTF-8, shortened).
        line: String,
        /// The parser's message.
        detail: String,
    },
    /// JSON, but not an array.
    NotAnArray {
        /// What it is ("an object", ...).
        found: &'static str,
    },
    /// An array, but not of exactly two items.
    WrongLength {
        /// How many items it has.
        len: usize,
    },
    /// The first item is not a string.
    NameNotString {
        /// What it is.
        found: &'static str,
    },
    /// The name is empty or has control characters.
    BadName {
        /// The name (escaped, shortened).
        name: String,
    },
    /// Name plus encoded payload exceed Serf's user event limit.
    TooLarge {
        /// Name plus payload, in bytes.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// A line longer than the buffer's limit (skipped up to its newline).
    LineTooLong {
        /// Bytes in the line (at least; counted up to the newline).
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// The last writer closed the FIFO in the middle of a line; the bytes are dropped.
    Partial {
        /// Bytes without a newline.
        len: usize,
    },
}

impl fmt::Display for FifoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SHAPE: &str = "an event is a JSON array [\"name\", payload] on one line";
        match self {
            FifoError::EmptyLine => write!(f, "Wrong payload: empty line; {SHAPE}"),
            FifoError::NotJson { line, detail } => {
                write!(f, "Wrong payload: {line} (not JSON: {detail})")
            }
            FifoError::NotAnArray { found } => write!(f, "expected {SHAPE}, found {found}"),
            FifoError::WrongLength { len } => {
                write!(f, "expected {SHAPE}, found an array of {len} items")
            }
            FifoError::NameNotString { found } => {
                write!(f, "the event name must be a string, found {found}")
            }
            FifoError::BadName { name } => write!(
                f,
                "the event name {name:?} is not allowed: it must be non-empty, without control characters"
            ),
            FifoError::TooLarge { size, limit } => write!(
                f,
                "user event is {size} bytes (name plus encoded payload); serf's limit is {limit}"
            ),
            FifoError::LineTooLong { len, limit } => {
                write!(f, "line of {len} bytes or more skipped; the limit is {limit}")
            }
            FifoError::Partial { len } => write!(
                f,
                "the writer closed the FIFO after {len} bytes without a newline; partial line dropped"
            ),
        }
    }
}

impl std::error::Error for FifoError {}

fn json_type(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

fn shorten(text: &str) -> String {
    let mut out: String = text.chars().take(SHOWN_LINE_CHARS).collect();
    if out.len() < text.len() {
        out.push('…');
    }
    out
}

/// Parses one line (without its newline) into a user event.
pub fn parse_line(line: &[u8]) -> Result<UserEvent, FifoError> {
    if line.iter().all(u8::is_ascii_whitespace) {
        return Err(FifoError::EmptyLine);
    }
    let value: serde_json::Value =
        serde_json::from_slice(line).map_err(|e| FifoError::NotJson {
            line: shorten(String::from_utf8_lossy(line).trim_end()),
            detail: e.to_string(),
        })?;
    let items = match value {
        serde_json::Value::Array(items) => items,
        other => {
            return Err(FifoError::NotAnArray {
                found: json_type(&other),
            })
        }
    };
    let [name, payload] = <[serde_json::Value; 2]>::try_from(items)
        .map_err(|items| FifoError::WrongLength { len: items.len() })?;
    let name = match name {
        serde_json::Value::String(s) => s,
        other => {
            return Err(FifoError::NameNotString {
                found: json_type(&other),
            })
        }
    };
    if name.is_empty() || name.chars().any(char::is_control) {
        return Err(FifoError::BadName {
            name: shorten(&name),
        });
    }
    // Serializing a `Value` cannot fail (its map keys are strings); an error would only
    // mean an unusable payload, so report it as such rather than panic.
    let payload = pyjson::to_string(&payload).map_err(|e| FifoError::NotJson {
        line: shorten(String::from_utf8_lossy(line).trim_end()),
        detail: e.to_string(),
    })?;
    let size = name.len() + payload.len();
    if size > USER_EVENT_SIZE_LIMIT {
        return Err(FifoError::TooLarge {
            size,
            limit: USER_EVENT_SIZE_LIMIT,
        });
    }
    Ok(UserEvent {
        name,
        payload: payload.into_bytes(),
    })
}

/// Splits the bytes read from a FIFO into `\n`-terminated lines.
#[derive(Debug, Clone)]
pub struct LineBuffer {
    buf: Vec<u8>,
    max_line: usize,
    /// Bytes of a too-long line skipped so far, while waiting for its newline.
    skipping: Option<usize>,
}

impl Default for LineBuffer {
    fn default() -> Self {
        LineBuffer::new(DEFAULT_MAX_LINE)
    }
}

impl LineBuffer {
    /// A buffer keeping lines of at most `max_line` bytes (without the newline).
    pub fn new(max_line: usize) -> LineBuffer {
        LineBuffer {
            buf: Vec::new(),
            max_line,
            skipping: None,
        }
    }

    /// Feeds bytes as read; returns the lines they complete (without `\n`), in order, and
    /// a [`FifoError::LineTooLong`] for each line over the limit.
    pub fn push(&mut self, mut chunk: &[u8]) -> Vec<Result<Vec<u8>, FifoError>> {
        let mut out = Vec::new();
        while let Some(pos) = chunk.iter().position(|&b| b == b'\n') {
            let (part, rest) = chunk.split_at(pos);
            chunk = rest.split_first().map(|(_, tail)| tail).unwrap_or_default();
            if let Some(skipped) = self.skipping.take() {
                out.push(Err(FifoError::LineTooLong {
                    len: skipped + part.len(),
                    limit: self.max_line,
                }));
                continue;
            }
            if self.buf.len() + part.len() > self.max_line {
                out.push(Err(FifoError::LineTooLong {
                    len: self.buf.len() + part.len(),
                    limit: self.max_line,
                }));
                self.buf.clear();
                continue;
            }
            self.buf.extend_from_slice(part);
            out.push(Ok(std::mem::take(&mut self.buf)));
        }
        match &mut self.skipping {
            Some(skipped) => *skipped += chunk.len(),
            None if self.buf.len() + chunk.len() > self.max_line => {
                self.skipping = Some(self.buf.len() + chunk.len());
                self.buf.clear();
            }
            None => self.buf.extend_from_slice(chunk),
        }
        out
    }

    /// Bytes of an unfinished line held (0 while skipping a long line).
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    /// Every writer has closed the FIFO (the reader saw end of file): an unfinished line
    /// is dropped and reported; the buffer is ready for the next writer.
    pub fn close(&mut self) -> Option<FifoError> {
        let skipped = self.skipping.take();
        let len = std::mem::take(&mut self.buf).len();
        match skipped {
            Some(n) => Some(FifoError::LineTooLong {
                len: n,
                limit: self.max_line,
            }),
            None if len > 0 => Some(FifoError::Partial { len }),
            None => None,
        }
    }
}

/// A [`LineBuffer`] whose lines go through [`parse_line`].
#[derive(Debug, Clone, Default)]
pub struct EventDecoder {
    lines: LineBuffer,
}

impl EventDecoder {
    /// A decoder with the default line limit.
    pub fn new() -> EventDecoder {
        EventDecoder::default()
    }

    /// Feeds bytes as read; returns the events (or errors) of the lines they complete.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<Result<UserEvent, FifoError>> {
        self.lines
            .push(chunk)
            .into_iter()
            .map(|line| line.and_then(|l| parse_line(&l)))
            .collect()
    }

    /// Every writer has closed the FIFO; see [`LineBuffer::close`].
    pub fn close(&mut self) -> Option<FifoError> {
        self.lines.close()
    }
}
