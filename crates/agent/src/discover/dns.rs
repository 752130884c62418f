//! The DNS message codec mDNS discovery needs: names (with `miekg/dns`-exact
//! compression when packing), questions, PTR/SRV/TXT/A/AAAA records, messages.

use super::*;

/// A domain name as labels (without the root label).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct Name(pub(super) Vec<Vec<u8>>);

impl Name {
    /// Parses a dotted name (the trailing dot is optional), as `miekg/dns` packs a plain
    /// string: each dot ends a label; empty or over-long labels are refused.
    pub(super) fn parse(s: &str) -> Result<Name, String> {
        let s = s.strip_suffix('.').unwrap_or(s);
        if s.is_empty() {
            return Ok(Name(Vec::new()));
        }
        let labels: Vec<Vec<u8>> = s.split('.').map(|l| l.as_bytes().to_vec()).collect();
        let name = Name(labels);
        name.check()?;
        Ok(name)
    }

    pub(super) fn check(&self) -> Result<(), String> {
        let mut total = 1usize;
        for l in &self.0 {
            if l.is_empty() {
                return Err("empty label".to_string());
            }
            if l.len() > 63 {
                return Err("label longer than 63 bytes".to_string());
            }
            total += l.len() + 1;
        }
        if total > 255 {
            return Err("name longer than 255 bytes".to_string());
        }
        Ok(())
    }

    /// `a.b.c.` (`.` for the root).
    pub(super) fn dotted(&self) -> String {
        if self.0.is_empty() {
            return ".".to_string();
        }
        let mut s = String::new();
        for l in &self.0 {
            s.push_str(&String::from_utf8_lossy(l));
            s.push('.');
        }
        s
    }

