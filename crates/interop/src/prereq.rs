//! Where the binaries and the target directory are, and the prerequisites a test needs (skip outside CI, fail in CI).

use super::*;

/// The cargo workspace root (`CARGO_MANIFEST_DIR/../..`).
pub fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| manifest.to_path_buf())
}

/// The cargo target directory (`CARGO_TARGET_DIR` or `<workspace>/target`).
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() {
                dir
            } else {
                workspace_root().join(dir)
            }
        }
        _ => workspace_root().join("target"),
    }
}

fn is_executable_file(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(p)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| is_executable_file(p))
}

/// The Go reference binary: `SERF_GO_BIN`, else `/usr/bin/serf`, else `serf`
/// on `PATH`.
pub fn go_serf() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("SERF_GO_BIN") {
        let p = PathBuf::from(p);
        return is_executable_file(&p).then_some(p);
    }
    let default = PathBuf::from("/usr/bin/serf");
    if is_executable_file(&default) {
        return Some(default);
    }
    find_on_path("serf")
}

/// Our Rust binary: `SERF_RS_BIN`, else the most recently built `serf` in the target
/// directory: `<target>/<triple>/{release,debug}/serf` (the workspace builds for the
/// machine's own triple, see `.cargo/config.toml`) or `<target>/{release,debug}/serf`.
pub fn our_serf() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("SERF_RS_BIN") {
        let p = PathBuf::from(p);
        return is_executable_file(&p).then_some(p);
    }
    let target = target_dir();
    // `<target>` itself and its per-triple subdirectories.
    let mut roots = vec![target.clone()];
    if let Ok(dir) = fs::read_dir(&target) {
        roots.extend(dir.flatten().map(|e| e.path()).filter(|p| p.is_dir()));
    }
    let mut candidates: Vec<(SystemTime, PathBuf)> = roots
        .iter()
        .flat_map(|root| ["release", "debug"].map(|profile| root.join(profile).join("serf")))
        .filter(|p| is_executable_file(p))
        .map(|p| {
            let mtime = fs::metadata(&p)
                .and_then(|m| m.modified())
                .unwrap_or(UNIX_EPOCH);
            (mtime, p)
        })
        .collect();
    // Newest first; on a tie the release build (listed first) wins.
    candidates.sort_by_key(|c| std::cmp::Reverse(c.0));
    candidates.into_iter().next().map(|(_, p)| p)
}

/// Whether we run in CI (`CI=true` / `CI=1`).
pub fn in_ci() -> bool {
    std::env::var("CI")
        .map(|v| {
            let v = v.trim().to_ascii_lowercase();
            v == "true" || v == "1"
        })
        .unwrap_or(false)
}

/// Something a test needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prereq {
    /// The Go reference `serf` binary.
    GoSerf,
    /// Our Rust `serf` binary.
    RustSerf,
}

impl Prereq {
    /// `None` when satisfied, else why not.
    pub fn missing(self) -> Option<String> {
        match self {
            Prereq::GoSerf => go_serf().is_none().then(|| {
                "Go serf binary not found (/usr/bin/serf, PATH, SERF_GO_BIN); \
                 install the Debian package `serf`"
                    .to_string()
            }),
            Prereq::RustSerf => our_serf().is_none().then(|| {
                format!(
                    "Rust serf binary not found ({}/{{release,debug}}/serf or SERF_RS_BIN); \
                     build it with `cargo build --release --bin serf`",
                    target_dir().display()
                )
            }),
        }
    }
}

/// Checks prerequisites. Returns `true` if all are there. Otherwise: under
/// `CI=true` panics (a missing prerequisite in CI is a failure); elsewhere
/// prints `skipping: <why>` to stderr and returns `false` — the caller
/// should return early (see [`require!`]).
pub fn require(kinds: &[Prereq]) -> bool {
    let why: Vec<String> = kinds.iter().filter_map(|k| k.missing()).collect();
    if why.is_empty() {
        return true;
    }
    let test = current_test_name();
    if in_ci() {
        panic!(
            "{test}: missing prerequisite in CI (CI=true): {}",
            why.join("; ")
        );
    }
    eprintln!("skipping: {test}: {}", why.join("; "));
    false
}

/// `require!(Prereq::GoSerf, Prereq::RustSerf);` at the top of a test:
/// returns early (skip) when a prerequisite is missing, panics under `CI=true`.
#[macro_export]
macro_rules! require {
    ($($kind:expr),+ $(,)?) => {
        if !$crate::require(&[$($kind),+]) {
            return;
        }
    };
}

/// Name of the running test (libtest names each test thread after the test).
pub fn current_test_name() -> String {
    thread::current()
        .name()
        .filter(|n| *n != "main")
        .map(str::to_string)
        .unwrap_or_else(|| format!("pid{}", std::process::id()))
}
