//! The node record: [`Node`] as the layer above sees it, the compact record the core keeps
//! per member, and the [`Delegate`] hooks that receive nodes.

use crate::info::{Info, Stamp};
use serf_wire::messages::NodeStateKind;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// What memberlist knows about one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// Name.
    pub name: String,
    /// IP.
    pub addr: IpAddr,
    /// Port.
    pub port: u16,
    /// Metadata.
    pub meta: Vec<u8>,
    /// Incarnation.
    pub incarnation: u32,
    /// State.
    pub state: NodeStateKind,
    /// When the state last changed.
    pub state_change: Duration,
    /// `[PMin, PMax, PCur, DMin, DMax, DCur]`.
    pub vsn: [u8; 6],
}

/// One record of the node map: the shared identity and this node's view of it (what
/// [`Node`] shows, without a copy of the name and metadata per record).
#[derive(Debug, Clone)]
pub(super) struct Rec {
    pub(super) info: Arc<Info>,
    pub(super) incarnation: u32,
    pub(super) state: NodeStateKind,
    pub(super) state_change: Stamp,
}

impl Rec {
    pub(super) fn node(&self) -> Node {
        Node {
            name: self.info.name.to_string(),
            addr: self.info.addr,
            port: self.info.port,
            meta: self.info.meta.to_vec(),
            incarnation: self.incarnation,
            state: self.state,
            state_change: self.state_change.get(),
            vsn: self.info.vsn,
        }
    }

    pub(super) fn name(&self) -> &str {
        &self.info.name
    }

    pub(super) fn socket_addr(&self) -> SocketAddr {
        SocketAddr::new(self.info.addr, self.info.port)
    }

    pub(super) fn dead_or_left(&self) -> bool {
        matches!(self.state, NodeStateKind::Dead | NodeStateKind::Left)
    }
}

impl Node {
    /// `addr:port`.
    pub fn socket_addr(&self) -> SocketAddr {
        SocketAddr::new(self.addr, self.port)
    }

    /// Dead or left.
    pub fn dead_or_left(&self) -> bool {
        matches!(self.state, NodeStateKind::Dead | NodeStateKind::Left)
    }
}

/// Hooks for the layer above (Serf). Every method has a do-nothing default.
pub trait Delegate {
    /// Local node metadata (at most `limit` bytes).
    fn node_meta(&mut self, _limit: usize) -> Vec<u8> {
        Vec::new()
    }
    /// A user message arrived.
    fn notify_msg(&mut self, _now: Duration, _msg: &[u8]) {}
    /// Messages to piggyback, each at most `limit - overhead` bytes in all.
    fn get_broadcasts(&mut self, _overhead: usize, _limit: usize) -> Vec<Vec<u8>> {
        Vec::new()
    }
    /// State for a push/pull.
    fn local_state(&mut self, _join: bool) -> Vec<u8> {
        Vec::new()
    }
    /// State received in a push/pull.
    fn merge_remote_state(&mut self, _now: Duration, _buf: &[u8], _join: bool) {}
    /// A node joined (or came back).
    fn notify_join(&mut self, _now: Duration, _node: &Node) {}
    /// A node died or left.
    fn notify_leave(&mut self, _now: Duration, _node: &Node) {}
    /// A node's metadata changed.
    fn notify_update(&mut self, _now: Duration, _node: &Node) {}
    /// Another node claims a known name from another address.
    fn notify_conflict(&mut self, _existing: &Node, _other: &Node) {}
    /// Payload for acks to direct pings.
    fn ack_payload(&mut self) -> Vec<u8> {
        Vec::new()
    }
    /// A probe was answered with a payload.
    fn notify_ping_complete(
        &mut self,
        _now: Duration,
        _node: &Node,
        _rtt: Duration,
        _payload: &[u8],
    ) {
    }
}

/// A delegate that does nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoDelegate;
impl Delegate for NoDelegate {}
