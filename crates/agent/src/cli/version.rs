//! `serf version`.

/// The version `serf version` prints.
pub const VERSION: &str = "0.8.2-dev";

/// Prints the version and the agent protocol range.
pub(super) fn version() -> i32 {
    println!("{VERSION}");
    println!("Agent Protocol: 5 (Understands back to: 2)");
    0
}
