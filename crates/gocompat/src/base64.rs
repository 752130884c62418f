//! Base64 (standard alphabet, `=` padding) decoded as Go's `base64.StdEncoding` does:
//! CR and LF are skipped, unused trailing bits are ignored, and an error names the input
//! byte Go's `CorruptInputError` names, so error texts match Go's.

use std::fmt;

/// Go's `base64.CorruptInputError`: the offset of the offending input byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CorruptInput(pub usize);

impl fmt::Display for CorruptInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "illegal base64 data at input byte {}", self.0)
    }
}

impl std::error::Error for CorruptInput {}

fn value(c: u8) -> Option<u8> {
    match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    }
}

fn skip_newlines(src: &[u8], mut si: usize) -> usize {
    while si < src.len() && (src[si] == b'\n' || src[si] == b'\r') {
        si += 1;
    }
    si
}

/// Decodes `s` like Go's `base64.StdEncoding.DecodeString`.
pub fn decode(s: &str) -> Result<Vec<u8>, CorruptInput> {
    let src = s.as_bytes();
    let mut out = Vec::with_capacity(src.len() / 4 * 3);
    let mut si = 0;
    loop {
        let mut quad = [0u8; 4];
        let mut j = 0;
        let mut end = false;
        while j < 4 {
            if si == src.len() {
                if j == 0 {
                    return Ok(out);
                }
                // Padding is required: an incomplete quantum is corrupt where it began.
                return Err(CorruptInput(si - j));
            }
            let c = src[si];
            si += 1;
            if c == b'\n' || c == b'\r' {
                continue;
            }
            if let Some(v) = value(c) {
                quad[j] = v;
                j += 1;
                continue;
            }
            if c != b'=' {
                return Err(CorruptInput(si - 1));
            }
            // Padding: only after two or three symbols, and "==" after two.
            match j {
                0 | 1 => return Err(CorruptInput(si - 1)),
                2 => {
                    si = skip_newlines(src, si);
                    if si == src.len() {
                        return Err(CorruptInput(src.len()));
                    }
                    if src[si] != b'=' {
                        return Err(CorruptInput(si - 1));
                    }
                    si += 1;
                }
                _ => {}
            }
            si = skip_newlines(src, si);
            if si < src.len() {
                return Err(CorruptInput(si));
            }
            end = true;
            break;
        }
        let n = u32::from(quad[0]) << 18
            | u32::from(quad[1]) << 12
            | u32::from(quad[2]) << 6
            | u32::from(quad[3]);
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        let take = if end { j - 1 } else { 3 };
        out.extend_from_slice(&bytes[..take]);
        if end {
            return Ok(out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_like_go() {
        assert_eq!(decode(""), Ok(vec![]));
        assert_eq!(decode("YWJj"), Ok(b"abc".to_vec()));
        assert_eq!(decode("YWJjZA=="), Ok(b"abcd".to_vec()));
        assert_eq!(decode("YWJjZGU="), Ok(b"abcde".to_vec()));
        assert_eq!(decode("YW\nJj\r\n"), Ok(b"abc".to_vec()));
        // Go's StdEncoding is not strict: unused bits may be set.
        assert_eq!(decode("YR=="), Ok(b"a".to_vec()));
    }

    #[test]
    fn error_offsets_like_go() {
        assert_eq!(decode("bad"), Err(CorruptInput(0)));
        assert_eq!(decode("bogus"), Err(CorruptInput(4)));
        assert_eq!(decode("YWJjZA==YWJj"), Err(CorruptInput(8)));
        assert_eq!(decode("!!"), Err(CorruptInput(0)));
        assert_eq!(decode("YW=j"), Err(CorruptInput(2)));
        assert_eq!(decode("Y==="), Err(CorruptInput(1)));
        assert_eq!(decode("YWJjZA="), Err(CorruptInput(7)));
        assert_eq!(
            decode("bogus").map_err(|e| e.to_string()),
            Err("illegal base64 data at input byte 4".to_string())
        );
    }
}
