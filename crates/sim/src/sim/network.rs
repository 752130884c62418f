//! The virtual network: partitions and link parameters, datagram delivery with delay, jitter
//! and loss, and streams (reliable, cut by partitions, crashes and pauses).

use super::*;

impl<M: Machine> Sim<M> {
    /// Splits the network: nodes of different groups cannot reach each other (datagrams
    /// and streams). Nodes not listed form one more group together.
    pub fn partition(&mut self, groups: &[Vec<NodeId>]) {
        let mut g = vec![0u32; self.slots.len()];
        for (i, grp) in groups.iter().enumerate() {
            for &n in grp {
                if let Some(x) = g.get_mut(n) {
                    *x = i as u32 + 1;
                }
            }
        }
        self.groups = Some(g);
        self.trace.push(
            self.now,
            None,
            TraceKind::Partition {
                groups: groups.to_vec(),
            },
        );
    }

    /// Removes every partition.
    pub fn heal(&mut self) {
        self.groups = None;
        self.trace.push(self.now, None, TraceKind::Heal);
    }

    /// Whether `a` can currently reach `b` (partitions only).
    pub fn reachable(&self, a: NodeId, b: NodeId) -> bool {
        match &self.groups {
            None => true,
            Some(g) => g.get(a).copied().unwrap_or(0) == g.get(b).copied().unwrap_or(0),
        }
    }

    /// Default datagram loss probability for every link without an override.
    pub fn set_loss(&mut self, p: f64) {
        self.net.default_link.loss = p;
    }

    /// Default one-way delay and jitter.
    pub fn set_delay(&mut self, delay: Duration, jitter: Duration) {
        self.net.default_link.delay = delay;
        self.net.default_link.jitter = jitter;
    }

    /// Overrides both directions between `a` and `b` (jitter: the default's).
    pub fn set_link(&mut self, a: NodeId, b: NodeId, loss: f64, delay: Duration) {
        let p = LinkParams {
            loss,
            delay,
            jitter: self.net.default_link.jitter,
        };
        self.links.insert((a, b), p);
        self.links.insert((b, a), p);
    }

    /// Overrides the directed link `from -> to`.
    pub fn set_link_params(&mut self, from: NodeId, to: NodeId, p: LinkParams) {
        self.links.insert((from, to), p);
    }

    /// Removes the overrides between `a` and `b` (both directions).
    pub fn clear_link(&mut self, a: NodeId, b: NodeId) {
        self.links.remove(&(a, b));
        self.links.remove(&(b, a));
    }

    /// Removes every per-link override.
    pub fn clear_links(&mut self) {
        self.links.clear();
    }

    /// Streams are reliable: no random loss, only partitions and link delay.
    pub(super) fn deliver_stream(&mut self, from: NodeId, to: NodeId, msg: Inbound) {
        if !self.reachable(from, to) {
            return;
        }
        let link = self.link(from, to);
        let at = self.now + self.delay(&link);
        self.push(at, Action::Arrive { node: to, msg });
    }

    pub(super) fn link(&self, from: NodeId, to: NodeId) -> LinkParams {
        self.links
            .get(&(from, to))
            .copied()
            .unwrap_or(self.net.default_link)
    }

    pub(super) fn delay(&mut self, p: &LinkParams) -> Duration {
        if p.jitter.is_zero() {
            p.delay
        } else {
            p.delay + p.jitter.mul_f64(self.rng.unit())
        }
    }

    pub(super) fn route(&mut self, from: NodeId, t: Transmit) {
        match t {
            Transmit::Packet { to, data } => self.send_packet(from, to, data),
            Transmit::Stream {
                to,
                data,
                timeout,
                purpose,
            } => self.open_stream(from, to, data, purpose, timeout),
        }
    }

    pub(super) fn send_packet(&mut self, from: NodeId, to: SocketAddr, data: Vec<u8>) {
        let len = data.len() as u64;
        self.stats.packets_sent += 1;
        self.stats.bytes_sent += len;
        self.slots[from].net.packets_out += 1;
        self.slots[from].net.bytes_out += len;
        let Some(&dst) = self.by_addr.get(&to) else {
            self.stats.packets_dropped += 1;
            self.stats.dropped_down += 1;
            return;
        };
        if !self.reachable(from, dst) {
            self.stats.packets_dropped += 1;
            self.stats.dropped_partition += 1;
            return;
        }
        let link = self.link(from, dst);
        if link.loss > 0.0 && self.rng.unit() < link.loss {
            self.stats.packets_dropped += 1;
            self.stats.dropped_loss += 1;
            return;
        }
        let at = self.now + self.delay(&link);
        self.push(
            at,
            Action::Arrive {
                node: dst,
                msg: Inbound::Packet { from, data },
            },
        );
    }

    pub(super) fn open_stream(
        &mut self,
        from: NodeId,
        to: SocketAddr,
        data: Vec<u8>,
        kind: StreamPurpose,
        timeout: Duration,
    ) {
        self.next_stream += 1;
        let stream = self.next_stream;
        self.stats.streams_opened += 1;
        self.stats.stream_bytes += data.len() as u64;
        let epoch = self.slots[from].epoch;
        self.streams.insert(
            stream,
            PendingStream {
                initiator: from,
                epoch,
                kind,
            },
        );
        let deadline = self.now + timeout;
        self.push(
            deadline,
            Action::Arrive {
                node: from,
                msg: Inbound::StreamTimeout { stream },
            },
        );
        // A crashed or partitioned target never answers: the initiator times out.
        let Some(&dst) = self.by_addr.get(&to) else {
            return;
        };
        self.deliver_stream(from, dst, Inbound::StreamRequest { stream, from, data });
    }

    pub(super) fn send_stream_reply(&mut self, from: NodeId, stream: u64, data: Vec<u8>) {
        let Some(p) = self.streams.get(&stream) else {
            return;
        };
        let to = p.initiator;
        self.stats.stream_bytes += data.len() as u64;
        self.deliver_stream(from, to, Inbound::StreamReply { stream, from, data });
    }
}
