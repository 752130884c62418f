//! Go `compress/lzw` (LSB order, 8-bit literals), with a hard cap on decompressed size.

use crate::Error;
use weezl::{decode::Decoder, encode::Encoder, BitOrder, LzwStatus};

/// LZW-compresses `data` as Go does.
pub fn compress(data: &[u8]) -> Result<Vec<u8>, Error> {
    Encoder::new(BitOrder::Lsb, 8)
        .encode(data)
        .map_err(|_| Error::Malformed("lzw encode failed"))
}

/// Decompresses at most `cap` bytes; more is an error.
pub fn decompress(data: &[u8], cap: usize) -> Result<Vec<u8>, Error> {
    let mut dec = Decoder::new(BitOrder::Lsb, 8);
    let mut out = Vec::new();
    let mut chunk = vec![0u8; 16 * 1024];
    let mut input = data;
    loop {
        let r = dec.decode_bytes(input, &mut chunk);
        let st = r.status.map_err(|_| Error::Malformed("invalid lzw data"))?;
        input = &input[r.consumed_in..];
        if out.len() + r.consumed_out > cap {
            return Err(Error::Limit("decompressed size over limit"));
        }
        out.extend_from_slice(&chunk[..r.consumed_out]);
        match st {
            LzwStatus::Done => return Ok(out),
            LzwStatus::NoProgress => {
                if input.is_empty() {
                    // Go's reader accepts a stream that ends without the EOF code only as an
                    // unexpected EOF; be lenient when every input byte was used.
                    return Ok(out);
                }
                return Err(Error::Malformed("lzw made no progress"));
            }
            // `Ok` means progress (input read, output written or state advanced) even with
            // nothing written: the first call only buffers up to 8 input bytes, so stopping
            // here on "no output, no input left" decoded every stream of <= 8 bytes as empty.
            // Keep going until `Done` or `NoProgress`.
            LzwStatus::Ok => {}
        }
    }
}
