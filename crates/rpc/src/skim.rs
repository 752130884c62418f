//! Reading an oversized msgpack object without holding it: the object is walked as it
//! streams in and copied with every string, binary and extension value longer than
//! [`TRUNCATE`] cut down to that length (its header rewritten to match).
//!
//! Go's agent decodes any request, however large, and then answers with its usual error
//! (`user event exceeds configured limit of 512 bytes before encoding`); its memory grows
//! by the declared size. We answer the same way with memory bounded: every limit a
//! request can break (user events at most 9 KiB, queries, tags, keys) is far below
//! [`TRUNCATE`], so a cut value still breaks it and draws the same error text.

/// Longest string, binary or extension value kept when an object is skimmed.
pub const TRUNCATE: usize = 64 * 1024;

/// The largest skimmed copy kept (many small values still add up).
pub const MAX_SKIMMED: usize = 2 * 1024 * 1024;

/// Why skimming failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SkimError {
    /// Not msgpack (a reserved type byte).
    Malformed,
    /// Even the skimmed copy grew beyond [`MAX_SKIMMED`].
    TooLarge,
}

/// An incremental walker over one msgpack object.
#[derive(Debug)]
pub(crate) struct Skimmer {
    out: Vec<u8>,
    /// Whether values are copied to `out` (skimming) or only walked (finding where an
    /// object ends, see [`Skimmer::boundary`]).
    copying: bool,
    /// Objects still to read (containers add their children).
    pending: u64,
    /// Payload bytes of the current value still to copy.
    copy: u64,
    /// Payload bytes of the current value to drop after the copied part.
    skip: u64,
    /// A header split across reads.
    hdr: [u8; 9],
    /// Bytes of `hdr` in use.
    hdr_len: usize,
}

/// What a header announces.
enum Head {
    /// A value whose bytes are all in the header (nil, bool, numbers).
    Scalar,
    /// A string (`str`), binary (`bin`) or extension value with `len` payload bytes.
    Bytes { kind: u8, len: u64 },
    /// A container with `children` objects after it.
    Container { children: u64 },
}

/// The header length for a first byte, or `None` for the reserved byte 0xc1.
fn header_len(b: u8) -> Option<usize> {
    Some(match b {
        0x00..=0xbf | 0xc0 | 0xc2 | 0xc3 | 0xe0..=0xff => 1,
        0xc4 | 0xd9 => 2,
        0xc5 | 0xda | 0xdc | 0xde => 3,
        0xc6 | 0xdb | 0xdd | 0xdf => 5,
        0xc7 => 3,
        0xc8 => 4,
        0xc9 => 6,
        0xca => 5,
        0xcb => 9,
        0xcc | 0xd0 => 2,
        0xcd | 0xd1 => 3,
        0xce | 0xd2 => 5,
        0xcf | 0xd3 => 9,
        0xd4..=0xd8 => 2,
        0xc1 => return None,
    })
}

fn be(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b))
}

fn parse(h: &[u8]) -> Head {
    let b = h[0];
    match b {
        0x80..=0x8f => Head::Container {
            children: 2 * u64::from(b & 0x0f),
        },
        0x90..=0x9f => Head::Container {
            children: u64::from(b & 0x0f),
        },
        0xa0..=0xbf => Head::Bytes {
            kind: 0xdb,
            len: u64::from(b & 0x1f),
        },
        0xc4..=0xc6 => Head::Bytes {
            kind: 0xc6,
            len: be(&h[1..]),
        },
        0xd9..=0xdb => Head::Bytes {
            kind: 0xdb,
            len: be(&h[1..]),
        },
        // ext 8/16/32: length, then a type byte that is part of the header.
        0xc7..=0xc9 => Head::Bytes {
            kind: 0xc9,
            len: be(&h[1..h.len() - 1]),
        },
        0xd4..=0xd8 => Head::Bytes {
            kind: 0,
            len: 1 << (b - 0xd4),
        },
        0xdc | 0xdd => Head::Container {
            children: be(&h[1..]),
        },
        0xde | 0xdf => Head::Container {
            children: 2 * be(&h[1..]),
        },
        _ => Head::Scalar,
    }
}

