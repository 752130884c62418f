//! [`ObjectReader`]: splits a byte stream into whole msgpack objects.

use crate::error::{DecodeError, ReadError};
use crate::skim::{SkimError, Skimmer};
use serf_wire::msgpack::Reader;
use serf_wire::Error as WireError;
use tokio::io::{AsyncRead, AsyncReadExt};

/// Largest object buffered whole. A bigger one is skimmed as it streams in (see
/// [`crate::skim`]): long strings and binaries are cut to [`crate::skim::TRUNCATE`] bytes,
/// so the server can still answer it with Go's error while memory stays bounded.
pub const MAX_OBJECT: usize = 1024 * 1024;

/// Reads whole msgpack objects from a byte stream (the protocol has no framing: an object
/// ends where its msgpack encoding ends).
///
/// Bounded: an object larger than [`MAX_OBJECT`] is skimmed (long values cut), a skimmed
/// copy beyond [`crate::skim::MAX_SKIMMED`] or nesting deeper than
/// [`serf_wire::msgpack::MAX_DEPTH`] is an error; never a panic or an unbounded buffer.
#[derive(Debug)]
pub struct ObjectReader<R> {
    inner: R,
    buf: Vec<u8>,
    /// Walks the object at the front of `buf` as bytes arrive, so finding its end costs
    /// time linear in its size however it is split across reads.
    scan: Skimmer,
    /// Bytes of `buf` already fed to `scan`.
    scanned: usize,
}

impl<R: AsyncRead + Unpin> ObjectReader<R> {
    /// Wraps a reader.
    pub fn new(inner: R) -> Self {
        ObjectReader {
            inner,
            buf: Vec::new(),
            scan: Skimmer::boundary(),
            scanned: 0,
        }
    }

    /// The next complete object's bytes. Cancel-safe: bytes read so far stay buffered.
    pub async fn next(&mut self) -> Result<Vec<u8>, ReadError> {
        let mut chunk = [0u8; 8192];
        loop {
            if self.scanned < self.buf.len() {
                // Only the new bytes are walked; the full check below runs once per object.
                let fed = self.scan.feed(&self.buf[self.scanned..]);
                self.scanned += fed.unwrap_or(0);
                if fed.is_err() || self.scan.done() {
                    self.scan = Skimmer::boundary();
                    self.scanned = 0;
                    let mut r = Reader::new(&self.buf);
                    return match r.skip() {
                        Ok(()) => {
                            let n = r.position();
                            let obj = self.buf[..n].to_vec();
                            self.buf.drain(..n);
                            Ok(obj)
                        }
                        // The walk and the decoder disagree only on input that is not
                        // msgpack.
                        Err(WireError::Eof) => Err(ReadError::Malformed(DecodeError::Msgpack(
                            WireError::Malformed("reserved type byte 0xc1"),
                        ))),
                        Err(e) => Err(ReadError::Malformed(DecodeError::Msgpack(e))),
                    };
                }
            }
            if self.buf.len() > MAX_OBJECT {
                return self.skim().await;
            }
            let n = self.inner.read(&mut chunk).await.map_err(ReadError::Io)?;
            if n == 0 {
                return Err(if self.buf.is_empty() {
                    ReadError::Closed
                } else {
                    ReadError::Truncated
                });
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

impl<R: AsyncRead + Unpin> ObjectReader<R> {
    /// Finishes an oversized object by skimming it: what is buffered first, then the rest
    /// as it arrives. Bytes after the object stay buffered for the next call.
    async fn skim(&mut self) -> Result<Vec<u8>, ReadError> {
        self.scan = Skimmer::boundary();
        self.scanned = 0;
        let mut s = Skimmer::new();
        let skim_err = |e| match e {
            SkimError::Malformed => ReadError::Malformed(DecodeError::Msgpack(
                WireError::Malformed("reserved type byte 0xc1"),
            )),
            SkimError::TooLarge => ReadError::TooLarge,
        };
        let used = s.feed(&self.buf).map_err(skim_err)?;
        self.buf.drain(..used);
        let mut chunk = [0u8; 8192];
        while !s.done() {
            let n = self.inner.read(&mut chunk).await.map_err(ReadError::Io)?;
            if n == 0 {
                return Err(ReadError::Truncated);
            }
            let used = s.feed(&chunk[..n]).map_err(skim_err)?;
            self.buf.extend_from_slice(&chunk[used..n]);
        }
        Ok(s.into_object())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn splits_objects_and_reports_truncation() {
        // {"a": 1} then a fixstr "xy", then half of a str8.
        let bytes: &[u8] = &[0x81, 0xa1, b'a', 0x01, 0xa2, b'x', b'y', 0xd9, 0x05, b'h'];
        let mut r = ObjectReader::new(bytes);
        assert_eq!(r.next().await.ok(), Some(vec![0x81, 0xa1, b'a', 0x01]));
        assert_eq!(r.next().await.ok(), Some(vec![0xa2, b'x', b'y']));
        assert!(matches!(r.next().await, Err(ReadError::Truncated)));
        let mut empty = ObjectReader::new(&[][..]);
        assert!(matches!(empty.next().await, Err(ReadError::Closed)));
        let mut bad = ObjectReader::new(&[0xc1][..]);
        assert!(matches!(bad.next().await, Err(ReadError::Malformed(_))));
    }

    /// Hands out at most `step` bytes per read, as a slow or hostile peer would.
    struct Trickle<'a> {
        data: &'a [u8],
        step: usize,
    }

    impl AsyncRead for Trickle<'_> {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            _cx: &mut std::task::Context<'_>,
            buf: &mut tokio::io::ReadBuf<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            let n = self.step.min(self.data.len()).min(buf.remaining());
            buf.put_slice(&self.data[..n]);
            self.data = &self.data[n..];
            std::task::Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn objects_split_anywhere_come_out_whole() {
        // An array of 3,000 small values, a map, a string split mid-header, then a big
        // array of fixints (each byte a value: the case that was quadratic).
        let mut stream = vec![0xdc, 0x0b, 0xb8];
        stream.extend(std::iter::repeat_n(0x01, 3000));
        let first = stream.len();
        stream.extend_from_slice(&[
            0x82, 0xa1, b'k', 0xd9, 0x03, b'a', b'b', b'c', 0xa1, b'n', 0xc0,
        ]);
        let second = stream.len();
        stream.extend_from_slice(&[0xdd, 0x00, 0x01, 0x86, 0xa0]);
        stream.extend(std::iter::repeat_n(0x7f, 100_000));
        for step in [1, 2, 3, 7, 64, 8192] {
            let mut r = ObjectReader::new(Trickle {
                data: &stream,
                step,
            });
            assert_eq!(
                r.next().await.ok().as_deref(),
                Some(&stream[..first]),
                "step {step}"
            );
            assert_eq!(r.next().await.ok().as_deref(), Some(&stream[first..second]));
            assert_eq!(r.next().await.ok().as_deref(), Some(&stream[second..]));
            assert!(matches!(r.next().await, Err(ReadError::Closed)));
        }
        // A reserved byte inside a container is reported once the walk reaches it.
        let mut bad = ObjectReader::new(Trickle {
            data: &[0x92, 0x01, 0xc1, 0x01],
            step: 1,
        });
        assert!(matches!(bad.next().await, Err(ReadError::Malformed(_))));
    }
}
