//! The node state machine (docs/memberlist-protocol.md section 8): alive, suspect and dead
//! messages, incarnation precedence, refutation, suspicion timers and conflicts.

use super::*;

impl<D: Delegate> Memberlist<D> {
    pub(super) fn refute(&mut self, accused: u32) {
        let mut inc = self.incarnation.wrapping_add(1);
        if accused >= inc {
            inc = accused.wrapping_add(1);
        }
        self.incarnation = inc;
        self.stats.refutations += 1;
        self.apply_health(1);
        let a = self.local_alive(inc);
        if let Some(me) = self.nodes.get_mut(self.cfg.name.as_str()) {
            me.incarnation = inc;
            let i = &me.info;
            me.info = self
                .cfg
                .interner
                .info(&i.name, i.addr, i.port, &a.meta, i.vsn);
        }
        let name = self.cfg.name.clone();
        self.broadcast(&name, Message::Alive(a), None);
    }

    pub(super) fn alive_node(&mut self, now: Duration, a: Alive, bootstrap: bool) {
        let is_local = a.node == self.cfg.name;
        if self.leaving && is_local {
            return;
        }
        if a.vsn.len() >= 3 && (a.vsn[0] == 0 || a.vsn[1] == 0 || a.vsn[0] > a.vsn[1]) {
            return;
        }
        let mut updates_addr = false;
        match self.nodes.get(a.node.as_str()) {
            None => {
                let mut vsn = [0u8; 6];
                if a.vsn.len() == 6 {
                    vsn.copy_from_slice(&a.vsn);
                }
                let info = self
                    .cfg
                    .interner
                    .info(&a.node, a.addr, a.port, &a.meta, vsn);
                let name = info.name.clone();
                let n = Rec {
                    info,
                    incarnation: 0,
                    state: NodeStateKind::Dead,
                    state_change: Stamp::new(now),
                };
                self.nodes.insert(name.clone(), n);
                // At a random offset. Up to EXHAUSTIVE_PICK_MAX nodes, inserted there
                // (shifting the rest, as this core always did); beyond, memberlist's own
                // O(1) way: append, then swap with the node at the offset.
                let pos = self.rng.below(self.probe_list.len() + 1);
                if self.probe_list.len() < super::gossip::EXHAUSTIVE_PICK_MAX {
                    self.probe_list.insert(pos, name);
                } else {
                    self.probe_list.push(name);
                    let last = self.probe_list.len() - 1;
                    self.probe_list.swap(pos, last);
                }
            }
            Some(st) if st.info.addr != a.addr || st.info.port != a.port => {
                let reclaim = !self.cfg.dead_node_reclaim_time.is_zero()
                    && st.state == NodeStateKind::Dead
                    && now.saturating_sub(st.state_change.get()) > self.cfg.dead_node_reclaim_time;
                if st.state == NodeStateKind::Left || reclaim {
                    info!(
                        "Updating address for left or failed node {} from {}:{} to {}:{}",
                        a.node, st.info.addr, st.info.port, a.addr, a.port
                    );
                    updates_addr = true;
                } else {
                    tracing::error!(
                        "Conflicting address for {}. Mine: {}:{} Theirs: {}:{} Old state: {}",
                        a.node,
                        st.info.addr,
                        st.info.port,
                        a.addr,
                        a.port,
                        st.state.as_u8()
                    );
                    let existing = st.node();
                    let mut other = st.node();
                    other.addr = a.addr;
                    other.port = a.port;
                    other.meta = a.meta.clone();
                    self.delegate.notify_conflict(&existing, &other);
                    return;
                }
            }
            Some(_) => {}
        }
        let Some(st) = self.nodes.get(a.node.as_str()) else {
            return;
        };
        if a.incarnation <= st.incarnation && !is_local && !updates_addr {
            if st.state == NodeStateKind::Dead {
                let to = st.socket_addr();
                self.resync_with(now, &a.node, to);
            }
            return;
        }
        if a.incarnation < st.incarnation && is_local {
            return;
        }
        self.suspicions.remove(&a.node);
        let old_state = st.state;
        let old_info = Arc::clone(&st.info);
        if !bootstrap && is_local {
            let vsn = self.cfg.vsn();
            if a.incarnation == st.incarnation && *a.meta == *st.info.meta && a.vsn == vsn {
                return;
            }
            warn!(
                incarnation = a.incarnation,
                "refuting an alive message about us"
            );
            self.refute(a.incarnation);
        } else {
            let name = a.node.clone();
            let (inc, addr, port, meta) = (a.incarnation, a.addr, a.port, a.meta.clone());
            let vsn = a.vsn.clone();
            self.broadcast(&name, Message::Alive(a), None);
            if let Some(st) = self.nodes.get_mut(name.as_str()) {
                let mut v = st.info.vsn;
                if vsn.len() == 6 {
                    v.copy_from_slice(&vsn);
                }
                if !st.info.same(&name, addr, port, &meta, v) {
                    st.info = self.cfg.interner.info(&name, addr, port, &meta, v);
                }
                st.incarnation = inc;
                if st.state != NodeStateKind::Alive {
                    st.state = NodeStateKind::Alive;
                    st.state_change = Stamp::new(now);
                }
            }
            metrics::counter!("memberlist.msg.alive").increment(1);
            if is_local {
                self.incarnation = self.incarnation.max(inc);
            }
            let Some(st) = self.nodes.get(name.as_str()).map(Rec::node) else {
                return;
            };
            if matches!(old_state, NodeStateKind::Dead | NodeStateKind::Left) {
                self.delegate.notify_join(now, &st);
            } else if *old_info.meta != *st.meta {
                self.delegate.notify_update(now, &st);
            }
        }
    }

