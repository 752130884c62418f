//! Response bodies (docs/agent-rpc.md section 4).

use crate::body::{str_bytes, str_map, Body};
use serf_wire::msgpack::{Reader, Writer};
use std::net::IpAddr;

/// A member as the RPC reports it (Go's `client.Member`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Member {
    /// Name.
    pub name: String,
    /// The raw `Addr` bytes (4 or 16 for an IP; see [`Member::ip`]).
    pub addr: Vec<u8>,
    /// Gossip port.
    pub port: u16,
    /// Tags, in the order received.
    pub tags: Vec<(String, String)>,
    /// Status text (`alive`, `leaving`, `left`, `failed`, `none`).
    pub status: String,
    /// memberlist protocol min, max, current.
    pub protocol: [u8; 3],
    /// Serf protocol min, max, current.
    pub delegate: [u8; 3],
}

impl Member {
    /// The address as an IP (`None` when `addr` is not 4 or 16 bytes long).
    pub fn ip(&self) -> Option<IpAddr> {
        serf_wire::ip_from_bytes(&self.addr).ok()
    }
}

impl Body for Member {
    fn encode_into(&self, w: &mut Writer) {
        w.map(11).str("Addr").bytes(&self.addr);
        w.str("DelegateCur").uint(u64::from(self.delegate[2]));
        w.str("DelegateMax").uint(u64::from(self.delegate[1]));
        w.str("DelegateMin").uint(u64::from(self.delegate[0]));
        w.str("Name")
            .str(&self.name)
            .str("Port")
            .uint(u64::from(self.port));
        w.str("ProtocolCur").uint(u64::from(self.protocol[2]));
        w.str("ProtocolMax").uint(u64::from(self.protocol[1]));
        w.str("ProtocolMin").uint(u64::from(self.protocol[0]));
        w.str("Status").str(&self.status);
        w.str("Tags");
        str_map(w, &self.tags);
    }
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, serf_wire::Error> {
        let mut m = Member::default();
        r.struct_fields(|k, r| {
            match k {
                b"Name" => m.name = r.string()?,
                b"Addr" => m.addr = r.bytes()?.to_vec(),
                b"Port" => m.port = r.u16()?,
                b"Tags" => m.tags = r.str_map()?,
                b"Status" => m.status = r.string()?,
                b"ProtocolMin" => m.protocol[0] = r.u8()?,
                b"ProtocolMax" => m.protocol[1] = r.u8()?,
                b"ProtocolCur" => m.protocol[2] = r.u8()?,
                b"DelegateMin" => m.delegate[0] = r.u8()?,
                b"DelegateMax" => m.delegate[1] = r.u8()?,
                b"DelegateCur" => m.delegate[2] = r.u8()?,
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        Ok(m)
    }
}

/// Encodes a member list (shared by [`MembersResponse`] and member stream events).
pub(crate) fn encode_members(w: &mut Writer, members: &[Member]) {
    w.array(members.len());
    for m in members {
        m.encode_into(w);
    }
}

/// Decodes a member list (nil is empty).
pub(crate) fn decode_members(r: &mut Reader<'_>) -> Result<Vec<Member>, serf_wire::Error> {
    if r.try_nil()? {
        return Ok(Vec::new());
    }
    let n = r.array_len()?;
    let mut out = Vec::with_capacity(n.min(1024));
    for _ in 0..n {
        out.push(Member::decode_from(r)?);
    }
    Ok(out)
}

/// The answer to `members` and `members-filtered`: `{Members}`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MembersResponse {
    /// The members.
    pub members: Vec<Member>,
}

impl Body for MembersResponse {
    fn encode_into(&self, w: &mut Writer) {
        w.map(1).str("Members");
        encode_members(w, &self.members);
    }
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, serf_wire::Error> {
        let mut out = MembersResponse::default();
        r.struct_fields(|k, r| {
            if k != b"Members" {
                return Ok(false);
            }
            out.members = decode_members(r)?;
            Ok(true)
        })?;
        Ok(out)
    }
}

/// The answer to `join`: `{Num}`, nodes contacted (sent also with an error).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JoinResponse {
    /// Nodes contacted.
    pub num: i64,
}

impl Body for JoinResponse {
    fn encode_into(&self, w: &mut Writer) {
        w.map(1).str("Num").int(self.num);
    }
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, serf_wire::Error> {
        let mut out = JoinResponse::default();
        r.struct_fields(|k, r| {
            if k == b"Num" {
                out.num = r.i64()?;
                return Ok(true);
            }
            Ok(false)
        })?;
        Ok(out)
    }
}

/// The answer to the key commands: `{Keys, Messages, NumErr, NumNodes, NumResp}` (sent also
/// with an error).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyResponse {
    /// Key → number of nodes holding it (`list-keys` only; `None` is nil).
    pub keys: Option<Vec<(String, i64)>>,
    /// Node → error message.
    pub messages: Vec<(String, String)>,
    /// Nodes that reported an error.
    pub num_err: i64,
    /// Nodes in the cluster.
    pub num_nodes: i64,
    /// Nodes that answered.
    pub num_resp: i64,
}