impl Skimmer {
    /// Starts walking one object.
    pub(crate) fn new() -> Self {
        Skimmer {
            out: Vec::new(),
            copying: true,
            pending: 1,
            copy: 0,
            skip: 0,
            hdr: [0; 9],
            hdr_len: 0,
        }
    }

    /// Starts walking one object without copying anything: it only finds where the object
    /// ends, in time linear in the bytes fed, however they are split across reads.
    pub(crate) fn boundary() -> Self {
        Skimmer {
            copying: false,
            ..Skimmer::new()
        }
    }

    /// Whether the object is complete.
    pub(crate) fn done(&self) -> bool {
        self.pending == 0 && self.copy == 0 && self.skip == 0 && self.hdr_len == 0
    }

    /// The skimmed copy.
    pub(crate) fn into_object(self) -> Vec<u8> {
        self.out
    }

    /// Feeds bytes; returns how many belonged to the object (the rest follow it).
    pub(crate) fn feed(&mut self, mut data: &[u8]) -> Result<usize, SkimError> {
        let total = data.len();
        while !data.is_empty() && !self.done() {
            if self.copy > 0 {
                let n = data
                    .len()
                    .min(usize::try_from(self.copy).unwrap_or(usize::MAX));
                if self.copying {
                    self.out.extend_from_slice(&data[..n]);
                }
                self.copy -= n as u64;
                data = &data[n..];
            } else if self.skip > 0 {
                let n = data
                    .len()
                    .min(usize::try_from(self.skip).unwrap_or(usize::MAX));
                self.skip -= n as u64;
                data = &data[n..];
            } else {
                // The first byte tells the header's length (at most 9): checked before
                // storing, so `hdr` never overflows.
                let first = if self.hdr_len == 0 {
                    data[0]
                } else {
                    self.hdr[0]
                };
                let need = header_len(first).ok_or(SkimError::Malformed)?;
                if let Some(slot) = self.hdr.get_mut(self.hdr_len) {
                    *slot = data[0];
                    self.hdr_len += 1;
                }
                data = &data[1..];
                if self.hdr_len < need {
                    continue;
                }
                self.header()?;
            }
            if self.out.len() > MAX_SKIMMED {
                return Err(SkimError::TooLarge);
            }
        }
        Ok(total - data.len())
    }

    /// A complete header is in `hdr`: copy or rewrite it and account for what follows.
    fn header(&mut self) -> Result<(), SkimError> {
        // A copy (9 bytes, no allocation): one header per value, so per-value costs count.
        let hdr = self.hdr;
        let h = &hdr[..self.hdr_len];
        self.hdr_len = 0;
        self.pending -= 1;
        if !self.copying {
            match parse(h) {
                Head::Scalar => {}
                Head::Container { children } => {
                    self.pending = self.pending.saturating_add(children);
                }
                Head::Bytes { len, .. } => self.skip = len,
            }
            return Ok(());
        }
        match parse(h) {
            Head::Scalar => self.out.extend_from_slice(h),
            Head::Container { children } => {
                self.out.extend_from_slice(h);
                self.pending = self.pending.saturating_add(children);
            }
            Head::Bytes { kind, len } => {
                let keep = len.min(TRUNCATE as u64);
                if keep == len {
                    self.out.extend_from_slice(h);
                } else {
                    // Rewritten as the 32-bit form of its family, with the kept length.
                    let n = (keep as u32).to_be_bytes();
                    match kind {
                        0xc9 => {
                            self.out.push(0xc9);
                            self.out.extend_from_slice(&n);
                            self.out.push(h[h.len() - 1]);
                        }
                        k => {
                            self.out.push(k);
                            self.out.extend_from_slice(&n);
                        }
                    }
                }
                self.copy = keep;
                self.skip = len - keep;
            }
        }
        Ok(())
    }
}

