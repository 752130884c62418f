//! Shared, interned member identities.
//!
//! Every node of a cluster keeps a record of every member, and every record repeats what
//! the whole cluster agrees on: the member's name, address, metadata and versions. The
//! cores keep that part in one immutable [`Info`] per distinct identity, obtained from an
//! [`Interner`], and only the observer's own view (incarnation, state, timers) per record.
//! A node shares one interner between its membership and Serf layers; a simulator that
//! clones one [`Config`](crate::Config) template for thousands of nodes shares one
//! interner among all of them, so a name is stored once per process, not once per pair.
//!
//! The tables hold weak references: an identity nobody records any more is freed, and
//! its table entry is purged on a later insertion.

use std::borrow::Borrow;
use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

/// An instant of driver time (a `Duration` since the driver's origin) in 8 bytes instead
/// of 16: nanoseconds, exact up to 584 years.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Stamp(u64);

impl Stamp {
    /// `d`, saturated at 584 years.
    pub fn new(d: Duration) -> Self {
        Stamp(
            u64::try_from(d.as_nanos())
                .unwrap_or(u64::MAX - 1)
                .min(u64::MAX - 1),
        )
    }

    /// The instant.
    pub fn get(self) -> Duration {
        Duration::from_nanos(self.0)
    }
}

/// An optional [`Stamp`] in 8 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OptStamp(u64);

impl OptStamp {
    /// No instant.
    pub const NONE: OptStamp = OptStamp(u64::MAX);

    /// `d` or none.
    pub fn new(d: Option<Duration>) -> Self {
        d.map_or(Self::NONE, |d| OptStamp(Stamp::new(d).0))
    }

    /// The instant, if any.
    pub fn get(self) -> Option<Duration> {
        (self.0 != u64::MAX).then(|| Duration::from_nanos(self.0))
    }
}

/// A member name: one shared allocation per distinct name (a thin pointer to it).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Name(Arc<String>);

impl Name {
    /// The name.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl std::ops::Deref for Name {
    type Target = str;
    fn deref(&self) -> &str {
        self.0.as_str()
    }
}

impl Borrow<str> for Name {
    fn borrow(&self) -> &str {
        self.0.as_str()
    }
}

impl Borrow<String> for Name {
    fn borrow(&self) -> &String {
        &self.0
    }
}