impl Body for KeyResponse {
    fn encode_into(&self, w: &mut Writer) {
        w.map(5).str("Keys");
        match &self.keys {
            Some(keys) => {
                w.map(keys.len());
                for (k, n) in keys {
                    w.str(k).int(*n);
                }
            }
            None => {
                w.nil();
            }
        }
        w.str("Messages");
        str_map(w, &self.messages);
        w.str("NumErr")
            .int(self.num_err)
            .str("NumNodes")
            .int(self.num_nodes);
        w.str("NumResp").int(self.num_resp);
    }
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, serf_wire::Error> {
        let mut resp = KeyResponse::default();
        r.struct_fields(|k, r| {
            match k {
                b"Keys" => {
                    resp.keys = if r.try_nil()? {
                        None
                    } else {
                        let n = r.map_len()?;
                        let mut v = Vec::with_capacity(n.min(1024));
                        for _ in 0..n {
                            let key = r.string()?;
                            let count = r.i64()?;
                            v.push((key, count));
                        }
                        Some(v)
                    }
                }
                b"Messages" => resp.messages = r.str_map()?,
                b"NumErr" => resp.num_err = r.i64()?,
                b"NumNodes" => resp.num_nodes = r.i64()?,
                b"NumResp" => resp.num_resp = r.i64()?,
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        Ok(resp)
    }
}

/// One section of [`StatsResponse`]: its name and key/value strings, as raw bytes (Go
/// strings may hold anything).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatsSection {
    /// Section name (`agent`, `runtime`, `serf`, `tags`, `event_handlers`).
    pub name: Vec<u8>,
    /// Key/value pairs (`None` is nil).
    pub entries: Option<Vec<(Vec<u8>, Vec<u8>)>>,
}

/// The answer to `stats`: `map[string]map[string]string`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatsResponse {
    /// The sections in the order received (`None` is nil).
    pub sections: Option<Vec<StatsSection>>,
}

impl Body for StatsResponse {
    fn encode_into(&self, w: &mut Writer) {
        let Some(sections) = &self.sections else {
            w.nil();
            return;
        };
        w.map(sections.len());
        for s in sections {
            str_bytes(w, &s.name);
            match &s.entries {
                None => {
                    w.nil();
                }
                Some(kv) => {
                    w.map(kv.len());
                    for (k, v) in kv {
                        str_bytes(w, k);
                        str_bytes(w, v);
                    }
                }
            }
        }
    }
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, serf_wire::Error> {
        if r.try_nil()? {
            return Ok(StatsResponse { sections: None });
        }
        let n = r.map_len()?;
        let mut out = Vec::with_capacity(n.min(64));
        for _ in 0..n {
            let name = r.str_bytes()?.to_vec();
            if r.try_nil()? {
                out.push(StatsSection {
                    name,
                    entries: None,
                });
                continue;
            }
            let m = r.map_len()?;
            let mut kv = Vec::with_capacity(m.min(1024));
            for _ in 0..m {
                let k = r.str_bytes()?.to_vec();
                let v = r.str_bytes()?.to_vec();
                kv.push((k, v));
            }
            out.push(StatsSection {
                name,
                entries: Some(kv),
            });
        }
        Ok(StatsResponse {
            sections: Some(out),
        })
    }
}

/// A network coordinate (Vivaldi).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Coordinate {
    /// Euclidean part.
    pub vec: Vec<f64>,
    /// Error estimate.
    pub error: f64,
    /// Adjustment.
    pub adjustment: f64,
    /// Height.
    pub height: f64,
}

