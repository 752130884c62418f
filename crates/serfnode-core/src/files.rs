//! The file API (SPEC §3): what serfnode writes for its children to read, and how.
//!
//! The content functions are pure: from this node's identity, the members Serf reports and
//! the children's Docker inspect documents to JSON text, with the original's file names,
//! key names and value types. The text is what Python 2's `json.dumps` wrote (one line,
//! `", "` and `": "` separators, non-ASCII as `\uXXXX`, no trailing newline), except that
//! object keys are sorted and each role's list is ordered oldest member first (numeric
//! `timestamp`, then id), where the original's orders were arbitrary.
//!
//! | file | content | function |
//! |---|---|---|
//! | `serfnodes_by_id.json` | node id → node info, alive serfnodes only | [`serfnodes_by_id`] |
//! | `serfnodes_by_role.json` | role → list of node info, alive serfnodes only | [`serfnodes_by_role`] |
//! | `me.json`, `parent.json` | `{"id": <node id>, "inspect": <parent's inspect>}` | [`container_info`] |
//! | `children_by_name.json` | container name → `{"id", "inspect"}` of each child | [`children_by_name`] |
//! | a child's `/me.json` | its entry in `children_by_name.json`, plus `\n` | [`child_me_json`] |
//!
//! Node info is [`NodeInfo`]: exactly `id`, `role`, `serf_ip`, `serf_port`, `service_ip`,
//! `service_port`, `timestamp` (strings) and `ports` (object of string lists). Members
//! that are not alive (`leaving`, `left`, `failed`) and members without serfnode tags are
//! left out.
//!
//! [`atomic_write`] replaces a file so that a reader sees the old or the new content, never
//! a mix (SPEC §8 item 17): temporary file in the same directory, fsync, rename, mode 0644
//! (the original's files were 0600, unreadable for non-root children), and no temporary
//! file left behind on error.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::io::{self, Write as _};
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;
use serde_json::Value;
use serf_core::{Member, MemberStatus};

use crate::pyjson;
use crate::tags::NodeInfo;

/// File name of the node-id map (in `/` and `/serfnode/`).
pub const SERFNODES_BY_ID: &str = "serfnodes_by_id.json";
/// File name of the role map (in `/` and `/serfnode/`).
pub const SERFNODES_BY_ROLE: &str = "serfnodes_by_role.json";
/// This container's info, in `/` (and each child's own, in the child's `/`).
pub const ME: &str = "me.json";
/// The parent's info in `/serfnode/` (same content as the parent's `me.json`).
pub const PARENT: &str = "parent.json";
/// The children map, in the parent's `/`.
pub const CHILDREN_BY_NAME: &str = "children_by_name.json";
/// Marker file written once the agent is up.
pub const AGENT_UP: &str = "agent_up";
/// Content of [`AGENT_UP`].
pub const AGENT_UP_TEXT: &str = "serf up";

/// Mode of the files written by [`atomic_write`].
pub const FILE_MODE: u32 = 0o644;

/// Why file content could not be made or a file not written.
#[derive(Debug)]
pub enum FilesError {
    /// A child's inspect document has no `Name` string.
    ChildWithoutName,
    /// JSON encoding failed (not expected for these types).
    Json(serde_json::Error),
    /// [`atomic_write`] was given a name that is not a plain file name.
    InvalidFileName {
        /// The name.
        name: String,
    },
    /// A file system operation failed.
    Io {
        /// What was being done ("create", "write", "sync", "rename", ...).
        op: &'static str,
        /// On which path.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
}

impl fmt::Display for FilesError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FilesError::ChildWithoutName => {
                f.write_str("a child's inspect document has no \"Name\" string")
            }
            FilesError::Json(e) => write!(f, "JSON encoding failed: {e}"),
            FilesError::InvalidFileName { name } => {
                write!(f, "{name:?} is not a plain file name")
            }
            FilesError::Io { op, path, source } => {
                write!(f, "{op} {}: {source}", path.display())
            }
        }
    }
}

impl std::error::Error for FilesError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            FilesError::Json(e) => Some(e),
            FilesError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

fn to_json<T: Serialize + ?Sized>(value: &T) -> Result<String, FilesError> {
    pyjson::to_string(value).map_err(FilesError::Json)
}

/// The alive serfnodes among `members`, oldest first (numeric timestamp, then id).
pub fn alive_nodes(members: &[Member]) -> Vec<NodeInfo> {
    let mut nodes: Vec<NodeInfo> = members
        .iter()
        .filter(|m| m.status == MemberStatus::Alive)
        .filter_map(NodeInfo::from_member)
        .collect();
    nodes.sort_by(NodeInfo::cmp_age);
    nodes
}

/// `serfnodes_by_id.json`: node id → node info, alive serfnodes only.
pub fn serfnodes_by_id(members: &[Member]) -> Result<String, FilesError> {
    let map: BTreeMap<String, NodeInfo> = alive_nodes(members)
        .into_iter()
        .map(|n| (n.id.clone(), n))
        .collect();
    to_json(&map)
}

