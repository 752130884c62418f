//! go-msgpack 0.5.x compatible MessagePack.
//!
//! [`Writer`] writes what Go's `codec.MsgpackHandle{}` writes for memberlist and Serf gossip:
//! old-spec raw strings only (`a0..bf`, `da`, `db`; never `d9` or bin), smallest integer
//! forms with non-negative values unsigned, `cb` floats. With [`Flavor::Rpc`] it writes what
//! the agent RPC handle (`WriteExt: true`) writes: `d9` for 32..255-byte strings and the bin
//! family for byte slices.
//!
//! [`Reader`] is a cursor over a byte slice that decodes leniently (any string or bin form
//! for bytes, any integer form that fits, `nil` as zero) and strictly bounds what it does:
//! it never allocates more than the input could describe, and nesting is limited to
//! [`MAX_DEPTH`]. Running out of input is reported as [`Error::Eof`], which stream readers
//! use to ask for more bytes.

use crate::Error;

/// Deepest nesting of arrays and maps a [`Reader`] accepts.
pub const MAX_DEPTH: usize = 32;

/// Which of Go's two msgpack handles to imitate when writing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Flavor {
    /// memberlist/Serf gossip: raw strings only, byte slices are raw strings.
    #[default]
    Gossip,
    /// Agent RPC (`WriteExt: true`): `d9` str8 and `c4..c6` bin for byte slices.
    Rpc,
}

/// Appends msgpack values to a `Vec<u8>`.
#[derive(Debug, Default)]
pub struct Writer {
    /// The encoded bytes so far.
    pub buf: Vec<u8>,
    flavor: Flavor,
}

impl Writer {
    /// A gossip-flavoured writer.
    pub fn new() -> Self {
        Self::default()
    }

    /// A writer of the given flavour.
    pub fn with_flavor(flavor: Flavor) -> Self {
        Writer {
            buf: Vec::new(),
            flavor,
        }
    }

    /// A gossip writer appending to `buf`.
    pub fn from_vec(buf: Vec<u8>) -> Self {
        Writer {
            buf,
            flavor: Flavor::Gossip,
        }
    }

    /// The bytes written.
    pub fn into_vec(self) -> Vec<u8> {
        self.buf
    }

    /// Raw bytes, unframed.
    pub fn raw(&mut self, b: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(b);
        self
    }

    /// `nil`.
    pub fn nil(&mut self) -> &mut Self {
        self.buf.push(0xc0);
        self
    }

    /// A bool.
    pub fn bool(&mut self, v: bool) -> &mut Self {
        self.buf.push(if v { 0xc3 } else { 0xc2 });
        self
    }

    /// An unsigned integer in its smallest form.
    pub fn uint(&mut self, v: u64) -> &mut Self {
        if v < 128 {
            self.buf.push(v as u8);
        } else if v < 256 {
            self.buf.extend_from_slice(&[0xcc, v as u8]);
        } else if v < 65536 {
            self.buf.push(0xcd);
            self.buf.extend_from_slice(&(v as u16).to_be_bytes());
        } else if v < (1 << 32) {
            self.buf.push(0xce);
            self.buf.extend_from_slice(&(v as u32).to_be_bytes());
        } else {
            self.buf.push(0xcf);
            self.buf.extend_from_slice(&v.to_be_bytes());
        }
        self
    }

    /// A signed integer: non-negative values are written unsigned, as Go does.
    pub fn int(&mut self, v: i64) -> &mut Self {
        if v >= 0 {
            return self.uint(v as u64);
        }
        if v >= -32 {
            self.buf.push(v as i8 as u8);
        } else if v >= i64::from(i8::MIN) {
            self.buf.extend_from_slice(&[0xd0, v as i8 as u8]);
        } else if v >= i64::from(i16::MIN) {
            self.buf.push(0xd1);
            self.buf.extend_from_slice(&(v as i16).to_be_bytes());
        } else if v >= i64::from(i32::MIN) {
            self.buf.push(0xd2);
            self.buf.extend_from_slice(&(v as i32).to_be_bytes());
        } else {
            self.buf.push(0xd3);
            self.buf.extend_from_slice(&v.to_be_bytes());
        }
        self
    }