    pub(super) fn eq_ignore_case(&self, other: &Name) -> bool {
        self.0.len() == other.0.len()
            && self
                .0
                .iter()
                .zip(&other.0)
                .all(|(a, b)| a.eq_ignore_ascii_case(b))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Question {
    pub(super) name: Name,
    pub(super) qtype: u16,
    pub(super) qclass: u16,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum RData {
    Ptr(Name),
    Srv {
        priority: u16,
        weight: u16,
        port: u16,
        target: Name,
    },
    Txt(Vec<Vec<u8>>),
    A(Ipv4Addr),
    Aaaa(Ipv6Addr),
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Record {
    pub(super) name: Name,
    pub(super) rtype: u16,
    pub(super) class: u16,
    pub(super) ttl: u32,
    pub(super) data: RData,
}

impl Record {
    /// One of our records: class IN (no cache-flush bit), TTL 120.
    pub(super) fn new(name: Name, data: RData) -> Record {
        let rtype = match &data {
            RData::Ptr(_) => TYPE_PTR,
            RData::Srv { .. } => TYPE_SRV,
            RData::Txt(_) => TYPE_TXT,
            RData::A(_) => TYPE_A,
            RData::Aaaa(_) => TYPE_AAAA,
            RData::Other => 0,
        };
        Record {
            name,
            rtype,
            class: CLASS_IN,
            ttl: TTL,
            data,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Message {
    pub(super) id: u16,
    pub(super) flags: u16,
    pub(super) questions: Vec<Question>,
    pub(super) answers: Vec<Record>,
    pub(super) authorities: Vec<Record>,
    pub(super) additionals: Vec<Record>,
}

pub(super) struct Reader<'a> {
    pub(super) buf: &'a [u8],
    pub(super) pos: usize,
}

impl<'a> Reader<'a> {
    pub(super) fn bytes(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.pos.checked_add(n).ok_or("overflow")?;
        let b = self.buf.get(self.pos..end).ok_or("truncated message")?;
        self.pos = end;
        Ok(b)
    }

    pub(super) fn u16(&mut self) -> Result<u16, String> {
        let b = self.bytes(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    pub(super) fn u32(&mut self) -> Result<u32, String> {
        let b = self.bytes(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub(super) fn name(&mut self) -> Result<Name, String> {
        let (name, next) = read_name(self.buf, self.pos)?;
        self.pos = next;
        Ok(name)
    }
}

/// Reads a possibly compressed name at `start`; returns it and the offset after it.
pub(super) fn read_name(buf: &[u8], start: usize) -> Result<(Name, usize), String> {
    let mut labels = Vec::new();
    let mut pos = start;
    let mut next = None;
    let mut jumps = 0;
    let mut total = 1usize;
    loop {
        let len = *buf.get(pos).ok_or("truncated name")?;
        match len & 0xc0 {
            0x00 => {
                if len == 0 {
                    return Ok((Name(labels), next.unwrap_or(pos + 1)));
                }
                let l = usize::from(len);
                let label = buf.get(pos + 1..pos + 1 + l).ok_or("truncated label")?;
                total += l + 1;
                if total > 255 {
                    return Err("name too long".to_string());
                }
                labels.push(label.to_vec());
                pos += 1 + l;
            }
            0xc0 => {
                let lo = *buf.get(pos + 1).ok_or("truncated pointer")?;
                jumps += 1;
                if jumps > 64 {
                    return Err("too many compression pointers".to_string());
                }
                if next.is_none() {
                    next = Some(pos + 2);
                }
                pos = (usize::from(len & 0x3f) << 8) | usize::from(lo);
            }
            _ => return Err("bad label type".to_string()),
        }
    }
}

impl Message {
    pub(super) fn parse(buf: &[u8]) -> Result<Message, String> {
        let mut r = Reader { buf, pos: 0 };
        let id = r.u16()?;
        let flags = r.u16()?;
        let qd = r.u16()?;
        let an = r.u16()?;
        let ns = r.u16()?;
        let ar = r.u16()?;
        let mut questions = Vec::new();
        for _ in 0..qd {
            let name = r.name()?;
            let qtype = r.u16()?;
            let qclass = r.u16()?;
            questions.push(Question {
                name,
                qtype,
                qclass,
            });
        }
        let mut sections = [Vec::new(), Vec::new(), Vec::new()];
        for (section, count) in sections.iter_mut().zip([an, ns, ar]) {
            for _ in 0..count {
                section.push(read_record(&mut r)?);
            }
        }
        let [answers, authorities, additionals] = sections;
        Ok(Message {
            id,
            flags,
            questions,
            answers,
            authorities,
            additionals,
        })
    }
}

pub(super) fn read_record(r: &mut Reader<'_>) -> Result<Record, String> {
    let name = r.name()?;
    let rtype = r.u16()?;
    let class = r.u16()?;
    let ttl = r.u32()?;
    let rdlen = usize::from(r.u16()?);
    let start = r.pos;
    let rdata = r.bytes(rdlen)?;
    let end = r.pos;
    let data = match rtype {
        TYPE_PTR => {
            let (n, after) = read_name(r.buf, start)?;
            if after > end {
                return Err("PTR overruns its data".to_string());
            }
            RData::Ptr(n)
        }
        TYPE_SRV => {
            let f = rdata.get(..6).ok_or("short SRV")?;
            let (target, after) = read_name(r.buf, start + 6)?;
            if after > end {
                return Err("SRV overruns its data".to_string());
            }
            RData::Srv {
                priority: u16::from_be_bytes([f[0], f[1]]),
                weight: u16::from_be_bytes([f[2], f[3]]),
                port: u16::from_be_bytes([f[4], f[5]]),
                target,
            }
        }
        TYPE_TXT => {
            let mut strings = Vec::new();
            let mut p = 0usize;
            while p < rdata.len() {
                let l = usize::from(rdata[p]);
                let s = rdata.get(p + 1..p + 1 + l).ok_or("TXT overruns its data")?;
                strings.push(s.to_vec());
                p += 1 + l;
            }
            RData::Txt(strings)
        }
        TYPE_A => {
            let b: [u8; 4] = rdata.try_into().map_err(|_| "bad A record")?;
            RData::A(Ipv4Addr::from(b))
        }
        TYPE_AAAA => {
            let b: [u8; 16] = rdata.try_into().map_err(|_| "bad AAAA record")?;
            RData::Aaaa(Ipv6Addr::from(b))
        }
        _ => RData::Other,
    };
    Ok(Record {
        name,
        rtype,
        class,
        ttl,
        data,
    })
}

/// Packs messages the way `miekg/dns` does with compression on: every name's suffixes are
/// remembered where they were written (offsets below 16384), owner names and PTR targets
/// are compressed against them, SRV targets are written in full (RFC 2782) but remembered.
pub(super) struct Packer {
    pub(super) buf: Vec<u8>,
    pub(super) seen: HashMap<Vec<Vec<u8>>, u16>,
}

impl Packer {
    pub(super) fn new() -> Packer {
        Packer {
            buf: Vec::with_capacity(512),
            seen: HashMap::new(),
        }
    }

    pub(super) fn u16(&mut self, v: u16) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    pub(super) fn name(&mut self, name: &Name, compress: bool) -> Result<(), String> {
        name.check()?;
        for i in 0..name.0.len() {
            let suffix = &name.0[i..];
            if let Some(&p) = self.seen.get(suffix) {
                if compress {
                    self.u16(0xc000 | p);
                    return Ok(());
                }
            } else if let Ok(off) = u16::try_from(self.buf.len()) {
                if off < 0x4000 {
                    self.seen.insert(suffix.to_vec(), off);
                }
            }
            let label = &name.0[i];
            self.buf
                .push(u8::try_from(label.len()).map_err(|_| "label too long")?);
            self.buf.extend_from_slice(label);
        }
        self.buf.push(0);
        Ok(())
    }

    pub(super) fn record(&mut self, rr: &Record) -> Result<(), String> {
        self.name(&rr.name, true)?;
        self.u16(rr.rtype);
        self.u16(rr.class);
        self.buf.extend_from_slice(&rr.ttl.to_be_bytes());
        let len_at = self.buf.len();
        self.u16(0);
        match &rr.data {
            RData::Ptr(n) => self.name(n, true)?,
            RData::Srv {
                priority,
                weight,
                port,
                target,
            } => {
                self.u16(*priority);
                self.u16(*weight);
                self.u16(*port);
                self.name(target, false)?;
            }
            RData::Txt(strings) => {
                for s in strings {
                    self.buf
                        .push(u8::try_from(s.len()).map_err(|_| "TXT string too long")?);
                    self.buf.extend_from_slice(s);
                }
            }
            RData::A(a) => self.buf.extend_from_slice(&a.octets()),
            RData::Aaaa(a) => self.buf.extend_from_slice(&a.octets()),
            RData::Other => {}
        }
        let rdlen = u16::try_from(self.buf.len() - len_at - 2).map_err(|_| "record too long")?;
        self.buf[len_at..len_at + 2].copy_from_slice(&rdlen.to_be_bytes());
        Ok(())
    }

    pub(super) fn header(&mut self, id: u16, flags: u16, counts: [usize; 4]) -> Result<(), String> {
        self.u16(id);
        self.u16(flags);
        for c in counts {
            self.u16(u16::try_from(c).map_err(|_| "too many records")?);
        }
        Ok(())
    }
}

/// An authoritative response (`0x8400`) with `answers` in the Answer section.
pub(super) fn encode_response(id: u16, answers: &[Record]) -> Result<Vec<u8>, String> {
    let mut p = Packer::new();
    p.header(id, 0x8400, [0, answers.len(), 0, 0])?;
    for rr in answers {
        p.record(rr)?;
    }
    Ok(p.buf)
}

/// A standard query (flags 0, no recursion desired) with one PTR question.
pub(super) fn encode_query(id: u16, name: &Name, unicast: bool) -> Vec<u8> {
    let mut p = Packer::new();
    let _ = p.header(id, 0, [1, 0, 0, 0]);
    if p.name(name, true).is_err() {
        return Vec::new();
    }
    p.u16(TYPE_PTR);
    p.u16(if unicast { CLASS_IN | QU_BIT } else { CLASS_IN });
    p.buf
}