    pub(super) fn suspect_node(&mut self, now: Duration, s: Suspect) {
        let Some(st) = self.nodes.get(s.node.as_str()) else {
            return;
        };
        if s.incarnation < st.incarnation {
            return;
        }
        if let Some(timer) = self.suspicions.get_mut(&s.node) {
            if timer.confirm(&s.from) {
                let name = s.node.clone();
                self.broadcast(&name, Message::Suspect(s), None);
            }
            return;
        }
        if st.state != NodeStateKind::Alive {
            return;
        }
        if s.node == self.cfg.name {
            warn!("Refuting a suspect message (from: {})", s.from);
            self.refute(s.incarnation);
            return;
        }
        let name = s.node.clone();
        let (inc, from) = (s.incarnation, s.from.clone());
        self.broadcast(&name, Message::Suspect(s), None);
        metrics::counter!("memberlist.msg.suspect").increment(1);
        if let Some(st) = self.nodes.get_mut(name.as_str()) {
            st.incarnation = inc;
            st.state = NodeStateKind::Suspect;
            st.state_change = Stamp::new(now);
        }
        let n = self.estimated_nodes();
        let (min, max, k) = suspicion::bounds(
            self.cfg.suspicion_mult,
            self.cfg.suspicion_max_timeout_mult,
            self.cfg.probe_interval,
            n,
        );
        self.suspicions
            .insert(name, Suspicion::new(now, &from, inc, min, max, k));
    }

    pub(super) fn dead_node(&mut self, now: Duration, d: Suspect) {
        let Some(st) = self.nodes.get(d.node.as_str()) else {
            return;
        };
        if d.incarnation < st.incarnation {
            return;
        }
        self.suspicions.remove(&d.node);
        if st.dead_or_left() {
            return;
        }
        let name = d.node.clone();
        let is_local = name == self.cfg.name;
        if is_local && !self.leaving {
            warn!("Refuting a dead message (from: {})", d.from);
            self.refute(d.incarnation);
            return;
        }
        let left = d.from == d.node;
        let inc = d.incarnation;
        let notify = if is_local { Some(LEAVE_TOKEN) } else { None };
        self.broadcast(&name, Message::Dead(d), notify);
        metrics::counter!("memberlist.msg.dead").increment(1);
        if let Some(st) = self.nodes.get_mut(name.as_str()) {
            st.incarnation = inc;
            st.state = if left {
                NodeStateKind::Left
            } else {
                NodeStateKind::Dead
            };
            st.state_change = Stamp::new(now);
        }
        if let Some(st) = self.nodes.get(name.as_str()).map(Rec::node) {
            self.delegate.notify_leave(now, &st);
        }
    }
}