impl std::fmt::Debug for Name {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

impl std::fmt::Display for Name {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What every observer agrees on about a member (until it changes its address, metadata
/// or versions): immutable and shared.
#[derive(Debug)]
pub struct Info {
    /// Name.
    pub name: Name,
    /// IP.
    pub addr: IpAddr,
    /// Port.
    pub port: u16,
    /// Metadata.
    pub meta: Box<[u8]>,
    /// `[PMin, PMax, PCur, DMin, DMax, DCur]`.
    pub vsn: [u8; 6],
    /// The metadata decoded by the layer above (Serf's tags), on first use.
    decoded: OnceLock<Vec<(String, String)>>,
}

impl Info {
    /// The metadata as decoded by `decode` the first time anyone asked: every record of
    /// this identity shares the result.
    pub fn decoded_meta(
        &self,
        decode: impl FnOnce(&[u8]) -> Vec<(String, String)>,
    ) -> &[(String, String)] {
        self.decoded.get_or_init(|| decode(&self.meta))
    }

    /// Whether this identity has exactly these fields.
    pub fn same(&self, name: &str, addr: IpAddr, port: u16, meta: &[u8], vsn: [u8; 6]) -> bool {
        self.port == port
            && self.vsn == vsn
            && self.addr == addr
            && *self.name == *name
            && *self.meta == *meta
    }
}

fn info_hash(name: &str, addr: IpAddr, port: u16, meta: &[u8], vsn: [u8; 6]) -> u64 {
    let mut h = DefaultHasher::new();
    (name, addr, port, meta, vsn).hash(&mut h);
    h.finish()
}

#[derive(Debug, Default)]
struct Tables {
    names: HashMap<String, Weak<String>>,
    /// Entries left by the last purge (purge again once the table doubled).
    names_kept: usize,
    infos: HashMap<u64, Vec<Weak<Info>>>,
    infos_entries: usize,
    /// See `names_kept`.
    infos_kept: usize,
}

impl Tables {
    fn name(&mut self, s: &str) -> Name {
        if let Some(n) = self.names.get(s).and_then(Weak::upgrade) {
            return Name(n);
        }
        if self.names.len() >= 2 * self.names_kept.max(512) {
            self.names.retain(|_, w| w.strong_count() > 0);
            self.names_kept = self.names.len();
        }
        let n = Arc::new(s.to_string());
        self.names.insert(s.to_string(), Arc::downgrade(&n));
        Name(n)
    }

    fn info(
        &mut self,
        name: &str,
        addr: IpAddr,
        port: u16,
        meta: &[u8],
        vsn: [u8; 6],
    ) -> Arc<Info> {
        let h = info_hash(name, addr, port, meta, vsn);
        if let Some(found) = self.infos.get(&h).and_then(|b| {
            b.iter()
                .filter_map(Weak::upgrade)
                .find(|i| i.same(name, addr, port, meta, vsn))
        }) {
            return found;
        }
        if self.infos_entries >= 2 * self.infos_kept.max(512) {
            self.infos.retain(|_, b| {
                b.retain(|w| w.strong_count() > 0);
                !b.is_empty()
            });
            self.infos_entries = self.infos.values().map(Vec::len).sum();
            self.infos_kept = self.infos_entries;
        }
        let info = Arc::new(Info {
            name: self.name(name),
            addr,
            port,
            meta: meta.into(),
            vsn,
            decoded: OnceLock::new(),
        });
        let bucket = self.infos.entry(h).or_default();
        let before = bucket.len();
        bucket.retain(|w| w.strong_count() > 0);
        self.infos_entries -= before - bucket.len();
        bucket.push(Arc::downgrade(&info));
        self.infos_entries += 1;
        info
    }
}

/// Interning tables for names and identities. Clones share the tables.
#[derive(Debug, Clone, Default)]
pub struct Interner(Arc<Mutex<Tables>>);

impl Interner {
    /// Fresh tables.
    pub fn new() -> Self {
        Self::default()
    }

    fn tables(&self) -> std::sync::MutexGuard<'_, Tables> {
        // A panic elsewhere cannot leave the tables inconsistent: every update is a
        // single insertion or purge.
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The shared [`Name`] for `s`.
    pub fn name(&self, s: &str) -> Name {
        self.tables().name(s)
    }

    /// The shared [`Info`] with these fields.
    pub fn info(
        &self,
        name: &str,
        addr: IpAddr,
        port: u16,
        meta: &[u8],
        vsn: [u8; 6],
    ) -> Arc<Info> {
        self.tables().info(name, addr, port, meta, vsn)
    }

    /// Whether both share the same tables.
    pub fn same_tables(&self, other: &Interner) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_and_frees() {
        let i = Interner::new();
        let ip: IpAddr = "10.0.0.1"
            .parse()
            .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));
        let a = i.info("a", ip, 7946, b"m", [1, 5, 5, 2, 5, 5]);
        let b = i.info("a", ip, 7946, b"m", [1, 5, 5, 2, 5, 5]);
        assert!(Arc::ptr_eq(&a, &b));
        let c = i.info("a", ip, 7947, b"m", [1, 5, 5, 2, 5, 5]);
        assert!(!Arc::ptr_eq(&a, &c));
        assert!(Arc::ptr_eq(&a.name.0, &c.name.0));
        let weak = Arc::downgrade(&a);
        drop((a, b));
        assert!(weak.upgrade().is_none());
        for n in 0..5000 {
            i.info(&format!("n{n}"), ip, 1, b"", [0; 6]);
        }
        assert!(i.tables().infos_entries < 2000);
        assert_eq!(&*i.name("zz"), "zz");
    }
}
