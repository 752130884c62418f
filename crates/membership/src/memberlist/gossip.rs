//! Dissemination (docs/memberlist-protocol.md section 10): gossip rounds, the broadcast
//! queue feeding piggybacked messages, and push/pull anti-entropy with its protocol
//! version checks.

use super::*;

/// Largest cluster for which [`Memberlist::random_nodes`] considers every node (and a
/// new node is inserted into the probe list rather than swapped in).
pub(super) const EXHAUSTIVE_PICK_MAX: usize = 256;

/// Extra gossip rounds ([`Memberlist::gossip_soon`]) are at least this fraction of the
/// gossip interval apart (50 ms on a LAN).
pub(super) const EAGER_GAP_DIVISOR: u32 = 4;

impl<D: Delegate> Memberlist<D> {
    /// Up to `k` distinct random nodes passing `keep`.
    ///
    /// Up to [`EXHAUSTIVE_PICK_MAX`] known nodes: uniformly among every node passing `keep`.
    /// Beyond, memberlist's `kRandomNodes`: up to `3 n` random draws from the probe list,
    /// keeping those that pass and are new, so a gossip round costs O(k log n), not a scan
    /// of every node (the same uniform choice while eligible nodes are not rare).
    pub(super) fn random_nodes<F: Fn(&Rec) -> bool>(&mut self, k: usize, keep: F) -> Vec<Rec> {
        let n = self.probe_list.len();
        if n > EXHAUSTIVE_PICK_MAX {
            let mut out: Vec<Rec> = Vec::with_capacity(k);
            for _ in 0..3 * n {
                if out.len() >= k {
                    break;
                }
                let i = self.rng.below(n);
                let Some(node) = self.nodes.get(self.probe_list[i].as_str()) else {
                    continue;
                };
                if keep(node) && !out.iter().any(|o| o.info.name == node.info.name) {
                    out.push(node.clone());
                }
            }
            return out;
        }
        let mut cands: Vec<&Rec> = self.nodes.values().filter(|n| keep(n)).collect();
        let mut out = Vec::with_capacity(k.min(cands.len()));
        while out.len() < k && !cands.is_empty() {
            let i = self.rng.below(cands.len());
            out.push(cands.swap_remove(i).clone());
        }
        out
    }

    pub(super) fn gossip(&mut self, now: Duration) {
        self.stats.gossip_rounds += 1;
        let me = self.cfg.name.clone();
        let ttl = self.cfg.gossip_to_the_dead_time;
        let targets = self.random_nodes(self.cfg.gossip_nodes, |n| {
            n.name() != me
                && match n.state {
                    NodeStateKind::Alive | NodeStateKind::Suspect => true,
                    NodeStateKind::Dead => now.saturating_sub(n.state_change.get()) <= ttl,
                    NodeStateKind::Left => false,
                }
        });
        let overhead = if self.cfg.encrypt_outgoing() {
            serf_wire::crypto::ENCRYPT_OVERHEAD
        } else {
            0
        };
        let budget = self.cfg.udp_buffer_size.saturating_sub(2 + overhead);
        for t in targets {
            let msgs = self.get_broadcasts(2, budget);
            if msgs.is_empty() {
                return;
            }
            let crc = t.info.vsn[1] >= 5;
            self.send_parts(t.socket_addr(), msgs, crc);
        }
    }

    /// Asks for an extra gossip round, outside the gossip ticks, to send what was just
    /// queued: Serf calls it when a user event or query, its own or a new one received,
    /// enters its broadcast queue, and when it queues its own leave intent; a leave here
    /// asks for one for its dead-about-self message ([`Config::eager_gossip`]).
    ///
    /// Go's memberlist sends queued messages only at its gossip ticks, whose phase is fixed
    /// when the process starts. A message therefore waits for the next tick at every hop,
    /// half an interval (100 ms on a LAN) on average, or nothing when a hop happens to go
    /// to a node whose tick comes just after the sender's. The extra round sends at once.
    /// It draws its own random targets and counts against each message's retransmit
    /// limit like any round, so every message is still sent the same number of times,
    /// only sooner. Extra rounds are at least a quarter of the gossip interval apart (50 ms
    /// on a LAN): under a stream of events, the messages queued in between share a round.
    pub fn gossip_soon(&mut self) {
        if self.cfg.eager_gossip {
            self.eager_wanted = true;
        }
    }

    /// When the extra round asked for by [`Memberlist::gossip_soon`] may go out.
    pub(super) fn eager_gossip_at(&self) -> Option<Duration> {
        let gap = self.cfg.gossip_interval / EAGER_GAP_DIVISOR;
        self.eager_wanted
            .then(|| self.last_eager.map_or(Duration::ZERO, |t| t + gap))
    }