/// Skims `chunks` fed one after another, as [`crate::ObjectReader`] does for an oversized
/// object: `Ok(Some((object, used)))` once the object is complete (`used` counts the input
/// bytes that belonged to it), `Ok(None)` while it is incomplete. For the fuzz targets and
/// their seed replay test (`fuzz/` in the repository); not a stable API.
#[doc(hidden)]
pub fn skim_chunks<'a>(
    chunks: impl IntoIterator<Item = &'a [u8]>,
) -> Result<Option<(Vec<u8>, usize)>, &'static str> {
    let mut s = Skimmer::new();
    let mut used = 0usize;
    for chunk in chunks {
        if s.done() {
            break;
        }
        used += s.feed(chunk).map_err(|e| match e {
            SkimError::Malformed => "malformed",
            SkimError::TooLarge => "too large",
        })?;
    }
    Ok(s.done().then(|| (s.into_object(), used)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serf_wire::msgpack::{Flavor, Reader, Writer};

    fn rpc_writer() -> Writer {
        Writer::with_flavor(Flavor::Rpc)
    }

    fn skim_all(bytes: &[u8], chunk: usize) -> (Vec<u8>, usize) {
        let mut s = Skimmer::new();
        let mut used = 0;
        for c in bytes.chunks(chunk) {
            used += s.feed(c).expect("skims");
            if s.done() {
                break;
            }
        }
        assert!(s.done());
        (s.into_object(), used)
    }

    #[test]
    fn small_objects_are_copied_exactly_whatever_the_chunking() {
        let mut w = rpc_writer();
        w.map(3)
            .str("Name")
            .str("deploy")
            .str("Payload")
            .bytes(b"v1")
            .str("Coalesce")
            .bool(true);
        let obj = w.into_vec();
        let mut with_tail = obj.clone();
        with_tail.extend_from_slice(&[0x01, 0x02]);
        for chunk in [1, 2, 3, 7, 100] {
            let (out, used) = skim_all(&with_tail, chunk);
            assert_eq!(out, obj, "chunk {chunk}");
            assert_eq!(used, obj.len(), "chunk {chunk}");
        }
    }

    #[test]
    fn long_values_are_cut_and_stay_valid_msgpack() {
        let big = vec![b'x'; 3 * TRUNCATE + 5];
        let mut w = rpc_writer();
        w.map(2).str("Name").str("ev").str("Payload").bytes(&big);
        let obj = w.into_vec();
        let (out, used) = skim_all(&obj, 4096);
        assert_eq!(used, obj.len());
        assert!(out.len() < TRUNCATE + 64);
        let mut r = Reader::new(&out);
        let mut payload = Vec::new();
        r.struct_fields(|k, r| {
            if k == b"Payload" {
                payload = r.bytes()?.to_vec();
                return Ok(true);
            }
            Ok(false)
        })
        .expect("valid msgpack");
        assert_eq!(payload.len(), TRUNCATE);
    }

    #[test]
    fn reserved_byte_is_malformed_and_runaway_copies_stop() {
        assert_eq!(Skimmer::new().feed(&[0xc1]), Err(SkimError::Malformed));
        // An array of 4 billion nils: the copy outgrows the cap instead of the memory.
        let mut s = Skimmer::new();
        assert_eq!(s.feed(&[0xdd, 0xff, 0xff, 0xff, 0xff]), Ok(5));
        let nils = vec![0xc0; MAX_SKIMMED + 16];
        assert_eq!(s.feed(&nils), Err(SkimError::TooLarge));
    }

    /// Random bytes in random chunks: the skimmer never panics, never reports more bytes
    /// used than it was given, and its copy stays within the cap.
    #[test]
    fn random_input_never_panics() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..2000 {
            let len = (next() % 300) as usize;
            let bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            let mut s = Skimmer::new();
            let mut rest = &bytes[..];
            while !rest.is_empty() && !s.done() {
                let n = 1 + (next() % 17) as usize;
                let (c, r) = rest.split_at(n.min(rest.len()));
                rest = r;
                match s.feed(c) {
                    Ok(used) => assert!(used <= c.len()),
                    Err(_) => break,
                }
            }
            assert!(s.out.len() <= MAX_SKIMMED + TRUNCATE + 16);
        }
    }
}
