//! The handler journal: user events waiting for their handlers, kept in a file next to the
//! snapshot (`<snapshot>.handlers`), so that an event whose handlers had not finished when
//! the agent died (`kill -9`, a crash, the OOM killer) runs after the restart.
//!
//! Go's agent (and ours without this) records a user event's Lamport time in the snapshot
//! when the event arrives, before its handler runs; after a crash the restarted agent
//! treats the event as already seen and never runs it. With a snapshot configured, ours
//! writes each user event to the journal as it arrives and marks it done once its handlers
//! have run (or when no handler wants it, or the handler queue dropped it); at start-up the
//! events still pending are handed to the handlers first, before any new event. Delivery is
//! therefore at least once across crashes: an event whose handler was running when the
//! agent died runs again; an event whose handlers finished does not.
//!
//! Records go to the file with one `write` each and no `fsync`: they survive the agent's
//! death (the kernel holds them), not the machine's. The file is compacted at start-up and
//! whenever many done records have accumulated (temporary file, rename).
//!
//! Format, one record per line: `P <id> <ltime> <coalesce 0|1> <name> <payload>` (name and
//! payload in standard base64) for an event, `D <id>` when it is done. Malformed lines are
//! skipped with a warning; a file over [`MAX_FILE`] is not read.

use base64::Engine as _;
use serf_core::Event;
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// A larger journal is not read (it cannot come from the bounded handler queue).
pub(crate) const MAX_FILE: u64 = 64 << 20;

/// Compact once this many done records have been appended.
const COMPACT_AFTER: usize = 4096;

/// A pending user event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pending {
    /// Lamport time.
    pub ltime: u64,
    /// Name.
    pub name: String,
    /// Payload.
    pub payload: Vec<u8>,
    /// Coalescable.
    pub coalesce: bool,
}

impl Pending {
    /// As the agent's event.
    pub(crate) fn to_event(&self) -> Event {
        Event::User {
            ltime: self.ltime,
            name: self.name.clone(),
            payload: self.payload.clone(),
            coalesce: self.coalesce,
        }
    }
}

#[derive(Debug)]
struct Inner {
    file: File,
    pending: BTreeMap<u64, Pending>,
    next_id: u64,
    done_records: usize,
}

/// The journal of one agent.
#[derive(Debug)]
pub(crate) struct Journal {
    path: PathBuf,
    inner: Mutex<Inner>,
}

/// The journal's path for a snapshot file.
pub(crate) fn path_for(snapshot: &Path) -> PathBuf {
    let mut p = snapshot.as_os_str().to_owned();
    p.push(".handlers");
    PathBuf::from(p)
}

/// Parses a journal text: the pending events by id, and the largest id seen.
pub(crate) fn parse(text: &str) -> (BTreeMap<u64, Pending>, u64) {
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut pending = BTreeMap::new();
    let mut max_id = 0;
    for (n, line) in text.lines().enumerate() {
        let f: Vec<&str> = line.split(' ').collect();
        let parsed = match f.as_slice() {
            ["P", id, ltime, co, name, payload] => (|| {
                let id = id.parse::<u64>().ok()?;
                let name = String::from_utf8(b64.decode(name).ok()?).ok()?;
                let p = Pending {
                    ltime: ltime.parse().ok()?,
                    name,
                    payload: b64.decode(payload).ok()?,
                    coalesce: match *co {
                        "0" => false,
                        "1" => true,
                        _ => return None,
                    },
                };
                Some((id, Some(p)))
            })(),
            ["D", id] => id.parse::<u64>().ok().map(|id| (id, None)),
            _ => None,
        };
        match parsed {
            Some((id, Some(p))) => {
                max_id = max_id.max(id);
                pending.insert(id, p);
            }
            Some((id, None)) => {
                max_id = max_id.max(id);
                pending.remove(&id);
            }
            // A torn last line (the agent died mid-write) is expected; others are not.
            None => tracing::warn!("handler journal: skipping malformed line {}", n + 1),
        }
    }
    (pending, max_id)
}

pub(crate) fn record_line(id: u64, p: &Pending) -> String {
    let b64 = base64::engine::general_purpose::STANDARD;
    format!(
        "P {id} {} {} {} {}\n",
        p.ltime,
        u8::from(p.coalesce),
        b64.encode(p.name.as_bytes()),
        b64.encode(&p.payload)
    )
}

/// Writes the pending records to a fresh file at `path` (temporary file and rename) and
/// opens it for appending.
fn rewrite(path: &Path, pending: &BTreeMap<u64, Pending>) -> std::io::Result<File> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    {
        let mut f = File::create(&tmp)?;
        let text: String = pending.iter().map(|(id, p)| record_line(*id, p)).collect();
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    OpenOptions::new().append(true).open(path)
}