    /// A float64 (`cb`).
    pub fn f64(&mut self, v: f64) -> &mut Self {
        self.buf.push(0xcb);
        self.buf.extend_from_slice(&v.to_bits().to_be_bytes());
        self
    }

    /// A string (raw family; `d9` allowed in the RPC flavour).
    pub fn str(&mut self, s: &str) -> &mut Self {
        self.str_header(s.len());
        self.buf.extend_from_slice(s.as_bytes());
        self
    }

    fn str_header(&mut self, n: usize) {
        if n < 32 {
            self.buf.push(0xa0 | n as u8);
        } else if n < 256 && self.flavor == Flavor::Rpc {
            self.buf.extend_from_slice(&[0xd9, n as u8]);
        } else if n < 65536 {
            self.buf.push(0xda);
            self.buf.extend_from_slice(&(n as u16).to_be_bytes());
        } else {
            self.buf.push(0xdb);
            self.buf.extend_from_slice(&(n as u32).to_be_bytes());
        }
    }

    /// A byte slice: a raw string in the gossip flavour, bin in the RPC flavour.
    pub fn bytes(&mut self, b: &[u8]) -> &mut Self {
        match self.flavor {
            Flavor::Gossip => self.str_header(b.len()),
            Flavor::Rpc => {
                let n = b.len();
                if n < 256 {
                    self.buf.extend_from_slice(&[0xc4, n as u8]);
                } else if n < 65536 {
                    self.buf.push(0xc5);
                    self.buf.extend_from_slice(&(n as u16).to_be_bytes());
                } else {
                    self.buf.push(0xc6);
                    self.buf.extend_from_slice(&(n as u32).to_be_bytes());
                }
            }
        }
        self.buf.extend_from_slice(b);
        self
    }

    /// A byte slice that Go holds as `nil` when empty (`Meta`, `Payload`).
    pub fn opt_bytes(&mut self, b: &[u8]) -> &mut Self {
        if b.is_empty() {
            self.nil()
        } else {
            self.bytes(b)
        }
    }

    /// An array header.
    pub fn array(&mut self, n: usize) -> &mut Self {
        if n < 16 {
            self.buf.push(0x90 | n as u8);
        } else if n < 65536 {
            self.buf.push(0xdc);
            self.buf.extend_from_slice(&(n as u16).to_be_bytes());
        } else {
            self.buf.push(0xdd);
            self.buf.extend_from_slice(&(n as u32).to_be_bytes());
        }
        self
    }

    /// A map header.
    pub fn map(&mut self, n: usize) -> &mut Self {
        if n < 16 {
            self.buf.push(0x80 | n as u8);
        } else if n < 65536 {
            self.buf.push(0xde);
            self.buf.extend_from_slice(&(n as u16).to_be_bytes());
        } else {
            self.buf.push(0xdf);
            self.buf.extend_from_slice(&(n as u32).to_be_bytes());
        }
        self
    }

    /// A `map[string]string` (order as given; Go's is random).
    pub fn str_map<'a, I>(&mut self, n: usize, it: I) -> &mut Self
    where
        I: IntoIterator<Item = (&'a str, &'a str)>,
    {
        self.map(n);
        for (k, v) in it {
            self.str(k).str(v);
        }
        self
    }
}

/// A bounded cursor over msgpack bytes.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

