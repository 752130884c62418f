//! Members and events as Serf reports them to the application.

use std::net::IpAddr;
use std::time::Duration;

/// Member status as Serf reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MemberStatus {
    /// 0
    None,
    /// 1
    Alive,
    /// 2
    Leaving,
    /// 3
    Left,
    /// 4
    Failed,
}

impl MemberStatus {
    /// The text used by the CLI and RPC.
    pub fn as_str(self) -> &'static str {
        match self {
            MemberStatus::None => "none",
            MemberStatus::Alive => "alive",
            MemberStatus::Leaving => "leaving",
            MemberStatus::Left => "left",
            MemberStatus::Failed => "failed",
        }
    }
}

/// A Serf member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Name.
    pub name: String,
    /// IP.
    pub addr: IpAddr,
    /// Gossip port.
    pub port: u16,
    /// Tags (order as received).
    pub tags: Vec<(String, String)>,
    /// Status.
    pub status: MemberStatus,
    /// `[PMin, PMax, PCur, DMin, DMax, DCur]`.
    pub vsn: [u8; 6],
    /// Member clock of the last accepted intent.
    pub status_ltime: u64,
    /// When it became failed or left.
    pub leave_time: Option<Duration>,
}

/// What Serf tells the application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// member-join
    MemberJoin(Member),
    /// member-leave
    MemberLeave(Member),
    /// member-failed
    MemberFailed(Member),
    /// member-update
    MemberUpdate(Member),
    /// member-reap
    MemberReap(Member),
    /// A query for the application (internal `_serf_` queries never appear). Answer with
    /// `Serf::respond(ltime, id, payload)` before `deadline`.
    Query {
        /// Query clock.
        ltime: u64,
        /// Query id.
        id: u32,
        /// Name.
        name: String,
        /// Payload.
        payload: Vec<u8>,
        /// Origin node.
        source_node: String,
        /// Respond before this time (driver clock).
        deadline: Duration,
    },
    /// An ack to one of our queries.
    QueryAck {
        /// Query clock of our query.
        ltime: u64,
        /// Its id.
        id: u32,
        /// Who acked.
        from: String,
    },
    /// A response to one of our queries.
    QueryResponse {
        /// Query clock of our query.
        ltime: u64,
        /// Its id.
        id: u32,
        /// Who answered.
        from: String,
        /// Payload.
        payload: Vec<u8>,
    },
    /// One of our queries finished (deadline reached, or every expected node answered).
    QueryDone {
        /// Query clock.
        ltime: u64,
        /// Id.
        id: u32,
    },
    /// A key operation started with `Serf::key_op` is over: every expected node answered,
    /// or its query ended.
    KeyOpDone {
        /// Query clock of the key query.
        ltime: u64,
        /// Its id.
        id: u32,
        /// What the nodes reported.
        result: Box<crate::KeyOpResult>,
    },
    /// user event
    User {
        /// Event clock.
        ltime: u64,
        /// Name.
        name: String,
        /// Payload.
        payload: Vec<u8>,
        /// Can coalesce.
        coalesce: bool,
    },
}
