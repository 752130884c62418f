//! Shared by the build scripts of the packages with binaries (`serf`, `serfnode`):
//! link them with packed relative relocations (`-z pack-relative-relocs`, DT_RELR).
//!
//! Why: a position-independent executable carries one 24-byte relocation per pointer in
//! its read-only data (vtables, string tables: about 12,000 of them in `serf`), which the
//! loader reads and applies at start. Packed, they take 3.5 KB instead of 294 KB, so the
//! idle agent's resident memory drops by about 5% (3.9 vs 4.1 MiB measured with
//! `scripts/footprint`), and the binary stays a PIE (address randomisation kept).
//!
//! Only when building for the machine itself on Linux with glibc 2.36 or later: older
//! glibc loaders do not read DT_RELR, and for a cross build we cannot tell.

use std::env;
use std::process::Command;

/// Emits the link argument when it is safe (see the module doc).
pub(crate) fn emit() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=../../build/relr.rs");
    let target = env::var("TARGET").unwrap_or_default();
    let host = env::var("HOST").unwrap_or_default();
    if target != host || !target.ends_with("-linux-gnu") {
        return;
    }
    if glibc_version().is_some_and(|v| v >= (2, 36)) {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}

/// The host's glibc version, from the first line of `ldd --version` (`ldd (Debian GLIBC
/// 2.36-9+deb12u14) 2.36`): its last word.
fn glibc_version() -> Option<(u32, u32)> {
    let out = Command::new("ldd").arg("--version").output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let first = text.lines().next()?;
    if !first.to_ascii_lowercase().contains("glibc") && !first.contains("GNU libc") {
        return None;
    }
    let version = first.split_whitespace().last()?;
    let mut parts = version.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}