/// The answer to `get-coordinate`: `{Coord, Ok}`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CoordinateResponse {
    /// The coordinate (`None`: `Ok` false, a zero coordinate with a nil `Vec` on the wire).
    pub coord: Option<Coordinate>,
}

impl Body for CoordinateResponse {
    fn encode_into(&self, w: &mut Writer) {
        w.map(2).str("Coord").map(4);
        match &self.coord {
            Some(c) => {
                w.str("Adjustment")
                    .f64(c.adjustment)
                    .str("Error")
                    .f64(c.error);
                w.str("Height").f64(c.height).str("Vec").array(c.vec.len());
                for v in &c.vec {
                    w.f64(*v);
                }
            }
            None => {
                w.str("Adjustment")
                    .f64(0.0)
                    .str("Error")
                    .f64(0.0)
                    .str("Height")
                    .f64(0.0);
                w.str("Vec").nil();
            }
        }
        w.str("Ok").bool(self.coord.is_some());
    }
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, serf_wire::Error> {
        let mut coord = Coordinate::default();
        let mut ok = false;
        r.struct_fields(|k, r| {
            match k {
                b"Ok" => ok = r.bool()?,
                b"Coord" => r.struct_fields(|k, r| {
                    match k {
                        b"Adjustment" => coord.adjustment = r.f64()?,
                        b"Error" => coord.error = r.f64()?,
                        b"Height" => coord.height = r.f64()?,
                        b"Vec" => {
                            coord.vec.clear();
                            if !r.try_nil()? {
                                let n = r.array_len()?;
                                for _ in 0..n {
                                    coord.vec.push(r.f64()?);
                                }
                            }
                        }
                        _ => return Ok(false),
                    }
                    Ok(true)
                })?,
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        Ok(CoordinateResponse {
            coord: ok.then_some(coord),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_round_trip() {
        let m = Member {
            name: "alpha".into(),
            addr: vec![127, 0, 0, 1],
            port: 7946,
            tags: vec![("role".into(), "web".into())],
            status: "alive".into(),
            protocol: [1, 5, 2],
            delegate: [2, 5, 4],
        };
        assert_eq!(m.ip(), Some(IpAddr::from([127, 0, 0, 1])));
        let r = MembersResponse {
            members: vec![m.clone(), m],
        };
        assert_eq!(MembersResponse::decode(&r.encode()).ok(), Some(r));
        let k = KeyResponse {
            keys: Some(vec![("a".into(), 2)]),
            messages: vec![("n".into(), "bad".into())],
            num_err: 1,
            num_nodes: 2,
            num_resp: 2,
        };
        assert_eq!(KeyResponse::decode(&k.encode()).ok(), Some(k));
        let s = StatsResponse {
            sections: Some(vec![StatsSection {
                name: b"agent".to_vec(),
                entries: Some(vec![(b"name".to_vec(), vec![0xff; 40])]),
            }]),
        };
        assert_eq!(StatsResponse::decode(&s.encode()).ok(), Some(s));
        let c = CoordinateResponse {
            coord: Some(Coordinate {
                vec: vec![0.5, -1.0],
                error: 1.5,
                adjustment: 0.1,
                height: 1e-5,
            }),
        };
        assert_eq!(CoordinateResponse::decode(&c.encode()).ok(), Some(c));
        let none = CoordinateResponse { coord: None };
        assert_eq!(CoordinateResponse::decode(&none.encode()).ok(), Some(none));
        assert_eq!(
            JoinResponse::decode(&JoinResponse { num: 3 }.encode()).ok(),
            Some(JoinResponse { num: 3 })
        );
    }
}
