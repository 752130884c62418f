//! Keys, and the measurements file the interop tests append timings to.

use super::*;

/// Standard base64 (with padding).
pub fn base64_encode(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18u32, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> shift) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A fresh gossip key: 32 random bytes from /dev/urandom, base64 (what
/// `serf keygen` prints).
pub fn keygen() -> String {
    let mut key = [0u8; 32];
    File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut key))
        .expect("reading /dev/urandom");
    base64_encode(&key)
}

/// `5.2s`.
pub fn fmt_secs(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

/// Path of the measurements file (`<workspace>/target/interop-measurements.txt`).
pub fn measurements_file() -> PathBuf {
    target_dir().join("interop-measurements.txt")
}

/// Prints `line` to stdout and appends it (with a timestamp and the test
/// name) to [`measurements_file`].
pub fn record_measurement(line: &str) {
    println!("{line}");
    let path = measurements_file();
    if let Some(dir) = path.parent() {
        let _ = fs::create_dir_all(dir);
    }
    let ts = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    if let Ok(mut f) = OpenOptions::new().create(true).append(true).open(&path) {
        let rust_bin = our_serf()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "none".to_string());
        let _ = writeln!(
            f,
            "{line} test={} rust_bin={rust_bin} unix={ts}",
            current_test_name()
        );
    }
}