/// `serfnodes_by_role.json`: role → node infos (oldest first), alive serfnodes only.
pub fn serfnodes_by_role(members: &[Member]) -> Result<String, FilesError> {
    let mut map: BTreeMap<String, Vec<NodeInfo>> = BTreeMap::new();
    for n in alive_nodes(members) {
        map.entry(n.role.clone()).or_default().push(n);
    }
    to_json(&map)
}

/// Container info: `{"id": <node id>, "inspect": <inspect document>}`.
#[derive(Debug, Serialize)]
struct ContainerInfo<'a> {
    id: &'a str,
    inspect: &'a Value,
}

/// `me.json` and `/serfnode/parent.json` of the parent: its node id and its own Docker
/// inspect document.
pub fn container_info(node_id: &str, inspect: &Value) -> Result<String, FilesError> {
    to_json(&ContainerInfo {
        id: node_id,
        inspect,
    })
}

/// A child's entry: its container name (inspect `Name` without the leading `/`) and its
/// inspect document with `NetworkSettings` replaced by the parent's (a child in the
/// parent's network namespace has none of its own).
fn child_entry(
    parent_inspect: &Value,
    child_inspect: &Value,
) -> Result<(String, Value), FilesError> {
    let name = child_inspect
        .get("Name")
        .and_then(Value::as_str)
        .map(|n| n.strip_prefix('/').unwrap_or(n).to_string())
        .filter(|n| !n.is_empty())
        .ok_or(FilesError::ChildWithoutName)?;
    let mut inspect = child_inspect.clone();
    if let Value::Object(map) = &mut inspect {
        let parent_net = parent_inspect
            .get("NetworkSettings")
            .cloned()
            .unwrap_or(Value::Null);
        map.insert("NetworkSettings".to_string(), parent_net);
    }
    Ok((name, inspect))
}

/// `children_by_name.json`: for each child, container name → `{"id": <parent's node id>,
/// "inspect": <child's inspect with the parent's NetworkSettings>}`. A later child with the
/// same name replaces an earlier one.
pub fn children_by_name(
    node_id: &str,
    parent_inspect: &Value,
    children_inspect: &[Value],
) -> Result<String, FilesError> {
    let mut entries: BTreeMap<String, Value> = BTreeMap::new();
    for child in children_inspect {
        let (name, inspect) = child_entry(parent_inspect, child)?;
        entries.insert(name, inspect);
    }
    let map: BTreeMap<&str, ContainerInfo<'_>> = entries
        .iter()
        .map(|(name, inspect)| {
            (
                name.as_str(),
                ContainerInfo {
                    id: node_id,
                    inspect,
                },
            )
        })
        .collect();
    to_json(&map)
}

/// A child's own `/me.json`: the same object as its entry in `children_by_name.json`,
/// followed by a newline (as the original's `echo` wrote it).
pub fn child_me_json(
    node_id: &str,
    parent_inspect: &Value,
    child_inspect: &Value,
) -> Result<String, FilesError> {
    let (_, inspect) = child_entry(parent_inspect, child_inspect)?;
    let mut text = to_json(&ContainerInfo {
        id: node_id,
        inspect: &inspect,
    })?;
    text.push('\n');
    Ok(text)
}

/// Distinguishes temporary files of one process.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

fn check_file_name(name: &str) -> Result<(), FilesError> {
    if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\0']) {
        return Err(FilesError::InvalidFileName {
            name: name.to_string(),
        });
    }
    Ok(())
}

/// Replaces `dir/name` with `bytes` atomically: the content goes to a new temporary file
/// in `dir` (`.<name>.tmp-<pid>-<n>`), is flushed to disk, gets mode 0644 and is renamed
/// over `dir/name`; then `dir` itself is synced (best effort). On error the temporary file
/// is removed and `dir/name` is unchanged.
pub fn atomic_write(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), FilesError> {
    check_file_name(name)?;
    let target = dir.join(name);
    let io_err = |op: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |source: io::Error| FilesError::Io { op, path, source }
    };
    // Create a fresh temporary file; a name taken (e.g. left by a crashed process that had
    // the same pid) is skipped.
    let mut attempt = 0;
    let (tmp, mut file) = loop {
        let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let tmp = dir.join(format!(".{name}.tmp-{}-{n}", std::process::id()));
        match fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(FILE_MODE)
            .open(&tmp)
        {
            Ok(file) => break (tmp, file),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempt < 16 => attempt += 1,
            Err(e) => return Err(io_err("create", &tmp)(e)),
        }
    };
    let result = (|| {
        file.write_all(bytes).map_err(io_err("write", &tmp))?;
        // The umask may have narrowed the mode given at creation.
        file.set_permissions(fs::Permissions::from_mode(FILE_MODE))
            .map_err(io_err("chmod", &tmp))?;
        file.sync_all().map_err(io_err("sync", &tmp))?;
        drop(file);
        fs::rename(&tmp, &target).map_err(io_err("rename", &target))
    })();
    if let Err(e) = result {
        // Best effort: the error that matters is the one above.
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    // Make the rename itself durable; the new content is in place whatever happens here.
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}
