//! Failure detection (docs/memberlist-protocol.md section 9): the probe round over a
//! shuffled list, indirect probes with nacks, the TCP fallback, answering pings and
//! relaying them, and Lifeguard's health score.

use super::*;

impl<D: Delegate> Memberlist<D> {
    pub(super) fn handle_ping(&mut self, now: Duration, from: SocketAddr, p: Ping) {
        if !p.node.is_empty() && p.node != self.cfg.name {
            warn!("Got ping for unexpected node '{}' from={from}", p.node);
            return;
        }
        let payload = self.delegate.ack_payload();
        let ack = Message::Ack(Ack {
            seq_no: p.seq_no,
            payload,
        })
        .encode();
        let to = match p.source_addr {
            Some(ip) if p.source_port != 0 => SocketAddr::new(ip, p.source_port),
            _ => from,
        };
        self.send_msg(to, ack, true);
        // A ping from a node we hold dead or do not know: it is alive and holds us alive.
        if !p.source_node.is_empty() {
            let back = match self.nodes.get(p.source_node.as_str()) {
                Some(n) if n.state == NodeStateKind::Dead => Some(n.socket_addr()),
                Some(_) => None,
                None => p
                    .source_addr
                    .filter(|_| p.source_port != 0)
                    .map(|ip| SocketAddr::new(ip, p.source_port)),
            };
            if let Some(addr) = back {
                self.resync_with(now, &p.source_node, addr);
            }
        }
    }

    pub(super) fn handle_indirect_ping(
        &mut self,
        now: Duration,
        from: SocketAddr,
        req: IndirectPing,
    ) {
        let port = if req.port == 0 {
            self.cfg.port
        } else {
            req.port
        };
        let seq = self.next_seq();
        let ping = Message::Ping(Ping {
            seq_no: seq,
            node: req.node.clone(),
            source_addr: Some(self.cfg.addr),
            source_port: self.cfg.port,
            source_node: self.cfg.name.clone(),
        })
        .encode();
        let requester = match req.source_addr {
            Some(ip) if req.source_port != 0 => SocketAddr::new(ip, req.source_port),
            _ => from,
        };
        self.relays.insert(
            seq,
            Relay {
                requester,
                req_seq: req.seq_no,
                nack: req.nack,
                expires: now + self.cfg.probe_timeout,
            },
        );
        self.send_msg(SocketAddr::new(req.target, port), ping, true);
    }

    pub(super) fn handle_ack(&mut self, now: Duration, a: Ack) {
        if let Some(r) = self.relays.remove(&a.seq_no) {
            let ack = Message::Ack(Ack {
                seq_no: r.req_seq,
                payload: Vec::new(),
            })
            .encode();
            self.send_msg(r.requester, ack, true);
            return;
        }
        if self.probe.as_ref().is_some_and(|p| p.seq == a.seq_no) {
            if let Some(p) = self.probe.take() {
                self.apply_health(-1);
                if !a.payload.is_empty() {
                    if let Some(n) = self.nodes.get(p.target.as_str()).map(Rec::node) {
                        self.delegate.notify_ping_complete(
                            now,
                            &n,
                            now.saturating_sub(p.sent),
                            &a.payload,
                        );
                    }
                }
                record_ms("memberlist.probeNode", now.saturating_sub(p.sent));
                self.finish_probe(now, p.sent);
            }
        }
    }

    pub(super) fn finish_probe(&mut self, now: Duration, sent: Duration) {
        // The ticker keeps its phase; ticks missed while probing are dropped.
        let iv = self.cfg.probe_interval;
        let mut next = sent + iv;
        if next <= now {
            let behind = (now - sent).as_nanos() / iv.as_nanos().max(1);
            next = sent + iv * (behind as u32 + 1);
        }
        self.next_probe = next;
    }

    pub(super) fn probe_next(&mut self, now: Duration) {
        let mut checked = 0;
        let target = loop {
            if checked >= self.probe_list.len() {
                return;
            }
            if self.probe_index >= self.probe_list.len() {
                self.reset_probe_list(now);
                self.probe_index = 0;
                checked += 1;
                continue;
            }
            let name = &self.probe_list[self.probe_index];
            self.probe_index += 1;
            match self.nodes.get(name.as_str()) {
                Some(n) if n.name() != self.cfg.name && !n.dead_or_left() => break n.clone(),
                _ => checked += 1,
            }
        };
        let seq = self.next_seq();
        let interval = self.cfg.probe_interval * (self.health + 1);
        if self.health > 0 {
            metrics::counter!("memberlist.degraded.probe").increment(1);
        }
        let ping = Message::Ping(Ping {
            seq_no: seq,
            node: target.name().to_string(),
            source_addr: Some(self.cfg.addr),
            source_port: self.cfg.port,
            source_node: self.cfg.name.clone(),
        })
        .encode();
        if target.state == NodeStateKind::Alive {
            self.send_msg(target.socket_addr(), ping, true);
        } else {
            // Lifeguard buddy system: tell a suspect it is suspected.
            let s = Message::Suspect(Suspect {
                incarnation: target.incarnation,
                node: target.name().to_string(),
                from: self.cfg.name.clone(),
            })
            .encode();
            let crc = target.info.vsn[1] >= 5;
            self.send_parts(target.socket_addr(), vec![ping, s], crc);
        }
        self.probe = Some(Probe {
            seq,
            incarnation: target.incarnation,
            target: target.name().to_string(),
            sent: now,
            indirect_at: now + self.cfg.probe_timeout,
            deadline: now + interval,
            indirect_sent: false,
            expected_nacks: 0,
            nacks: 0,
            tcp_ok: false,
        });
    }

