//! What can go wrong with the snapshot file.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

/// Why a snapshot operation failed. Display gives the text the agent logs (for
/// [`SnapshotError::Open`], Go's exact text).
#[derive(Debug)]
#[non_exhaustive]
pub enum SnapshotError {
    /// The file could not be opened or created.
    Open {
        /// The snapshot file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The file could not be read for replay.
    Read {
        /// The snapshot file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// A torn last line could not be cut off.
    Truncate {
        /// The snapshot file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// Appending a record failed (the file may hold part of it until a compaction).
    Write(io::Error),
    /// Appends stay suspended after an earlier write error until a compaction succeeds.
    Suspended,
    /// `fsync` failed.
    Sync(io::Error),
    /// Rewriting the file from memory failed.
    Compact(io::Error),
    /// A write failed and the compaction that would repair the file was not allowed yet
    /// (`retry_in`) or failed too (`failure`).
    Unrepaired {
        /// The first failure.
        cause: Box<SnapshotError>,
        /// The failed repair, if one was tried.
        failure: Option<Box<SnapshotError>>,
        /// When no repair was tried: how long until the next attempt.
        retry_in: Duration,
    },
    /// A record that cannot be written as one line (a node name with a newline, or too
    /// long): not recorded.
    Rejected {
        /// The node name (shortened).
        name: String,
        /// Whether the name has a newline (else the line is too long).
        newline: bool,
    },
}

impl std::fmt::Display for SnapshotError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SnapshotError::Open { path, source } => write!(
                f,
                "failed to open snapshot: open {}: {}",
                path.display(),
                serf_gocompat::errors::io_text(source)
            ),
            SnapshotError::Read { path, source } => {
                write!(f, "failed to read snapshot {}: {source}", path.display())
            }
            SnapshotError::Truncate { path, source } => write!(
                f,
                "failed to truncate torn snapshot tail of {}: {source}",
                path.display()
            ),
            SnapshotError::Write(e) => write!(f, "failed to update snapshot: {e}"),
            SnapshotError::Suspended => f.write_str("snapshot writes suspended after an error"),
            SnapshotError::Sync(e) => write!(f, "failed to sync snapshot: {e}"),
            SnapshotError::Compact(e) => write!(f, "snapshot compaction failed: {e}"),
            SnapshotError::Unrepaired {
                cause,
                failure: Some(failure),
                ..
            } => write!(f, "{cause}; recovery failed: {failure}"),
            SnapshotError::Unrepaired {
                cause, retry_in, ..
            } => write!(
                f,
                "{cause}; next compaction attempt within {}s",
                retry_in.as_secs()
            ),
            SnapshotError::Rejected {
                name,
                newline: true,
            } => write!(f, "node name {name:?} contains a newline, not recorded"),
            SnapshotError::Rejected { name, .. } => {
                write!(
                    f,
                    "snapshot line for node {name:?} is too long, not recorded"
                )
            }
        }
    }
}

impl std::error::Error for SnapshotError {}
