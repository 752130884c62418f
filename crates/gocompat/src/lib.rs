//! Go compatibility in one place.
//!
//! A drop-in replacement for Go's `serf` must read what Go reads and print what Go prints,
//! byte for byte, where Rust's standard library or the usual crates differ. Each module
//! here is one such difference, hand-written only because compatibility forces it:
//!
//! * [`base64`]: Go's `base64.StdEncoding` decoder (skips CR/LF, ignores trailing bits,
//!   and names the offending byte in Go's error text) for keys typed by users.
//! * [`regex`]: RE2 syntax that the `regex` crate spells differently (`\Q...\E`), for tag
//!   and node filters.
//! * [`net`]: `host:port` strings split as `net.SplitHostPort` does, with its errors.
//! * [`time`]: Go's `log` timestamps and `time.Time.String()`, from one civil-date
//!   conversion.
//! * [`errors`]: operating-system errors worded as Go's `net` and `os` packages word them,
//!   memberlist's listener errors, and go-multierror's list format.
#![forbid(unsafe_code)]

pub mod base64;
pub mod errors;
pub mod net;
pub mod regex;
pub mod time;
