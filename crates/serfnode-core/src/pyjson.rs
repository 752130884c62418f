//! JSON text the way Python 2's `json.dumps` writes it with default arguments.
//!
//! The original serfnode wrote every file of the file API, and re-encoded every event
//! payload, with Python's encoder: one line, separators `", "` and `": "`, and every
//! character outside printable ASCII (including DEL) escaped as a lowercase `\uXXXX`
//! (UTF-16 surrogate pairs above U+FFFF). JSON readers do not care, but byte-for-byte
//! equal output keeps event payload sizes (checked against Serf's 512-byte limit) the
//! same as before, and makes the files diff-able against the original's.
//!
//! Known difference: floats are written by `serde_json` (`1e16`), Python writes `1e+16`.

use serde::Serialize;
use serde_json::ser::Formatter;
use std::io;

/// serde_json formatter with Python's separators and ASCII-only output.
#[derive(Debug, Default, Clone, Copy)]
struct PythonFormatter;

impl Formatter for PythonFormatter {
    fn begin_array_value<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> io::Result<()> {
        if first {
            Ok(())
        } else {
            writer.write_all(b", ")
        }
    }

    fn begin_object_key<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> io::Result<()> {
        if first {
            Ok(())
        } else {
            writer.write_all(b", ")
        }
    }

    fn begin_object_value<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        writer.write_all(b": ")
    }

    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        for c in fragment.chars() {
            if (' '..='~').contains(&c) {
                let mut buf = [0u8; 4];
                writer.write_all(c.encode_utf8(&mut buf).as_bytes())?;
            } else {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    write!(writer, "\\u{unit:04x}")?;
                }
            }
        }
        Ok(())
    }
}

/// Serializes `value` as Python 2's `json.dumps(value)` would (no trailing newline).
pub(crate) fn to_string<T: Serialize + ?Sized>(value: &T) -> Result<String, serde_json::Error> {
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut out, PythonFormatter);
    value.serialize(&mut ser)?;
    // Only ASCII is ever written, so this cannot fail; map it anyway rather than unwrap.
    String::from_utf8(out).map_err(|e| {
        serde_json::Error::io(io::Error::new(io::ErrorKind::InvalidData, e.utf8_error()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn separators_are_pythons() {
        let v = json!({"a": [1, 2, {"b": null}], "c": "d"});
        assert_eq!(
            to_string(&v).ok().as_deref(),
            Some(r#"{"a": [1, 2, {"b": null}], "c": "d"}"#)
        );
    }

    #[test]
    fn non_ascii_is_escaped_like_python() {
        let v = json!(["é", "\u{1F600}", "\u{7f}", "\n\"\\", "\u{1}"]);
        assert_eq!(
            to_string(&v).ok().as_deref(),
            Some(r#"["\u00e9", "\ud83d\ude00", "\u007f", "\n\"\\", "\u0001"]"#)
        );
    }

    #[test]
    fn empty_containers() {
        assert_eq!(to_string(&json!({})).ok().as_deref(), Some("{}"));
        assert_eq!(to_string(&json!([])).ok().as_deref(), Some("[]"));
    }
}
