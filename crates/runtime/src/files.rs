//! The keyring and tags files, written as Go writes them (JSON), but atomically: a synced
//! temporary file renamed over the old one, mode 0600.

/// Writes a keyring file: a JSON array of base64 keys, primary first (atomic rename).
pub fn write_keyring_file(
    path: &std::path::Path,
    kr: &serf_wire::Keyring,
) -> Result<(), crate::Error> {
    use base64::Engine;
    let keys: Vec<String> = kr
        .keys()
        .iter()
        .map(|k| {
            format!(
                "  \"{}\"",
                base64::engine::general_purpose::STANDARD.encode(k.as_bytes())
            )
        })
        .collect();
    write_atomic(path, format!("[\n{}\n]", keys.join(",\n")).as_bytes())
}

/// Writes a tags file: a JSON object (atomic rename).
pub fn write_tags_file(
    path: &std::path::Path,
    tags: &[(String, String)],
) -> Result<(), crate::Error> {
    // Go's `json.MarshalIndent(tags, "", "  ")`: keys sorted, HTML-safe escaping.
    let esc = |s: &str| {
        let mut o = String::with_capacity(s.len() + 2);
        o.push('"');
        for c in s.chars() {
            match c {
                '"' => o.push_str("\\\""),
                '\\' => o.push_str("\\\\"),
                '\n' => o.push_str("\\n"),
                '\r' => o.push_str("\\r"),
                '\t' => o.push_str("\\t"),
                '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                    o.push_str(&format!("\\u{:04x}", c as u32))
                }
                c if (c as u32) < 0x20 => o.push_str(&format!("\\u{:04x}", c as u32)),
                c => o.push(c),
            }
        }
        o.push('"');
        o
    };
    let mut sorted: Vec<&(String, String)> = tags.iter().collect();
    sorted.sort();
    let body = if sorted.is_empty() {
        "{}".to_string()
    } else {
        let lines: Vec<String> = sorted
            .iter()
            .map(|(k, v)| format!("  {}: {}", esc(k), esc(v)))
            .collect();
        format!("{{\n{}\n}}", lines.join(",\n"))
    };
    write_atomic(path, body.as_bytes())
}

/// Writes `path` through a synced temporary file and a rename, with mode 0600 as Go
/// writes keyring and tags files (they may hold secrets).
fn write_atomic(path: &std::path::Path, data: &[u8]) -> Result<(), crate::Error> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let err = |source: std::io::Error| crate::Error::File {
        path: path.to_path_buf(),
        source,
    };
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(err)?;
    f.write_all(data).map_err(err)?;
    f.sync_all().map_err(err)?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(err)
}