    /// Queues a push/pull with `to` (Serf's reconnect uses `join = true`). The reply goes to
    /// [`Memberlist::handle_push_pull_reply`].
    pub fn push_pull_to(&mut self, to: SocketAddr, join: bool) {
        let data = self.local_push_pull(join);
        self.out.push_back(Transmit::Stream {
            to,
            data,
            timeout: self.cfg.tcp_timeout,
            purpose: StreamPurpose::PushPull,
        });
    }

    /// Brings the next push/pull forward to 10 to 15 gossip intervals from `now` (2-3 s
    /// with LAN settings), once, after a join.
    ///
    /// Nodes that join around the same time learn of each other from the gossip of their
    /// alive messages, each sent a limited number of times; a node that misses one waits
    /// for its next push/pull, up to a full interval (30 s; Go's agents: 41-67 s tails
    /// with 60 agents started at once). One full state exchange with a random member
    /// soon after the join catches what the gossip missed. Nothing changes on the wire:
    /// it is an ordinary push/pull, sooner.
    pub fn push_pull_soon(&mut self, now: Duration) {
        let gossip = self.cfg.gossip_interval;
        let at = now + gossip * 10 + gossip.mul_f64(5.0 * self.rng.unit());
        self.next_push_pull = self.next_push_pull.min(at);
    }

    pub(super) fn periodic_push_pull(&mut self) {
        let me = self.cfg.name.clone();
        let Some(peer) = self
            .random_nodes(1, |n| n.name() != me && n.state == NodeStateKind::Alive)
            .pop()
        else {
            return;
        };
        let data = self.local_push_pull(false);
        self.out.push_back(Transmit::Stream {
            to: peer.socket_addr(),
            data,
            timeout: self.cfg.tcp_timeout,
            purpose: StreamPurpose::PushPull,
        });
    }

    pub(super) fn local_push_pull(&mut self, join: bool) -> Vec<u8> {
        let mut nodes: Vec<PushNodeState> = self
            .nodes
            .values()
            .map(|n| PushNodeState {
                name: n.name().to_string(),
                addr: n.info.addr,
                port: n.info.port,
                meta: n.info.meta.to_vec(),
                incarnation: n.incarnation,
                state: n.state,
                vsn: n.info.vsn.to_vec(),
            })
            .collect();
        nodes.sort_by(|a, b| a.name.cmp(&b.name));
        let user_state = self.delegate.local_state(join);
        let msg = encode_push_pull(&PushPull {
            join,
            nodes,
            user_state,
        });
        self.encode_stream(&msg)
    }

    /// memberlist's `verifyProtocol`.
    pub(super) fn verify_protocol(&self, remote: &[PushNodeState]) -> Result<(), String> {
        let mut max_pmin = 0u8;
        let mut min_pmax = u8::MAX;
        let mut max_dmin = 0u8;
        let mut min_dmax = u8::MAX;
        let vsns = remote
            .iter()
            .filter(|r| r.state == NodeStateKind::Alive && r.vsn.len() == 6)
            .map(|r| [r.vsn[0], r.vsn[1], r.vsn[3], r.vsn[4]])
            .chain(
                self.nodes
                    .values()
                    .filter(|n| n.state == NodeStateKind::Alive)
                    .map(|n| [n.info.vsn[0], n.info.vsn[1], n.info.vsn[3], n.info.vsn[4]]),
            );
        for [pmin, pmax, dmin, dmax] in vsns {
            max_pmin = max_pmin.max(pmin);
            min_pmax = min_pmax.min(pmax);
            max_dmin = max_dmin.max(dmin);
            min_dmax = min_dmax.min(dmax);
        }
        let check = |name: &str, pcur: u8, dcur: u8| -> Result<(), String> {
            if pcur < max_pmin || pcur > min_pmax {
                return Err(format!("Node '{name}' protocol version ({pcur}) is incompatible: [{max_pmin}, {min_pmax}]"));
            }
            if dcur < max_dmin || dcur > min_dmax {
                return Err(format!(
                    "Node '{name}' delegate protocol version ({dcur}) is incompatible: [{max_dmin}, {min_dmax}]"
                ));
            }
            Ok(())
        };
        for r in remote {
            let (p, d) = if r.vsn.len() == 6 {
                (r.vsn[2], r.vsn[5])
            } else {
                (0, 0)
            };
            check(&r.name, p, d)?;
        }
        for n in self.nodes.values() {
            check(n.name(), n.info.vsn[2], n.info.vsn[5])?;
        }
        Ok(())
    }

