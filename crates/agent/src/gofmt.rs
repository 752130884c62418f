//! Go formatting and parsing rules the CLI output depends on: `strconv.Quote` (`%q`),
//! `encoding/json` string escaping, `%#v` of values decoded from msgpack into
//! `interface{}`, `%g`, `time.ParseDuration` and `strconv.ParseInt(s, 0, 64)`.

use serf_wire::msgpack::{Kind, Reader};
use serf_wire::Error as WireError;

/// Whether Go's `unicode.IsPrint` would accept `c` (approximation: Rust's notion of control
/// and whitespace characters plus the format and private-use ranges Go rejects).
fn is_print(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    if c.is_control() || c.is_whitespace() {
        return false;
    }
    let u = c as u32;
    !matches!(
        u,
        0xAD | 0x600..=0x605
            | 0x61C
            | 0x6DD
            | 0x70F
            | 0x8E2
            | 0x180E
            | 0x200B..=0x200F
            | 0x202A..=0x202E
            | 0x2060..=0x206F
            | 0xE000..=0xF8FF
            | 0xFEFF
            | 0xFFF9..=0xFFFB
            | 0xFFFE..=0xFFFF
            | 0x110BD
            | 0x110CD
            | 0x1BCA0..=0x1BCA3
            | 0x1D173..=0x1D17A
            | 0xE0001
            | 0xE0020..=0xE007F
            | 0xF0000..=0x10FFFF
    )
}

/// Decodes one UTF-8 sequence at the start of `b` the way Go's `utf8.DecodeRune` does:
/// `None` for an invalid or truncated sequence (Go's `RuneError` with width 1).
fn decode_rune(b: &[u8]) -> Option<(char, usize)> {
    let first = *b.first()?;
    let n = match first {
        0x00..=0x7f => return Some((char::from(first), 1)),
        0xc2..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf4 => 4,
        _ => return None,
    };
    let s = std::str::from_utf8(b.get(..n)?).ok()?;
    s.chars().next().map(|c| (c, n))
}

/// `strconv.Quote` of raw bytes (what `%q` and `%#v` print for a string).
pub(crate) fn quote(s: &[u8]) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    let mut i = 0;
    while i < s.len() {
        let Some((c, w)) = decode_rune(&s[i..]) else {
            out.push_str(&format!("\\x{:02x}", s[i]));
            i += 1;
            continue;
        };
        i += w;
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if is_print(c) => out.push(c),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if (c as u32) < 0x10000 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push_str(&format!("\\U{:08x}", c as u32)),
        }
    }
    out.push('"');
    out
}

/// `strconv.Quote` of a Rust string.
pub(crate) fn quote_str(s: &str) -> String {
    quote(s.as_bytes())
}

