//! What reaches a node: arrival at its kernel (dropped when down or cut off, queued in a
//! bounded buffer while paused), the starvation delay, then the machine handling it.

use super::*;

impl<M: Machine> Sim<M> {
    pub(super) fn on_arrive(&mut self, node: NodeId, msg: Inbound) {
        let is_packet = matches!(msg, Inbound::Packet { .. });
        if self.slots[node].status != Status::Running {
            if let Inbound::StreamTimeout { stream } = msg {
                self.streams.remove(&stream);
            }
            if is_packet {
                self.stats.packets_dropped += 1;
                self.stats.dropped_down += 1;
            }
            return;
        }
        if let Some(src) = msg.source() {
            if !self.reachable(src, node) {
                if is_packet {
                    self.stats.packets_dropped += 1;
                    self.stats.dropped_partition += 1;
                }
                return;
            }
        }
        let limit = self.net.pause_buffer_packets;
        let s = &mut self.slots[node];
        if s.paused {
            if is_packet {
                if s.pause_queue_packets >= limit {
                    s.pause_dropped += 1;
                    self.stats.packets_dropped += 1;
                    self.stats.dropped_buffer += 1;
                    return;
                }
                s.pause_queue_packets += 1;
            }
            s.pause_queue.push_back(msg);
            return;
        }
        self.enqueue_processing(node, msg);
    }

    /// Hands an inbound item to the process now, or after the starvation delay (FIFO).
    /// Local timers (stream timeouts) are never delayed.
    pub(super) fn enqueue_processing(&mut self, node: NodeId, msg: Inbound) {
        let now = self.now;
        let s = &mut self.slots[node];
        if matches!(msg, Inbound::StreamTimeout { .. }) {
            self.process(node, msg);
            return;
        }
        let at = (now + s.starve).max(s.last_process);
        s.last_process = at;
        if at <= now {
            self.process(node, msg);
        } else {
            let epoch = s.epoch;
            self.push(at, Action::Process { node, epoch, msg });
        }
    }

    pub(super) fn process(&mut self, node: NodeId, msg: Inbound) {
        let now = self.now;
        match msg {
            Inbound::Packet { from, data } => {
                let from_addr = self.slots[from].addr;
                let len = data.len() as u64;
                self.stats.packets_delivered += 1;
                self.stats.bytes_delivered += len;
                let s = &mut self.slots[node];
                s.net.packets_in += 1;
                s.net.bytes_in += len;
                s.core.handle_packet(now, from_addr, &data);
            }
            Inbound::StreamRequest { stream, from, data } => {
                let from_addr = self.slots[from].addr;
                let core = &mut self.slots[node].core;
                let decoded = core.memberlist().decode_stream(&data);
                let reply = match decoded {
                    Ok((m, _)) => core.handle_stream(now, from_addr, m),
                    Err(e) => {
                        self.trace.push(
                            now,
                            Some(node),
                            TraceKind::StreamError {
                                error: e.to_string(),
                            },
                        );
                        None
                    }
                };
                if let Some(reply) = reply {
                    self.send_stream_reply(node, stream, reply);
                }
            }
            Inbound::StreamReply { stream, data, .. } => {
                let Some(p) = self.streams.remove(&stream) else {
                    return;
                };
                let s = &mut self.slots[node];
                if p.initiator != node || p.epoch != s.epoch {
                    return;
                }
                self.stats.streams_completed += 1;
                let decoded = s.core.memberlist().decode_stream(&data);
                let reply = match decoded {
                    Ok((m, _)) => Ok(m),
                    Err(e) => {
                        self.trace.push(
                            now,
                            Some(node),
                            TraceKind::StreamError {
                                error: e.to_string(),
                            },
                        );
                        Err(e.to_string())
                    }
                };
                let s = &mut self.slots[node];
                let ok = s.core.handle_stream_result(now, p.kind, reply).is_ok();
                if p.kind == StreamPurpose::Join {
                    s.core.join_finished(now, usize::from(ok));
                    self.trace
                        .push(now, Some(node), TraceKind::JoinReply { ok });
                }
            }
            Inbound::StreamTimeout { stream } => {
                let Some(p) = self.streams.remove(&stream) else {
                    return;
                };
                self.stats.streams_failed += 1;
                let s = &mut self.slots[node];
                if p.initiator != node || p.epoch != s.epoch {
                    return;
                }
                let timed_out = Err("i/o timeout".to_string());
                let _ = s.core.handle_stream_result(now, p.kind, timed_out);
                if p.kind == StreamPurpose::Join {
                    s.core.join_finished(now, 0);
                    self.trace.push(now, Some(node), TraceKind::JoinTimedOut);
                }
            }
        }
        self.flush(node, false);
    }
}