    pub(super) fn merge_remote(&mut self, now: Duration, pp: &PushPull) -> Result<(), String> {
        if let Err(e) = self.verify_protocol(&pp.nodes) {
            self.stats.push_pull_rejected += 1;
            return Err(e);
        }
        if pp
            .nodes
            .iter()
            .any(|n| !n.vsn.is_empty() && n.vsn.len() != 6)
        {
            self.stats.push_pull_rejected += 1;
            return Err("node state with a malformed version array".to_string());
        }
        for r in &pp.nodes {
            let port = if r.port == 0 { self.cfg.port } else { r.port };
            if r.state == NodeStateKind::Alive
                && self.alive_is_stale(&r.name, r.incarnation, r.addr, port, &r.vsn)
            {
                continue;
            }
            match r.state {
                NodeStateKind::Alive => self.alive_node(
                    now,
                    Alive {
                        incarnation: r.incarnation,
                        node: r.name.clone(),
                        addr: r.addr,
                        port,
                        meta: r.meta.clone(),
                        vsn: r.vsn.clone(),
                    },
                    false,
                ),
                NodeStateKind::Left => self.dead_node(
                    now,
                    Suspect {
                        incarnation: r.incarnation,
                        node: r.name.clone(),
                        from: r.name.clone(),
                    },
                ),
                NodeStateKind::Dead | NodeStateKind::Suspect => self.suspect_node(
                    now,
                    Suspect {
                        incarnation: r.incarnation,
                        node: r.name.clone(),
                        from: self.cfg.name.clone(),
                    },
                ),
            }
        }
        // Nodes learned in bulk arrive in name order, which leaves the B-tree's nodes half
        // full: once the map doubled since the last time, rebuild it from sorted order
        // (packed full) and trim the probe list's spare capacity.
        let n = self.nodes.len();
        if n >= 64 && n >= 2 * self.nodes_packed {
            self.nodes = std::mem::take(&mut self.nodes).into_iter().collect();
            self.nodes_packed = n;
            self.probe_list.shrink_to_fit();
        }
        if !pp.user_state.is_empty() {
            self.delegate
                .merge_remote_state(now, &pp.user_state, pp.join);
        }
        Ok(())
    }

    /// Whether an alive message with these fields would change nothing: about another
    /// node we hold alive or suspect at the same address and at least this incarnation,
    /// with well-formed versions ([`Memberlist::alive_node`] would return at once). Lets a
    /// push/pull merge skip building the message for the members both sides agree on.
    fn alive_is_stale(&self, name: &str, inc: u32, addr: IpAddr, port: u16, vsn: &[u8]) -> bool {
        if name == self.cfg.name
            || (vsn.len() >= 3 && (vsn[0] == 0 || vsn[1] == 0 || vsn[0] > vsn[1]))
        {
            return false;
        }
        self.nodes.get(name).is_some_and(|st| {
            inc <= st.incarnation
                && st.info.addr == addr
                && st.info.port == port
                && matches!(st.state, NodeStateKind::Alive | NodeStateKind::Suspect)
        })
    }

    pub(super) fn broadcast(&mut self, name: &str, msg: Message, notify: Option<u64>) {
        self.queue.queue(Some(name), msg.encode(), notify);
        self.check_finished();
    }

    pub(super) fn check_finished(&mut self) {
        if self.queue.take_finished().contains(&LEAVE_TOKEN) {
            self.leave_done = true;
        }
    }

    /// memberlist's broadcasts first, then the delegate's with one more byte each.
    pub(super) fn get_broadcasts(&mut self, overhead: usize, limit: usize) -> Vec<Vec<u8>> {
        let tl = self.transmit_limit();
        let mut msgs = self.queue.get_broadcasts(overhead, limit, tl);
        self.check_finished();
        let used: usize = msgs.iter().map(|m| m.len() + overhead).sum();
        let left = limit.saturating_sub(used);
        if left > overhead + 1 {
            for m in self.delegate.get_broadcasts(overhead + 1, left) {
                let mut b = Vec::with_capacity(m.len() + 1);
                b.push(serf_wire::msg_type::USER);
                b.extend_from_slice(&m);
                msgs.push(b);
            }
        }
        msgs
    }

    pub(super) fn transmit_limit(&self) -> u32 {
        retransmit_limit(self.cfg.retransmit_mult, self.estimated_nodes())
    }

    pub(super) fn push_pull_interval(&self) -> Duration {
        self.cfg.push_pull_interval * push_pull_scale(self.estimated_nodes())
    }
}

/// How many push/pull intervals apart full syncs are in a cluster of `n`: 1 up to 32
/// nodes, then `ceil(log2(n) - log2(32)) + 1`, counted in integers (no libm call, see
/// [`crate::queue::retransmit_limit`]).
pub(crate) fn push_pull_scale(n: usize) -> u32 {
    if n <= 32 {
        1
    } else {
        n.next_power_of_two().trailing_zeros() - 4
    }
}

#[cfg(test)]
mod tests {
    use super::push_pull_scale;

    #[test]
    fn push_pull_scale_is_the_float_formula() {
        for n in 0..200_000usize {
            let float = if n <= 32 {
                1.0
            } else {
                ((n as f64).log2() - 32f64.log2()).ceil() + 1.0
            };
            assert_eq!(f64::from(push_pull_scale(n)), float, "n = {n}");
        }
    }
}