/// A JSON string literal exactly as Go's `encoding/json` writes it (HTML-safe escaping,
/// `\u00XX` for other control characters, `\ufffd` for invalid UTF-8, U+2028/U+2029
/// escaped).
pub(crate) fn json_string(s: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    let mut i = 0;
    while i < s.len() {
        let Some((c, w)) = decode_rune(&s[i..]) else {
            out.push_str("\\ufffd");
            i += 1;
            continue;
        };
        i += w;
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c if (c as u32) < 0x20 => {
                let b = c as usize;
                out.push_str("\\u00");
                out.push(char::from(HEX[b >> 4]));
                out.push(char::from(HEX[b & 0xf]));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `json.MarshalIndent(map[string]string, prefix, "  ")` at nesting `indent` (the number of
/// two-space steps of the line the map starts on): keys sorted byte-wise, `{}` when empty.
pub(crate) fn json_str_map(map: &[(Vec<u8>, Vec<u8>)], indent: usize) -> String {
    if map.is_empty() {
        return "{}".to_string();
    }
    let mut entries: Vec<&(Vec<u8>, Vec<u8>)> = map.iter().collect();
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    // A Go map holds each key once; the last value wins.
    entries.dedup_by(|later, earlier| {
        if later.0 == earlier.0 {
            std::mem::swap(later, earlier);
            true
        } else {
            false
        }
    });
    let inner = "  ".repeat(indent + 1);
    let lines: Vec<String> = entries
        .iter()
        .map(|(k, v)| format!("{inner}{}: {}", json_string(k), json_string(v)))
        .collect();
    format!("{{\n{}\n{}}}", lines.join(",\n"), "  ".repeat(indent))
}

/// Go's `%v`/`%g` of a float64 with the shortest representation.
pub(crate) fn fmt_float_g(v: f64) -> String {
    if v.is_nan() {
        return "NaN".to_string();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf" } else { "-Inf" }.to_string();
    }
    if v == 0.0 {
        return if v.is_sign_negative() { "-0" } else { "0" }.to_string();
    }
    // Shortest round-trip digits and exponent from Rust's `{:e}`.
    let e = format!("{:e}", v.abs());
    let (mant, exp) = e.split_once('e').unwrap_or((e.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mant.chars().filter(char::is_ascii_digit).collect();
    let nd = digits.len() as i32;
    let sign = if v < 0.0 { "-" } else { "" };
    if !(-4..6).contains(&exp) {
        // %e with the shortest digits; exponent has at least two digits.
        let mut m = digits[..1].to_string();
        if nd > 1 {
            m.push('.');
            m.push_str(&digits[1..]);
        }
        let es = if exp < 0 { '-' } else { '+' };
        return format!("{sign}{m}e{es}{:02}", exp.abs());
    }
    // %f with just enough digits.
    let dp = exp + 1;
    let s = if dp <= 0 {
        format!("0.{}{}", "0".repeat((-dp) as usize), digits)
    } else if dp >= nd {
        format!("{}{}", digits, "0".repeat((dp - nd) as usize))
    } else {
        format!("{}.{}", &digits[..dp as usize], &digits[dp as usize..])
    };
    format!("{sign}{s}")
}

/// A value decoded the way go-msgpack (`RawToString: true`) decodes into `interface{}`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum GoValue {
    /// nil
    Nil,
    /// bool
    Bool(bool),
    /// int64 (fixints and the signed forms)
    Int(i64),
    /// uint64 (`cc`..`cf`)
    Uint(u64),
    /// float64
    Float(f64),
    /// string (raw bytes; Go strings may hold invalid UTF-8)
    Str(Vec<u8>),
    /// []byte (bin family)
    Bytes(Vec<u8>),
    /// []interface{}
    Array(Vec<GoValue>),
    /// map[interface{}]interface{}
    Map(Vec<(GoValue, GoValue)>),
    /// codec.RawExt
    Ext(u8, Vec<u8>),
}

/// Largest nesting decoded into a [`GoValue`].
const MAX_DEPTH: usize = 32;

impl GoValue {
    /// Decodes one value.
    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<GoValue, WireError> {
        Self::decode_depth(r, 0)
    }

    fn decode_depth(r: &mut Reader<'_>, depth: usize) -> Result<GoValue, WireError> {
        if depth > MAX_DEPTH {
            return Err(WireError::Limit("msgpack nesting too deep"));
        }
        let first = *r.remaining().first().ok_or(WireError::Eof)?;
        Ok(match r.peek_kind()? {
            Kind::Nil => {
                r.take(1)?;
                GoValue::Nil
            }
            Kind::Bool => GoValue::Bool(r.bool()?),
            Kind::Int => match first {
                0xcc..=0xcf => GoValue::Uint(r.uint()?),
                _ => GoValue::Int(r.i64()?),
            },
            Kind::Float => GoValue::Float(r.f64()?),
            Kind::Str => GoValue::Str(r.str_bytes()?.to_vec()),
            Kind::Bin => GoValue::Bytes(r.bytes()?.to_vec()),
            Kind::Array => {
                let n = r.array_len()?;
                let mut v = Vec::with_capacity(n.min(1024));
                for _ in 0..n {
                    v.push(Self::decode_depth(r, depth + 1)?);
                }
                GoValue::Array(v)
            }
            Kind::Map => {
                let n = r.map_len()?;
                let mut v = Vec::with_capacity(n.min(1024));
                for _ in 0..n {
                    let k = Self::decode_depth(r, depth + 1)?;
                    let val = Self::decode_depth(r, depth + 1)?;
                    v.push((k, val));
                }
                GoValue::Map(v)
            }
            Kind::Ext => {
                r.take(1)?;
                let len = match first {
                    0xd4 => 1,
                    0xd5 => 2,
                    0xd6 => 4,
                    0xd7 => 8,
                    0xd8 => 16,
                    0xc7 => usize::from(r.take(1)?[0]),
                    0xc8 => {
                        let b = r.take(2)?;
                        usize::from(u16::from_be_bytes([b[0], b[1]]))
                    }
                    _ => {
                        let b = r.take(4)?;
                        u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize
                    }
                };
                let tag = r.take(1)?[0];
                GoValue::Ext(tag, r.take(len)?.to_vec())
            }
        })
    }

    fn type_rank(&self) -> u8 {
        match self {
            GoValue::Nil => 0,
            GoValue::Bool(_) => 1,
            GoValue::Int(_) => 2,
            GoValue::Uint(_) => 3,
            GoValue::Float(_) => 4,
            GoValue::Str(_) => 5,
            GoValue::Bytes(_) => 6,
            GoValue::Array(_) => 7,
            GoValue::Map(_) => 8,
            GoValue::Ext(..) => 9,
        }
    }

    /// The order `fmt` prints map keys in (`internal/fmtsort`; values of different dynamic
    /// types are grouped by type).
    fn key_cmp(a: &GoValue, b: &GoValue) -> std::cmp::Ordering {
        use std::cmp::Ordering;
        match (a, b) {
            (GoValue::Bool(x), GoValue::Bool(y)) => x.cmp(y),
            (GoValue::Int(x), GoValue::Int(y)) => x.cmp(y),
            (GoValue::Uint(x), GoValue::Uint(y)) => x.cmp(y),
            (GoValue::Float(x), GoValue::Float(y)) => x.partial_cmp(y).unwrap_or(Ordering::Equal),
            (GoValue::Str(x), GoValue::Str(y)) => x.cmp(y),
            _ => a.type_rank().cmp(&b.type_rank()),
        }
    }

    /// `%#v` of this value held in an `interface{}` argument (top level).
    pub(crate) fn sharp_v(&self) -> String {
        let mut out = String::new();
        self.write_sharp_v(&mut out, 0);
        out
    }

    fn write_sharp_v(&self, out: &mut String, depth: usize) {
        match self {
            GoValue::Nil if depth == 0 => out.push_str("<nil>"),
            GoValue::Nil => out.push_str("interface {}(nil)"),
            GoValue::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            GoValue::Int(i) => out.push_str(&i.to_string()),
            GoValue::Uint(u) => out.push_str(&format!("{u:#x}")),
            GoValue::Float(f) => out.push_str(&fmt_float_g(*f)),
            GoValue::Str(s) => out.push_str(&quote(s)),
            GoValue::Bytes(b) => {
                // A top-level []byte argument is printed with its static type name; inside
                // containers reflection names it []uint8.
                out.push_str(if depth == 0 { "[]byte{" } else { "[]uint8{" });
                let items: Vec<String> = b.iter().map(|x| format!("{x:#x}")).collect();
                out.push_str(&items.join(", "));
                out.push('}');
            }
            GoValue::Array(items) => {
                out.push_str("[]interface {}{");
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    v.write_sharp_v(out, depth + 1);
                }
                out.push('}');
            }
            GoValue::Map(entries) => {
                let mut sorted: Vec<&(GoValue, GoValue)> = entries.iter().collect();
                sorted.sort_by(|a, b| Self::key_cmp(&a.0, &b.0));
                out.push_str("map[interface {}]interface {}{");
                for (i, (k, v)) in sorted.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    k.write_sharp_v(out, depth + 1);
                    out.push(':');
                    v.write_sharp_v(out, depth + 1);
                }
                out.push('}');
            }
            GoValue::Ext(tag, data) => {
                out.push_str(&format!("codec.RawExt{{Tag:{tag:#x}, Data:[]uint8{{"));
                let items: Vec<String> = data.iter().map(|x| format!("{x:#x}")).collect();
                out.push_str(&items.join(", "));
                out.push_str("}}");
            }
        }
    }
}

/// `fmt.Sprintf(format)` without arguments: `%%` is a percent sign, any other verb prints
/// `%!v(MISSING)` (Go's `info` output uses section names as format strings).
pub(crate) fn sprintf_noargs(format: &str) -> String {
    let mut out = String::with_capacity(format.len());
    let mut it = format.chars().peekable();
    while let Some(c) = it.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        // Flags, width, precision.
        while let Some(&f) = it.peek() {
            if matches!(f, '+' | '-' | '#' | ' ' | '0'..='9' | '.') {
                it.next();
            } else {
                break;
            }
        }
        match it.next() {
            None => out.push_str("%!(NOVERB)"),
            Some('%') => out.push('%'),
            Some(v) => out.push_str(&format!("%!{v}(MISSING)")),
        }
    }
    out
}

/// `time.ParseDuration`: nanoseconds, or `None` when Go would return an error.
pub(crate) fn parse_duration(s: &str) -> Option<i64> {
    const MAX: u64 = 1 << 63;
    let mut s = s.as_bytes();
    let mut neg = false;
    if let Some(&c) = s.first() {
        if c == b'-' || c == b'+' {
            neg = c == b'-';
            s = &s[1..];
        }
    }
    if s == b"0" {
        return Some(0);
    }
    if s.is_empty() {
        return None;
    }
    let mut d: u64 = 0;
    while !s.is_empty() {
        if !(s[0] == b'.' || s[0].is_ascii_digit()) {
            return None;
        }
        // Leading integer.
        let mut v: u64 = 0;
        let mut i = 0;
        while i < s.len() && s[i].is_ascii_digit() {
            if v > MAX / 10 {
                return None;
            }
            v = v * 10 + u64::from(s[i] - b'0');
            if v > MAX {
                return None;
            }
            i += 1;
        }
        let pre = i > 0;
        s = &s[i..];
        // Fraction.
        let (mut f, mut scale, mut post) = (0u64, 1f64, false);
        if s.first() == Some(&b'.') {
            s = &s[1..];
            let mut i = 0;
            let mut overflow = false;
            while i < s.len() && s[i].is_ascii_digit() {
                if !overflow {
                    if f > (MAX - 1) / 10 {
                        overflow = true;
                    } else {
                        let y = f * 10 + u64::from(s[i] - b'0');
                        if y > MAX {
                            overflow = true;
                        } else {
                            f = y;
                            scale *= 10.0;
                        }
                    }
                }
                i += 1;
            }
            post = i > 0;
            s = &s[i..];
        }
        if !pre && !post {
            return None;
        }
        // Unit.
        let mut i = 0;
        while i < s.len() && !(s[i] == b'.' || s[i].is_ascii_digit()) {
            i += 1;
        }
        if i == 0 {
            return None;
        }
        let unit: u64 = match &s[..i] {
            b"ns" => 1,
            b"us" | b"\xc2\xb5s" | b"\xce\xbcs" => 1_000,
            b"ms" => 1_000_000,
            b"s" => 1_000_000_000,
            b"m" => 60_000_000_000,
            b"h" => 3_600_000_000_000,
            _ => return None,
        };
        s = &s[i..];
        if v > MAX / unit {
            return None;
        }
        v *= unit;
        if f > 0 {
            v += (f as f64 * (unit as f64 / scale)) as u64;
            if v > MAX {
                return None;
            }
        }
        d += v;
        if d > MAX {
            return None;
        }
    }
    if neg {
        return Some((d as i64).wrapping_neg());
    }
    if d > MAX - 1 {
        return None;
    }
    Some(d as i64)
}

/// Why `strconv.ParseInt` failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IntError {
    /// `parse error` (flag's text for `strconv.ErrSyntax`)
    Syntax,
    /// `value out of range`
    Range,
}

fn underscore_ok(s: &[u8]) -> bool {
    let mut saw = b'^';
    let mut s = s;
    if let Some(&c) = s.first() {
        if c == b'-' || c == b'+' {
            s = &s[1..];
        }
    }
    let mut i = 0;
    let mut hex = false;
    if s.len() >= 2 && s[0] == b'0' && matches!(s[1].to_ascii_lowercase(), b'b' | b'o' | b'x') {
        i = 2;
        saw = b'0';
        hex = s[1].eq_ignore_ascii_case(&b'x');
    }
    while i < s.len() {
        let c = s[i];
        if c.is_ascii_digit() || (hex && c.is_ascii_hexdigit()) {
            saw = b'0';
        } else if c == b'_' {
            if saw != b'0' {
                return false;
            }
            saw = b'_';
        } else {
            if saw == b'_' {
                return false;
            }
            saw = b'!';
        }
        i += 1;
    }
    saw != b'_'
}

fn parse_uint_base0(s0: &[u8]) -> Result<u64, IntError> {
    if s0.is_empty() {
        return Err(IntError::Syntax);
    }
    let mut s = s0;
    let mut base: u64 = 10;
    if s[0] == b'0' {
        if s.len() >= 3 && s[1].eq_ignore_ascii_case(&b'b') {
            base = 2;
            s = &s[2..];
        } else if s.len() >= 3 && s[1].eq_ignore_ascii_case(&b'o') {
            base = 8;
            s = &s[2..];
        } else if s.len() >= 3 && s[1].eq_ignore_ascii_case(&b'x') {
            base = 16;
            s = &s[2..];
        } else {
            base = 8;
            s = &s[1..];
        }
    }
    let cutoff = u64::MAX / base + 1;
    let mut underscores = false;
    let mut n: u64 = 0;
    for &c in s {
        let d = match c {
            b'_' => {
                underscores = true;
                continue;
            }
            b'0'..=b'9' => c - b'0',
            c if c.is_ascii_alphabetic() => c.to_ascii_lowercase() - b'a' + 10,
            _ => return Err(IntError::Syntax),
        };
        if u64::from(d) >= base {
            return Err(IntError::Syntax);
        }
        if n >= cutoff {
            return Err(IntError::Range);
        }
        n *= base;
        n = n.checked_add(u64::from(d)).ok_or(IntError::Range)?;
    }
    if underscores && !underscore_ok(s0) {
        return Err(IntError::Syntax);
    }
    Ok(n)
}

/// `strconv.ParseInt(s, 0, 64)`.
pub(crate) fn parse_int(s: &str) -> Result<i64, IntError> {
    let mut b = s.as_bytes();
    if b.is_empty() {
        return Err(IntError::Syntax);
    }
    let mut neg = false;
    if b[0] == b'+' {
        b = &b[1..];
    } else if b[0] == b'-' {
        neg = true;
        b = &b[1..];
    }
    let un = match parse_uint_base0(b) {
        Ok(n) => n,
        Err(IntError::Range) => u64::MAX,
        Err(e) => return Err(e),
    };
    let cutoff = 1u64 << 63;
    if !neg && un >= cutoff {
        return Err(IntError::Range);
    }
    if neg && un > cutoff {
        return Err(IntError::Range);
    }
    Ok(if neg {
        (un as i64).wrapping_neg()
    } else {
        un as i64
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serf_wire::msgpack::{Flavor, Writer};

    #[test]
    fn quote_like_strconv() {
        assert_eq!(quote_str("nobody"), "\"nobody\"");
        assert_eq!(quote_str("a\"b\\c"), "\"a\\\"b\\\\c\"");
        assert_eq!(quote_str("\n\t\u{1b}\u{7f}"), "\"\\n\\t\\x1b\\x7f\"");
        assert_eq!(quote_str("héllo ☃"), "\"héllo ☃\"");
        assert_eq!(quote_str("\u{a0}\u{200b}"), "\"\\u00a0\\u200b\"");
        assert_eq!(quote(b"a\xffb"), "\"a\\xffb\"");
    }

    #[test]
    fn json_like_encoding_json() {
        assert_eq!(json_string(b"x y"), "\"x y\"");
        assert_eq!(json_string(b"<a&b>"), "\"\\u003ca\\u0026b\\u003e\"");
        assert_eq!(
            json_string(b"\x08\x0c\n\x01"),
            "\"\\u0008\\u000c\\n\\u0001\""
        );
        assert_eq!(json_string(b"a\xffb"), "\"a\\ufffdb\"");
        assert_eq!(json_string("\u{2028}é".as_bytes()), "\"\\u2028é\"");
        let m = vec![
            (b"role".to_vec(), b"web".to_vec()),
            (b"dc".to_vec(), b"east".to_vec()),
        ];
        assert_eq!(
            json_str_map(&m, 1),
            "{\n    \"dc\": \"east\",\n    \"role\": \"web\"\n  }"
        );
        assert_eq!(json_str_map(&[], 1), "{}");
        let dup = vec![
            (b"b".to_vec(), b"1".to_vec()),
            (b"a".to_vec(), b"x".to_vec()),
            (b"b".to_vec(), b"2".to_vec()),
        ];
        assert_eq!(
            json_str_map(&dup, 0),
            "{\n  \"a\": \"x\",\n  \"b\": \"2\"\n}"
        );
    }

    #[test]
    fn durations_like_go() {
        assert_eq!(parse_duration("2s"), Some(2_000_000_000));
        assert_eq!(parse_duration("1h30m"), Some(5_400_000_000_000));
        assert_eq!(parse_duration("1.5s"), Some(1_500_000_000));
        assert_eq!(parse_duration(".5ms"), Some(500_000));
        assert_eq!(parse_duration("-1s"), Some(-1_000_000_000));
        assert_eq!(parse_duration("0"), Some(0));
        assert_eq!(parse_duration("10µs"), Some(10_000));
        assert_eq!(parse_duration(""), None);
        assert_eq!(parse_duration("5"), None);
        assert_eq!(parse_duration("1x"), None);
        assert_eq!(parse_duration("."), None);
        assert_eq!(parse_duration("1s2"), None);
        assert_eq!(parse_duration("9999999999h"), None);
    }

    #[test]
    fn ints_like_parseint_base0() {
        assert_eq!(parse_int("300"), Ok(300));
        assert_eq!(parse_int("-1"), Ok(-1));
        assert_eq!(parse_int("0x10"), Ok(16));
        assert_eq!(parse_int("010"), Ok(8));
        assert_eq!(parse_int("0b11"), Ok(3));
        assert_eq!(parse_int("1_000"), Ok(1000));
        assert_eq!(parse_int("1__0"), Err(IntError::Syntax));
        assert_eq!(parse_int("abc"), Err(IntError::Syntax));
        assert_eq!(parse_int(""), Err(IntError::Syntax));
        assert_eq!(parse_int("08"), Err(IntError::Syntax));
        assert_eq!(parse_int("9223372036854775808"), Err(IntError::Range));
        assert_eq!(parse_int("-9223372036854775808"), Ok(i64::MIN));
        assert_eq!(parse_int("99999999999999999999x"), Err(IntError::Range));
    }

    #[test]
    fn floats_like_percent_v() {
        assert_eq!(fmt_float_g(1.0), "1");
        assert_eq!(fmt_float_g(0.5), "0.5");
        assert_eq!(fmt_float_g(1e21), "1e+21");
        assert_eq!(fmt_float_g(123456789.0), "1.23456789e+08");
        assert_eq!(fmt_float_g(100000.0), "100000");
        assert_eq!(fmt_float_g(1e6), "1e+06");
        assert_eq!(fmt_float_g(1e-5), "1e-05");
        assert_eq!(fmt_float_g(0.0001), "0.0001");
        assert_eq!(fmt_float_g(-2.5), "-2.5");
    }

    #[test]
    fn sharp_v_of_stream_records() {
        let mut w = Writer::with_flavor(Flavor::Rpc);
        w.map(2).str("Members").array(1);
        w.map(4).str("Addr").bytes(&[127, 0, 0, 1]);
        w.str("Port").uint(17947).str("Name").str("beta");
        w.str("Tags").map(1).str("role").str("db");
        w.str("LTime").uint(200);
        let buf = w.into_vec();
        let v = GoValue::decode(&mut Reader::new(&buf)).expect("decodes");
        let GoValue::Map(entries) = v else {
            panic!("not a map")
        };
        assert_eq!(
            entries[0].1.sharp_v(),
            "[]interface {}{map[interface {}]interface {}{\"Addr\":[]uint8{0x7f, 0x0, 0x0, 0x1}, \"Name\":\"beta\", \"Port\":0x461b, \"Tags\":map[interface {}]interface {}{\"role\":\"db\"}}}"
        );
        assert_eq!(entries[1].1.sharp_v(), "0xc8");
        assert_eq!(GoValue::Int(7).sharp_v(), "7");
        assert_eq!(GoValue::Nil.sharp_v(), "<nil>");
        assert_eq!(
            GoValue::Bytes(b"pay".to_vec()).sharp_v(),
            "[]byte{0x70, 0x61, 0x79}"
        );
        assert_eq!(GoValue::Bytes(Vec::new()).sharp_v(), "[]byte{}");
        assert_eq!(GoValue::Str(b"user".to_vec()).sharp_v(), "\"user\"");
        assert_eq!(
            GoValue::Array(vec![GoValue::Nil]).sharp_v(),
            "[]interface {}{interface {}(nil)}"
        );
    }

    #[test]
    fn sprintf_without_args() {
        assert_eq!(sprintf_noargs("agent:\n"), "agent:\n");
        assert_eq!(
            sprintf_noargs("a%%b%d%5.2f%"),
            "a%b%!d(MISSING)%!f(MISSING)%!(NOVERB)"
        );
    }
}