/// The kind of the next value, for callers that accept several shapes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// nil
    Nil,
    /// true/false
    Bool,
    /// any integer
    Int,
    /// float32/64
    Float,
    /// str or raw
    Str,
    /// bin
    Bin,
    /// array
    Array,
    /// map
    Map,
    /// ext / fixext
    Ext,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    /// Bytes consumed so far.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Bytes not yet consumed.
    pub fn remaining(&self) -> &'a [u8] {
        &self.buf[self.pos..]
    }

    fn byte(&mut self) -> Result<u8, Error> {
        let b = *self.buf.get(self.pos).ok_or(Error::Eof)?;
        self.pos += 1;
        Ok(b)
    }

    /// Takes `n` raw bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], Error> {
        let end = self.pos.checked_add(n).ok_or(Error::Eof)?;
        let s = self.buf.get(self.pos..end).ok_or(Error::Eof)?;
        self.pos = end;
        Ok(s)
    }

    fn be(&mut self, n: usize) -> Result<u64, Error> {
        let s = self.take(n)?;
        Ok(s.iter().fold(0u64, |a, &b| (a << 8) | u64::from(b)))
    }

    /// The kind of the next value without consuming it.
    pub fn peek_kind(&self) -> Result<Kind, Error> {
        let b = *self.buf.get(self.pos).ok_or(Error::Eof)?;
        Ok(match b {
            0x00..=0x7f | 0xe0..=0xff | 0xcc..=0xd3 => Kind::Int,
            0x80..=0x8f | 0xde | 0xdf => Kind::Map,
            0x90..=0x9f | 0xdc | 0xdd => Kind::Array,
            0xa0..=0xbf | 0xd9..=0xdb => Kind::Str,
            0xc0 => Kind::Nil,
            0xc2 | 0xc3 => Kind::Bool,
            0xc4..=0xc6 => Kind::Bin,
            0xca | 0xcb => Kind::Float,
            0xc7..=0xc9 | 0xd4..=0xd8 => Kind::Ext,
            0xc1 => return Err(Error::Malformed("reserved msgpack byte c1")),
        })
    }

    /// Consumes a `nil` if one is next.
    pub fn try_nil(&mut self) -> Result<bool, Error> {
        if self.peek_kind()? == Kind::Nil {
            self.pos += 1;
            Ok(true)
        } else {
            Ok(false)
        }
    }

    /// A map header (nil reads as an empty map). Counts are checked against the input.
    pub fn map_len(&mut self) -> Result<usize, Error> {
        let b = self.byte()?;
        let n = match b {
            0x80..=0x8f => (b & 0x0f) as usize,
            0xde => self.be(2)? as usize,
            0xdf => self.be(4)? as usize,
            0xc0 => 0,
            _ => return Err(Error::Malformed("expected a map")),
        };
        // Every entry takes at least two bytes.
        if n > self.buf.len() - self.pos {
            return Err(Error::Eof);
        }
        Ok(n)
    }

    /// An array header (nil reads as empty).
    pub fn array_len(&mut self) -> Result<usize, Error> {
        let b = self.byte()?;
        let n = match b {
            0x90..=0x9f => (b & 0x0f) as usize,
            0xdc => self.be(2)? as usize,
            0xdd => self.be(4)? as usize,
            0xc0 => 0,
            _ => return Err(Error::Malformed("expected an array")),
        };
        if n > self.buf.len() - self.pos {
            return Err(Error::Eof);
        }
        Ok(n)
    }

    /// Any integer that fits in a u64 (nil is 0, bool is 0/1 as Go allows).
    pub fn uint(&mut self) -> Result<u64, Error> {
        let v = self.int_any()?;
        u64::try_from(v).map_err(|_| Error::Malformed("negative value for an unsigned field"))
    }

    /// Any integer as i128 (covers u64 and i64).
    pub fn int_any(&mut self) -> Result<i128, Error> {
        let b = self.byte()?;
        Ok(match b {
            0x00..=0x7f => i128::from(b),
            0xe0..=0xff => i128::from(b as i8),
            0xcc => i128::from(self.be(1)?),
            0xcd => i128::from(self.be(2)?),
            0xce => i128::from(self.be(4)?),
            0xcf => i128::from(self.be(8)?),
            0xd0 => i128::from(self.be(1)? as u8 as i8),
            0xd1 => i128::from(self.be(2)? as u16 as i16),
            0xd2 => i128::from(self.be(4)? as u32 as i32),
            0xd3 => i128::from(self.be(8)? as i64),
            0xc0 | 0xc2 => 0,
            0xc3 => 1,
            _ => return Err(Error::Malformed("expected an integer")),
        })
    }

    /// A u32 field.
    pub fn u32(&mut self) -> Result<u32, Error> {
        u32::try_from(self.uint()?).map_err(|_| Error::Malformed("integer overflows u32"))
    }

    /// A u16 field.
    pub fn u16(&mut self) -> Result<u16, Error> {
        u16::try_from(self.uint()?).map_err(|_| Error::Malformed("integer overflows u16"))
    }

    /// A u8 field.
    pub fn u8(&mut self) -> Result<u8, Error> {
        u8::try_from(self.uint()?).map_err(|_| Error::Malformed("integer overflows u8"))
    }

    /// An i64 field.
    pub fn i64(&mut self) -> Result<i64, Error> {
        i64::try_from(self.int_any()?).map_err(|_| Error::Malformed("integer overflows i64"))
    }

    /// A Go `int` used as a length (non-negative, fits usize).
    pub fn len_field(&mut self) -> Result<usize, Error> {
        let v = self.int_any()?;
        usize::try_from(v).map_err(|_| Error::Malformed("length out of range"))
    }

    /// A bool (nil is false, 0/1 accepted).
    pub fn bool(&mut self) -> Result<bool, Error> {
        let b = self.byte()?;
        match b {
            0xc2 | 0xc0 | 0x00 => Ok(false),
            0xc3 | 0x01 => Ok(true),
            _ => Err(Error::Malformed("expected a bool")),
        }
    }

    /// A float (f32 widened; integers accepted).
    pub fn f64(&mut self) -> Result<f64, Error> {
        match self.peek_kind()? {
            Kind::Float => {
                let b = self.byte()?;
                if b == 0xca {
                    Ok(f64::from(f32::from_bits(self.be(4)? as u32)))
                } else {
                    Ok(f64::from_bits(self.be(8)?))
                }
            }
            Kind::Nil => {
                self.pos += 1;
                Ok(0.0)
            }
            _ => Ok(self.i64()? as f64),
        }
    }

    /// String bytes (str family or nil). Bin is refused, as Go refuses it for strings.
    pub fn str_bytes(&mut self) -> Result<&'a [u8], Error> {
        let b = self.byte()?;
        let n = match b {
            0xa0..=0xbf => (b & 0x1f) as usize,
            0xd9 => self.be(1)? as usize,
            0xda => self.be(2)? as usize,
            0xdb => self.be(4)? as usize,
            0xc0 => 0,
            _ => return Err(Error::Malformed("expected a string")),
        };
        self.take(n)
    }

    /// A UTF-8 string (invalid UTF-8 is replaced, as Go strings may hold anything).
    pub fn string(&mut self) -> Result<String, Error> {
        Ok(String::from_utf8_lossy(self.str_bytes()?).into_owned())
    }

    /// A byte slice: str, bin, nil, or an array of small integers.
    pub fn bytes(&mut self) -> Result<&'a [u8], Error> {
        let b = *self.buf.get(self.pos).ok_or(Error::Eof)?;
        match b {
            0xc4..=0xc6 => {
                self.pos += 1;
                let n = match b {
                    0xc4 => self.be(1)?,
                    0xc5 => self.be(2)?,
                    _ => self.be(4)?,
                } as usize;
                self.take(n)
            }
            _ => self.str_bytes(),
        }
    }

    /// An owned byte vector; arrays of small ints are accepted too.
    pub fn byte_vec(&mut self) -> Result<Vec<u8>, Error> {
        if self.peek_kind()? == Kind::Array {
            let n = self.array_len()?;
            let mut v = Vec::with_capacity(n);
            for _ in 0..n {
                v.push(self.u8()?);
            }
            return Ok(v);
        }
        Ok(self.bytes()?.to_vec())
    }

    /// A `map[string]string`.
    pub fn str_map(&mut self) -> Result<Vec<(String, String)>, Error> {
        let n = self.map_len()?;
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let k = self.string()?;
            let v = self.string()?;
            out.push((k, v));
        }
        Ok(out)
    }

    /// A `[]string`.
    pub fn str_array(&mut self) -> Result<Vec<String>, Error> {
        let n = self.array_len()?;
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(self.string()?);
        }
        Ok(out)
    }

    /// Skips one value of any type, bounded in depth.
    pub fn skip(&mut self) -> Result<(), Error> {
        self.skip_depth(0)
    }

    fn skip_depth(&mut self, depth: usize) -> Result<(), Error> {
        if depth > MAX_DEPTH {
            return Err(Error::Limit("msgpack nesting too deep"));
        }
        let b = self.byte()?;
        match b {
            0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => {}
            0x80..=0x8f | 0xde | 0xdf => {
                self.pos -= 1;
                let n = self.map_len()?;
                for _ in 0..n * 2 {
                    self.skip_depth(depth + 1)?;
                }
            }
            0x90..=0x9f | 0xdc | 0xdd => {
                self.pos -= 1;
                let n = self.array_len()?;
                for _ in 0..n {
                    self.skip_depth(depth + 1)?;
                }
            }
            0xa0..=0xbf => {
                self.take((b & 0x1f) as usize)?;
            }
            0xcc | 0xd0 => {
                self.take(1)?;
            }
            0xcd | 0xd1 => {
                self.take(2)?;
            }
            0xce | 0xd2 | 0xca => {
                self.take(4)?;
            }
            0xcf | 0xd3 | 0xcb => {
                self.take(8)?;
            }
            0xd9 | 0xc4 => {
                let n = self.be(1)? as usize;
                self.take(n)?;
            }
            0xda | 0xc5 => {
                let n = self.be(2)? as usize;
                self.take(n)?;
            }
            0xdb | 0xc6 => {
                let n = self.be(4)? as usize;
                self.take(n)?;
            }
            0xd4 => {
                self.take(2)?;
            }
            0xd5 => {
                self.take(3)?;
            }
            0xd6 => {
                self.take(5)?;
            }
            0xd7 => {
                self.take(9)?;
            }
            0xd8 => {
                self.take(17)?;
            }
            0xc7 => {
                let n = self.be(1)? as usize;
                self.take(n + 1)?;
            }
            0xc8 => {
                let n = self.be(2)? as usize;
                self.take(n + 1)?;
            }
            0xc9 => {
                // u32::MAX + 1 overflows a 32-bit usize; saturating makes it a plain Eof.
                let n = self.be(4)? as usize;
                self.take(n.saturating_add(1))?;
            }
            0xc1 => return Err(Error::Malformed("reserved msgpack byte c1")),
        }
        Ok(())
    }

    /// Iterates the keys of a struct map, calling `f` for each key; `f` must consume the value
    /// (returning `false` makes the reader skip it).
    pub fn struct_fields<F>(&mut self, mut f: F) -> Result<(), Error>
    where
        F: FnMut(&[u8], &mut Self) -> Result<bool, Error>,
    {
        if self.peek_kind()? == Kind::Array {
            return Err(Error::Malformed("struct encoded as array is not supported"));
        }
        let n = self.map_len()?;
        for _ in 0..n {
            let key = self.str_bytes()?;
            if !f(key, self)? {
                self.skip()?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_use_smallest_form() {
        let mut w = Writer::new();
        w.uint(1).uint(200).uint(27946).uint(70000).uint(1 << 40);
        w.int(-1).int(-100).int(-1000).int(5);
        assert_eq!(
            w.buf,
            [
                0x01, 0xcc, 200, 0xcd, 0x6d, 0x2a, 0xce, 0, 1, 0x11, 0x70, 0xcf, 0, 0, 1, 0, 0, 0,
                0, 0, 0xff, 0xd0, 0x9c, 0xd1, 0xfc, 0x18, 0x05
            ]
        );
        let mut r = Reader::new(&w.buf);
        assert_eq!(r.uint().ok(), Some(1));
        assert_eq!(r.uint().ok(), Some(200));
        assert_eq!(r.u16().ok(), Some(27946));
        assert_eq!(r.u32().ok(), Some(70000));
        assert_eq!(r.uint().ok(), Some(1 << 40));
        assert_eq!(r.i64().ok(), Some(-1));
        assert_eq!(r.i64().ok(), Some(-100));
        assert_eq!(r.i64().ok(), Some(-1000));
        assert!(r.u8().is_ok());
    }

    #[test]
    fn strings_never_use_str8_in_gossip() {
        let s = "x".repeat(40);
        let mut w = Writer::new();
        w.str(&s);
        assert_eq!(&w.buf[..3], &[0xda, 0, 40]);
        let mut w = Writer::with_flavor(Flavor::Rpc);
        w.str(&s).bytes(b"ab");
        assert_eq!(&w.buf[..2], &[0xd9, 40]);
        assert_eq!(&w.buf[42..], &[0xc4, 2, b'a', b'b']);
    }

    #[test]
    fn skip_refuses_deep_nesting() {
        let buf = vec![0x91u8; 100];
        assert!(Reader::new(&buf).skip().is_err());
    }

    #[test]
    fn huge_counts_are_eof_not_allocation() {
        let buf = [0xdd, 0xff, 0xff, 0xff, 0xff];
        assert_eq!(Reader::new(&buf).array_len(), Err(Error::Eof));
    }
}
