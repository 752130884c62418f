//! Go's wording of operating-system errors, so messages match the Go agent's.
//!
//! Go prints a syscall error as the lower-cased C `strerror` text with no errno
//! (`address already in use`), where Rust prints `Address already in use (os error 98)`.
//! Callers wrap the text in Go's operation prefixes (`listen tcp 127.0.0.1:7946: bind: ...`).

use std::io;
use std::net::SocketAddr;

/// The error text Go's `syscall.Errno` prints: Rust's message without the
/// ` (os error N)` suffix, first letter lower-cased. Errors that are not OS errors keep
/// Rust's text, lower-cased the same way.
pub fn io_text(e: &io::Error) -> String {
    let text = e.to_string();
    let text = text
        .find(" (os error ")
        .map_or(text.as_str(), |i| &text[..i]);
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// A listener that could not bind, worded as memberlist's `NetTransport` reports it:
/// `Failed to start TCP listener on "127.0.0.1" port 7946: listen tcp 127.0.0.1:7946:
/// bind: address already in use`.
pub fn listen_error(proto: &str, addr: SocketAddr, e: &io::Error) -> String {
    let lower = proto.to_ascii_lowercase();
    format!(
        "Failed to start {proto} listener on \"{}\" port {}: listen {lower} {addr}: bind: {}",
        addr.ip(),
        addr.port(),
        io_text(e)
    )
}

/// Formats errors the way hashicorp/go-multierror does.
pub fn multierror(errors: &[String]) -> String {
    let head = if errors.len() == 1 {
        "1 error occurred:".to_string()
    } else {
        format!("{} errors occurred:", errors.len())
    };
    let body: Vec<String> = errors.iter().map(|e| format!("\t* {e}")).collect();
    format!("{head}\n{}\n\n", body.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_errors_read_as_go_prints_them() {
        let e = io::Error::from_raw_os_error(98);
        assert_eq!(io_text(&e), "address already in use");
        let e = io::Error::from_raw_os_error(2);
        assert_eq!(io_text(&e), "no such file or directory");
        let e = io::Error::other("Custom thing");
        assert_eq!(io_text(&e), "custom thing");
    }

    #[test]
    fn listen_error_names_protocol_address_and_port() {
        let e = io::Error::from_raw_os_error(98);
        let sa: SocketAddr = "127.0.0.1:7946"
            .parse()
            .unwrap_or(SocketAddr::from(([0; 4], 0)));
        assert_eq!(
            listen_error("TCP", sa, &e),
            "Failed to start TCP listener on \"127.0.0.1\" port 7946: listen tcp 127.0.0.1:7946: bind: address already in use"
        );
        let sa: SocketAddr = "[::1]:7946"
            .parse()
            .unwrap_or(SocketAddr::from(([0; 4], 0)));
        assert_eq!(
            listen_error("UDP", sa, &e),
            "Failed to start UDP listener on \"::1\" port 7946: listen udp [::1]:7946: bind: address already in use"
        );
    }
}
