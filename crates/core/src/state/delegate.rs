//! The memberlist delegate: how Serf rides on memberlist (node metadata for tags, user
//! messages, broadcasts, push/pull state, join/leave/update/conflict notifications,
//! coordinates in ping acks).

use super::*;

impl Delegate for SerfState {
    fn node_meta(&mut self, limit: usize) -> Vec<u8> {
        match encode_tags(&self.cfg.tags) {
            Ok(b) if b.len() <= limit => b,
            _ => vec![0xff, 0x80],
        }
    }

    fn notify_msg(&mut self, now: Duration, msg: &[u8]) {
        self.now = now;
        metrics::histogram!("serf.msgs.received").record(msg.len() as f64);
        let decoded = match SerfMessage::decode(msg) {
            Ok(m) => m,
            Err(e) => {
                let what = match msg.first() {
                    Some(0) => "leave message",
                    Some(1) => "join message",
                    Some(3) => "user event message",
                    Some(4) => "query message",
                    Some(5) => "query response message",
                    Some(9) => "relay header",
                    Some(t) => {
                        warn!("Received message of unknown type: {t}");
                        return;
                    }
                    None => return,
                };
                tracing::error!("Error decoding {what}: {e}");
                return;
            }
        };
        match &decoded {
            SerfMessage::Leave(l) => debug!("messageLeaveType: {}", l.node),
            SerfMessage::Join(j) => debug!("messageJoinType: {}", j.node),
            SerfMessage::UserEvent(ev) => debug!("messageUserEventType: {}", ev.name),
            SerfMessage::Query(q) => debug!("messageQueryType: {}", q.name),
            SerfMessage::QueryResponse(r) => debug!("messageQueryResponseType: {}", r.from),
            SerfMessage::Relay { .. } => {}
        }
        match decoded {
            SerfMessage::Join(j) => {
                if self.handle_join_intent(&j) {
                    self.queue_intent(msg.to_vec(), None);
                }
            }
            SerfMessage::Leave(l) => {
                if self.handle_leave_intent(&l) {
                    self.queue_intent(msg.to_vec(), None);
                }
            }
            SerfMessage::UserEvent(ev) => {
                if self.handle_user_event(&ev) {
                    self.queue_event(msg.to_vec());
                }
            }
            SerfMessage::Query(q) => {
                if self.handle_query(&q) {
                    self.query_queue_push(msg.to_vec());
                }
            }
            SerfMessage::QueryResponse(r) => self.handle_query_response(r),
            SerfMessage::Relay {
                dest_ip,
                dest_port,
                inner,
                ..
            } => {
                if let Ok(ip) = serf_wire::ip_from_bytes(&dest_ip) {
                    let to = SocketAddr::new(ip, dest_port);
                    debug!("Relaying response to addr: {to}");
                    self.direct.push_back((to, inner));
                }
            }
        }
    }

    fn get_broadcasts(&mut self, overhead: usize, limit: usize) -> Vec<Vec<u8>> {
        let tl = self.serf_transmit_limit();
        let mut out = self.intents.get_broadcasts(overhead, limit, tl);
        self.check_finished();
        let mut used: usize = out.iter().map(|m| m.len() + overhead).sum();
        for q in [&mut self.query_queue, &mut self.event_queue] {
            let more = q.get_broadcasts(overhead, limit.saturating_sub(used), tl);
            used += more.iter().map(|m| m.len() + overhead).sum::<usize>();
            out.extend(more);
        }
        for m in &out {
            metrics::histogram!("serf.msgs.sent").record(m.len() as f64);
        }
        out
    }

    fn local_state(&mut self, _join: bool) -> Vec<u8> {
        let mut status_ltimes: Vec<(String, u64)> = self
            .members
            .values()
            .map(|m| (m.name().to_string(), m.status_ltime))
            .collect();
        status_ltimes.sort();
        let mut left_members: Vec<String> = self
            .members
            .values()
            .filter(|m| m.status == MemberStatus::Left)
            .map(|m| m.name().to_string())
            .collect();
        left_members.sort();
        PushPullState {
            ltime: self.clock.time(),
            status_ltimes,
            left_members,
            event_ltime: self.event_clock.time(),
            events: self.event_buffer.clone(),
            query_ltime: self.query_clock.time(),
        }
        .encode()
    }

    fn merge_remote_state(&mut self, now: Duration, buf: &[u8], join: bool) {
        self.now = now;
        let pp = match PushPullState::decode(buf) {
            Ok(pp) => pp,
            Err(e) => {
                tracing::error!("Failed to decode remote state: {e}");
                return;
            }
        };
        if pp.ltime > 0 {
            self.clock.witness(pp.ltime - 1);
        }
        if pp.event_ltime > 0 {
            self.event_clock.witness(pp.event_ltime - 1);
        }
        if pp.query_ltime > 0 {
            self.query_clock.witness(pp.query_ltime - 1);
        }
        // (Built only when needed: a push/pull of a large cluster rarely lists left members.)
        let status: HashMap<&str, u64> = if pp.left_members.is_empty() {
            HashMap::new()
        } else {
            pp.status_ltimes
                .iter()
                .map(|(n, t)| (n.as_str(), *t))
                .collect()
        };
        for name in &pp.left_members {
            let ltime = status
                .get(name.as_str())
                .copied()
                .unwrap_or(0)
                .saturating_add(1);
            self.handle_leave_intent(&LeaveIntent {
                ltime,
                node: name.clone(),
                prune: false,
            });
        }
        let left: std::collections::HashSet<&str> =
            pp.left_members.iter().map(String::as_str).collect();
        for (name, ltime) in &pp.status_ltimes {
            if !left.is_empty() && left.contains(name.as_str()) {
                continue;
            }
            self.join_intent(name, *ltime);
        }
        self.pack_members();
        if join && self.event_join_ignore {
            self.event_min_time = self.event_min_time.max(pp.event_ltime);
        }
        for slot in pp.events.into_iter().flatten() {
            for (name, payload) in slot.events {
                self.handle_user_event(&UserEvent {
                    ltime: slot.ltime,
                    name,
                    payload,
                    cc: false,
                });
            }
        }
    }