    pub(super) fn probe_indirect(&mut self, now: Duration) {
        let Some(p) = self.probe.as_mut() else { return };
        p.indirect_sent = true;
        let (seq, target_name, deadline) = (p.seq, p.target.clone(), p.deadline);
        let Some(target) = self.nodes.get(target_name.as_str()).cloned() else {
            return;
        };
        let me = self.cfg.name.clone();
        let relays = self.random_nodes(self.cfg.indirect_checks, |n| {
            n.name() != me && n.name() != target_name && n.state == NodeStateKind::Alive
        });
        let mut expected = 0;
        for relay in relays {
            let nack = relay.info.vsn[1] >= 4;
            expected += u32::from(nack);
            let msg = Message::IndirectPing(IndirectPing {
                seq_no: seq,
                target: target.info.addr,
                port: target.info.port,
                node: target.name().to_string(),
                nack,
                source_addr: Some(self.cfg.addr),
                source_port: self.cfg.port,
                source_node: self.cfg.name.clone(),
            })
            .encode();
            self.send_msg(relay.socket_addr(), msg, true);
        }
        if let Some(p) = self.probe.as_mut() {
            p.expected_nacks = expected;
        }
        if !self.cfg.disable_tcp_pings && target.info.vsn[1] >= 3 {
            let ping = Message::Ping(Ping {
                seq_no: seq,
                node: target.name().to_string(),
                source_addr: Some(self.cfg.addr),
                source_port: self.cfg.port,
                source_node: self.cfg.name.clone(),
            })
            .encode();
            let data = self.encode_stream(&ping);
            let timeout = deadline.saturating_sub(now);
            self.out.push_back(Transmit::Stream {
                to: target.socket_addr(),
                data,
                timeout,
                purpose: StreamPurpose::Ping { seq },
            });
        }
    }

    pub(super) fn probe_failed(&mut self, now: Duration) {
        let Some(p) = self.probe.take() else { return };
        record_ms("memberlist.probeNode", now.saturating_sub(p.sent));
        self.finish_probe(now, p.sent);
        if p.tcp_ok {
            warn!(
                "Was able to connect to {} but other probes failed, network may be misconfigured",
                p.target
            );
            self.apply_health(-1);
            return;
        }
        self.stats.probes_failed += 1;
        if p.expected_nacks > 0 {
            self.apply_health(i64::from(p.expected_nacks.saturating_sub(p.nacks)));
        } else {
            self.apply_health(1);
        }
        if !self.nodes.contains_key(p.target.as_str()) {
            return;
        }
        info!("Suspect {} has failed, no acks received", p.target);
        let s = Suspect {
            incarnation: p.incarnation,
            node: p.target.clone(),
            from: self.cfg.name.clone(),
        };
        self.suspect_node(now, s);
    }

    /// Removes dead nodes older than GossipToTheDeadTime and reshuffles. Left nodes are
    /// kept, as memberlist 0.2.2 keeps them: forgetting them would let a stale alive at the
    /// same incarnation resurrect a node that left gracefully.
    pub(super) fn reset_probe_list(&mut self, now: Duration) {
        let ttl = self.cfg.gossip_to_the_dead_time;
        let me = self.cfg.name.clone();
        let gone: Vec<Name> = self
            .nodes
            .iter()
            .filter(|(_, n)| {
                n.name() != me
                    && n.state == NodeStateKind::Dead
                    && now.saturating_sub(n.state_change.get()) > ttl
            })
            .map(|(k, _)| k.clone())
            .collect();
        for name in &gone {
            self.nodes.remove(name.as_str());
            self.suspicions.remove(name.as_str());
        }
        if !gone.is_empty() {
            self.probe_list
                .retain(|n| self.nodes.contains_key(n.as_str()));
        }
        let mut list = std::mem::take(&mut self.probe_list);
        self.rng.shuffle(&mut list);
        self.probe_list = list;
    }
}
