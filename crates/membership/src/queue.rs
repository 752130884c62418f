//! The transmit-limited broadcast queue (docs/memberlist-protocol.md section 10.2).
//!
//! Items are ordered by transmits ascending, then length descending, then newest first;
//! [`BroadcastQueue::get_broadcasts`] takes, in that order, every item that still fits the
//! budget, and drops items once they were sent `retransmit_limit` times. Named items
//! invalidate older items of the same name (memberlist's alive/suspect/dead about a node).

/// A queued broadcast.
#[derive(Debug, Clone)]
struct Item {
    /// Shared with the index by name (one allocation for both).
    name: Option<std::sync::Arc<str>>,
    msg: Vec<u8>,
    transmits: u32,
    notify: Option<u64>,
}

/// Transmit-limited queue. Items are kept by id (oldest first) with an index by name, so
/// queueing, replacing and pruning are O(log n) whatever the queue length.
#[derive(Debug, Default)]
pub struct BroadcastQueue {
    items: std::collections::BTreeMap<u64, Item>,
    names: std::collections::HashMap<std::sync::Arc<str>, u64>,
    next_id: u64,
    finished: Vec<u64>,
}

/// Number of transmissions per message: `mult * ceil(log10(n + 1))`.
///
/// `ceil(log10(n + 1))` is the number of decimal digits of `n` (0 for 0), counted in
/// integers: this runs on every gossip tick, and a call into the C library's `log10` there
/// keeps its code and tables resident in an otherwise idle agent.
pub fn retransmit_limit(mult: u32, n: usize) -> u32 {
    let scale = n.checked_ilog10().map_or(0, |d| d + 1);
    mult * scale
}

impl BroadcastQueue {
    /// An empty queue.
    pub fn new() -> Self {
        Self::default()
    }

    fn remove(&mut self, id: u64) -> Option<Item> {
        let it = self.items.remove(&id)?;
        if let Some(n) = &it.name {
            if self.names.get(&**n) == Some(&id) {
                self.names.remove(&**n);
            }
        }
        Some(it)
    }

    /// Queues a message. A named message replaces queued ones of the same name. `notify`
    /// is reported by [`BroadcastQueue::take_finished`] once the message is done.
    pub fn queue(&mut self, name: Option<&str>, msg: Vec<u8>, notify: Option<u64>) {
        if let Some(old) = name.and_then(|n| self.names.get(n).copied()) {
            if let Some(t) = self.remove(old).and_then(|it| it.notify) {
                self.finished.push(t);
            }
        }
        self.next_id += 1;
        let id = self.next_id;
        let name: Option<std::sync::Arc<str>> = name.map(std::sync::Arc::from);
        if let Some(n) = &name {
            self.names.insert(std::sync::Arc::clone(n), id);
        }
        self.items.insert(
            id,
            Item {
                name,
                msg,
                transmits: 0,
                notify,
            },
        );
    }

    /// Queued messages.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Drops the oldest items beyond `max`.
    pub fn prune(&mut self, max: usize) {
        while self.items.len() > max {
            let Some(&id) = self.items.keys().next() else {
                break;
            };
            if let Some(t) = self.remove(id).and_then(|it| it.notify) {
                self.finished.push(t);
            }
        }
    }

    /// Notification tokens of messages that have been fully sent or replaced.
    pub fn take_finished(&mut self) -> Vec<u64> {
        std::mem::take(&mut self.finished)
    }

    /// Takes messages that fit `limit` bytes with `overhead` bytes each: in order of
    /// transmits ascending, length descending, newest first, every item that still fits.
    pub fn get_broadcasts(
        &mut self,
        overhead: usize,
        limit: usize,
        transmit_limit: u32,
    ) -> Vec<Vec<u8>> {
        if self.items.is_empty() || limit <= overhead {
            return Vec::new();
        }
        let mut order: Vec<(u32, std::cmp::Reverse<usize>, std::cmp::Reverse<u64>)> = self
            .items
            .iter()
            .map(|(id, it)| {
                (
                    it.transmits,
                    std::cmp::Reverse(it.msg.len()),
                    std::cmp::Reverse(*id),
                )
            })
            .collect();
        order.sort_unstable();
        let mut used = 0usize;
        let mut out = Vec::new();
        for (_, std::cmp::Reverse(len), std::cmp::Reverse(id)) in order {
            let free = limit.saturating_sub(used).saturating_sub(overhead);
            if free == 0 {
                break;
            }
            if len > free {
                continue;
            }
            used += overhead + len;
            let done = self
                .items
                .get(&id)
                .is_some_and(|it| it.transmits + 1 >= transmit_limit);
            if done {
                if let Some(it) = self.remove(id) {
                    if let Some(t) = it.notify {
                        self.finished.push(t);
                    }
                    out.push(it.msg);
                }
            } else if let Some(it) = self.items.get_mut(&id) {
                it.transmits += 1;
                out.push(it.msg.clone());
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_follow_log10() {
        assert_eq!(retransmit_limit(4, 1), 4);
        assert_eq!(retransmit_limit(4, 9), 4);
        assert_eq!(retransmit_limit(4, 10), 8);
        assert_eq!(retransmit_limit(4, 99), 8);
        assert_eq!(retransmit_limit(4, 100), 12);
        assert_eq!(retransmit_limit(4, 0), 0);
        for n in 0..100_000usize {
            let float = ((n as f64) + 1.0).log10().ceil() as u32;
            assert_eq!(retransmit_limit(3, n), 3 * float, "n = {n}");
        }
    }

    #[test]
    fn invalidation_and_ordering() {
        let mut q = BroadcastQueue::new();
        q.queue(Some("a"), vec![1; 10], Some(7));
        q.queue(Some("b"), vec![2; 20], None);
        q.queue(Some("a"), vec![3; 5], None);
        assert_eq!(q.len(), 2);
        assert_eq!(q.take_finished(), vec![7]);
        // Largest first within a tier.
        let got = q.get_broadcasts(2, 1400, 4);
        assert_eq!(got, vec![vec![2; 20], vec![3; 5]]);
        // Respects the budget.
        let got = q.get_broadcasts(2, 10, 4);
        assert_eq!(got, vec![vec![3; 5]]);
    }

    #[test]
    fn drops_after_limit() {
        let mut q = BroadcastQueue::new();
        q.queue(None, vec![1], Some(1));
        for _ in 0..4 {
            assert_eq!(q.get_broadcasts(2, 100, 4).len(), 1);
        }
        assert!(q.is_empty());
        assert_eq!(q.take_finished(), vec![1]);
    }
}

#[cfg(test)]
mod scale_tests {
    use super::*;

    #[test]
    fn replacing_by_name_scales() {
        let mut q = BroadcastQueue::new();
        for i in 0..200_000 {
            q.queue(Some(&format!("node-{}", i % 100_000)), vec![0; 8], None);
        }
        assert_eq!(q.len(), 100_000);
        q.prune(10);
        assert_eq!(q.len(), 10);
    }
}