impl Journal {
    /// Opens (or creates) the journal at `path`; the events left pending by the previous
    /// run, oldest first.
    pub(crate) fn open(path: PathBuf) -> std::io::Result<(Journal, Vec<Pending>)> {
        let (pending, max_id) = match std::fs::metadata(&path) {
            Ok(m) if m.len() > MAX_FILE => {
                tracing::warn!(
                    "handler journal {} is {} bytes, over the limit: not replayed",
                    path.display(),
                    m.len()
                );
                (BTreeMap::new(), 0)
            }
            Ok(_) => parse(&std::fs::read_to_string(&path).unwrap_or_else(|e| {
                tracing::warn!("handler journal {}: {e}", path.display());
                String::new()
            })),
            Err(_) => (BTreeMap::new(), 0),
        };
        let file = rewrite(&path, &pending)?;
        let left: Vec<Pending> = pending.values().cloned().collect();
        Ok((
            Journal {
                path,
                inner: Mutex::new(Inner {
                    file,
                    pending,
                    next_id: max_id + 1,
                    done_records: 0,
                }),
            },
            left,
        ))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records an arriving user event (other events are not journaled).
    pub(crate) fn record(&self, event: &Event) {
        let Event::User {
            ltime,
            name,
            payload,
            coalesce,
        } = event
        else {
            return;
        };
        let p = Pending {
            ltime: *ltime,
            name: name.clone(),
            payload: payload.clone(),
            coalesce: *coalesce,
        };
        let mut g = self.lock();
        let id = g.next_id;
        g.next_id += 1;
        if let Err(e) = g.file.write_all(record_line(id, &p).as_bytes()) {
            tracing::warn!("handler journal {}: {e}", self.path.display());
        }
        g.pending.insert(id, p);
    }

    /// Marks done the pending user events `event` stands for: the same name at the same
    /// or an earlier Lamport time (coalescing delivers only the latest of a name).
    pub(crate) fn done(&self, event: &Event) {
        let Event::User { ltime, name, .. } = event else {
            return;
        };
        let mut g = self.lock();
        let ids: Vec<u64> = g
            .pending
            .iter()
            .filter(|(_, p)| p.name == *name && p.ltime <= *ltime)
            .map(|(id, _)| *id)
            .collect();
        if ids.is_empty() {
            return;
        }
        let text: String = ids.iter().map(|id| format!("D {id}\n")).collect();
        if let Err(e) = g.file.write_all(text.as_bytes()) {
            tracing::warn!("handler journal {}: {e}", self.path.display());
        }
        for id in &ids {
            g.pending.remove(id);
        }
        g.done_records += ids.len();
        if g.done_records >= COMPACT_AFTER {
            match rewrite(&self.path, &g.pending) {
                Ok(f) => {
                    g.file = f;
                    g.done_records = 0;
                }
                Err(e) => tracing::warn!("handler journal {}: {e}", self.path.display()),
            }
        }
    }

    /// How many events are pending.
    pub(crate) fn pending_len(&self) -> usize {
        self.lock().pending.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(ltime: u64, name: &str, payload: &[u8]) -> Event {
        Event::User {
            ltime,
            name: name.to_string(),
            payload: payload.to_vec(),
            coalesce: false,
        }
    }

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("serf-journal-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        dir.join("snap.handlers")
    }

    #[test]
    fn pending_events_survive_a_reopen_and_done_ones_do_not() {
        let path = temp("reopen");
        let (j, left) = Journal::open(path.clone()).expect("open");
        assert!(left.is_empty());
        j.record(&user(1, "a", b"one"));
        j.record(&user(2, "b", b"two \n bytes \x00"));
        j.record(&user(3, "a", b"three"));
        j.record(&Event::MemberJoin(serf_core::Member {
            name: "n".into(),
            addr: std::net::IpAddr::from([127, 0, 0, 1]),
            port: 1,
            tags: vec![],
            status: serf_core::MemberStatus::Alive,
            vsn: [0; 6],
            status_ltime: 0,
            leave_time: None,
        }));
        j.done(&user(1, "a", b"one"));
        assert_eq!(j.pending_len(), 2);
        drop(j);
        let (j, left) = Journal::open(path.clone()).expect("reopen");
        let names: Vec<(&str, u64)> = left.iter().map(|p| (p.name.as_str(), p.ltime)).collect();
        assert_eq!(names, [("b", 2), ("a", 3)]);
        assert_eq!(left[0].payload, b"two \n bytes \x00");
        // Coalescing: the latest of a name stands for the earlier ones.
        j.record(&user(4, "a", b"four"));
        j.done(&user(4, "a", b"four"));
        assert_eq!(j.pending_len(), 1);
        drop(j);
        let (_, left) = Journal::open(path.clone()).expect("reopen");
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].name, "b");
        let _ = std::fs::remove_dir_all(path.parent().expect("dir"));
    }

    #[test]
    fn torn_and_garbage_lines_are_skipped() {
        let b = base64::engine::general_purpose::STANDARD;
        let text = format!(
            "P 1 5 0 {} {}\nP 2 6 1 {} {}\nD 1\nP 3 7 0 !!! x\nP 4 garbage\nD\nP 9 8 1 {}",
            b.encode("a"),
            b.encode("p"),
            b.encode("b"),
            b.encode("q"),
            b.encode("torn")
        );
        let (pending, max) = parse(&text);
        assert_eq!(max, 2);
        assert_eq!(pending.keys().copied().collect::<Vec<_>>(), [2]);
        assert!(pending[&2].coalesce);
    }

    #[test]
    fn compaction_keeps_only_pending_records() {
        let path = temp("compact");
        let (j, _) = Journal::open(path.clone()).expect("open");
        j.record(&user(1, "keep", b"k"));
        for i in 0..(COMPACT_AFTER as u64 + 10) {
            j.record(&user(i + 2, &format!("e{i}"), b"x"));
            j.done(&user(i + 2, &format!("e{i}"), b"x"));
        }
        let text = std::fs::read_to_string(&path).expect("read");
        assert!(text.lines().count() < 100, "{} lines", text.lines().count());
        drop(j);
        let (_, left) = Journal::open(path.clone()).expect("reopen");
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].name, "keep");
        let _ = std::fs::remove_dir_all(path.parent().expect("dir"));
    }
}