    fn notify_join(&mut self, now: Duration, node: &Node) {
        self.now = now;
        let info = self.info_of(node);
        let intent = self.recent_intents.remove(&node.name);
        let mut returned = false;
        let m = match self.members.entry(info.name.clone()) {
            std::collections::btree_map::Entry::Vacant(v) => {
                let mut m = Rec {
                    info: Arc::clone(&info),
                    status: MemberStatus::Alive,
                    status_ltime: 0,
                    leave: OptStamp::NONE,
                };
                if let Some(i) = intent {
                    m.status_ltime = i.ltime;
                    if !i.join {
                        m.status = MemberStatus::Leaving;
                    }
                }
                v.insert(m)
            }
            std::collections::btree_map::Entry::Occupied(o) => {
                let m = o.into_mut();
                let flapped = m.status == MemberStatus::Failed
                    && m.leave_time()
                        .is_some_and(|t| now.saturating_sub(t) < FLAP_TIMEOUT);
                if flapped {
                    metrics::counter!("serf.member.flap").increment(1);
                }
                returned = m.status == MemberStatus::Failed;
                m.status = MemberStatus::Alive;
                m
            }
        };
        m.leave = OptStamp::NONE;
        m.info = info;
        let ev = m.member();
        metrics::counter!("serf.member.join").increment(1);
        info!("EventMemberJoin: {} {}", ev.name, ev.addr);
        if returned {
            self.queue_resync(now, node.socket_addr());
        }
        self.emit(Event::MemberJoin(ev));
    }

    fn notify_leave(&mut self, now: Duration, node: &Node) {
        self.now = now;
        let Some(m) = self.members.get_mut(node.name.as_str()) else {
            return;
        };
        // A node that announced its own death (memberlist's `Left`) left gracefully, even
        // if its leave intent has not reached us yet: only a leave sends that. (Go's agent
        // reports it failed until the intent arrives, which can take until a push/pull.)
        let announced = node.state == serf_membership::NodeStateKind::Left;
        match (m.status, announced) {
            (MemberStatus::Leaving, _) | (MemberStatus::Alive, true) => {
                m.status = MemberStatus::Left;
                m.leave = OptStamp::new(Some(now));
                let ev = m.member();
                metrics::counter!("serf.member.left").increment(1);
                info!("EventMemberLeave: {} {}", ev.name, ev.addr);
                self.emit(Event::MemberLeave(ev));
            }
            (MemberStatus::Alive, false) => {
                m.status = MemberStatus::Failed;
                m.leave = OptStamp::new(Some(now));
                let ev = m.member();
                metrics::counter!("serf.member.failed").increment(1);
                info!("EventMemberFailed: {} {}", ev.name, ev.addr);
                self.emit(Event::MemberFailed(ev));
            }
            (other, _) => warn!(node = %node.name, status = other.as_str(), "bad state when leave"),
        }
    }

    fn ack_payload(&mut self) -> Vec<u8> {
        self.coord.get_coordinate().encode_payload()
    }

    fn notify_ping_complete(&mut self, _now: Duration, node: &Node, rtt: Duration, payload: &[u8]) {
        if payload.is_empty() {
            return;
        }
        let other = match crate::coordinate::Coordinate::decode_payload(payload) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!("Failed to decode coordinate from ping: {e}");
                return;
            }
        };
        let before = self.coord.get_coordinate();
        match self.coord.update(&node.name, &other, rtt) {
            Ok(mine) => {
                let moved = crate::coordinate::distance_to(&before, &mine);
                metrics::histogram!("serf.coordinate.adjustment-ms")
                    .record(moved.as_secs_f64() * 1e3);
                self.coord_cache.insert(node.name.clone(), other);
                self.coord_cache.insert(self.name.clone(), mine);
            }
            Err(e) => {
                metrics::counter!("serf.coordinate.rejected").increment(1);
                debug!("rejected coordinate from {}: {e}", node.name);
            }
        }
    }

    fn notify_conflict(&mut self, existing: &Node, other: &Node) {
        if existing.name != self.name {
            warn!(
                "Name conflict for '{}' both {}:{} and {}:{} are claiming",
                existing.name, existing.addr, existing.port, other.addr, other.port
            );
            return;
        }
        tracing::error!(
            "Node name conflicts with another node at {}:{}",
            other.addr,
            other.port
        );
        self.conflict_pending = self.cfg.enable_name_conflict_resolution;
    }

    fn notify_update(&mut self, now: Duration, node: &Node) {
        self.now = now;
        let info = self.info_of(node);
        let Some(m) = self.members.get_mut(node.name.as_str()) else {
            return;
        };
        m.info = info;
        let ev = m.member();
        metrics::counter!("serf.member.update").increment(1);
        info!("EventMemberUpdate: {}", ev.name);
        self.emit(Event::MemberUpdate(ev));
    }
}
