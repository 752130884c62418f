//! Real Docker for the serfnode tests: images built here from local files (no registry),
//! containers and networks named per test and removed by exact name when the test ends
//! (passed or not), polling with deadlines.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Image with the serfnode binary, busybox and test handlers.
pub(crate) const NODE_IMAGE: &str = "serfnode-test/node:latest";
/// Image with busybox only, for children.
pub(crate) const BUSYBOX_IMAGE: &str = "serfnode-test/busybox:latest";
/// Image with Debian's Go `serf` and busybox.
pub(crate) const GO_IMAGE: &str = "serfnode-test/goserf:latest";
/// Image with our `serf` (as cargo built it), shaped as `scripts/serf-image` makes it.
pub(crate) const SERF_IMAGE: &str = "serfnode-test/serf:latest";

/// Our `serf` binary from this workspace's build (`cargo build --workspace` makes it): in
/// the same directory as the `serfnode` binary cargo built for this test, whatever the
/// target directory, triple and profile.
fn our_serf() -> PathBuf {
    let serfnode = Path::new(env!("CARGO_BIN_EXE_serfnode"));
    let bin = serfnode.with_file_name("serf");
    assert!(
        bin.is_file(),
        "{} is missing: build the workspace first (cargo build --workspace)",
        bin.display()
    );
    bin
}

/// Runs `docker args...`; stdout (trimmed) or an error with stderr.
pub(crate) fn docker(args: &[&str]) -> Result<String, String> {
    let out = Command::new("docker")
        .args(args)
        .output()
        .map_err(|e| format!("docker {}: {e}", args.join(" ")))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(format!(
            "docker {}: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim(),
            String::from_utf8_lossy(&out.stdout).trim()
        ))
    }
}

/// Like [`docker`], panicking on failure.
pub(crate) fn must(args: &[&str]) -> String {
    docker(args).unwrap_or_else(|e| panic!("{e}"))
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Whether the Docker tests can run: Docker answers, busybox-static and Go's serf are
/// installed. Outside CI a missing piece skips with a message; in CI it fails.
pub(crate) fn ready(test: &str) -> bool {
    let mut missing = Vec::new();
    if docker(&["version", "--format", "{{.Server.Version}}"]).is_err() {
        missing.push("a running Docker daemon (docker version failed)");
    }
    if !Path::new("/bin/busybox").exists() {
        missing.push("/bin/busybox (apt-get install busybox-static)");
    }
    if which("serf").is_none() {
        missing.push("Go serf (apt-get install serf)");
    }
    if missing.is_empty() {
        return true;
    }
    if in_ci() {
        panic!(
            "CI=true but {test} cannot run without: {}",
            missing.join(", ")
        );
    }
    eprintln!("skipping {test}: needs {}", missing.join(", "));
    false
}

fn which(cmd: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join(cmd))
            .find(|c| c.is_file())
    })
}

/// The shared libraries `bin` loads (from `ldd`), to copy into a scratch image.
fn libs_of(bin: &Path) -> Vec<PathBuf> {
    let out = Command::new("ldd").arg(bin).output().expect("ldd");
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .filter_map(|l| {
            let l = l.trim();
            let path = match l.split_once("=>") {
                Some((_, rhs)) => rhs.split_whitespace().next()?,
                None => l.split_whitespace().next()?,
            };
            path.starts_with('/').then(|| PathBuf::from(path))
        })
        .collect()
}

fn copy_into(root: &Path, src: &Path, dest: &str) {
    let to = root.join(dest.trim_start_matches('/'));
    std::fs::create_dir_all(to.parent().expect("parent")).expect("mkdir");
    std::fs::copy(src, &to).unwrap_or_else(|e| panic!("copy {}: {e}", src.display()));
}

fn write_exec(root: &Path, dest: &str, text: &str) {
    use std::os::unix::fs::PermissionsExt as _;
    let to = root.join(dest.trim_start_matches('/'));
    std::fs::create_dir_all(to.parent().expect("parent")).expect("mkdir");
    std::fs::write(&to, text).expect("write");
    std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

fn add_busybox(root: &Path) {
    copy_into(root, Path::new("/bin/busybox"), "/bin/busybox");
    std::os::unix::fs::symlink("busybox", root.join("bin/sh")).expect("symlink");
    std::fs::create_dir_all(root.join("tmp")).expect("tmp");
}

fn add_binary(root: &Path, bin: &Path, dest: &str) {
    copy_into(root, bin, dest);
    for lib in libs_of(bin) {
        let dest = lib.to_string_lossy().into_owned();
        if !root.join(dest.trim_start_matches('/')).exists() {
            copy_into(root, &lib, &dest);
        }
    }
}

fn build(tag: &str, root: &Path, dockerfile: &str) {
    std::fs::write(root.join("Dockerfile"), dockerfile).expect("Dockerfile");
    let ctx = root.to_string_lossy().into_owned();
    must(&["build", "-q", "-t", tag, &ctx]);
}

/// Builds the three test images (once per test binary).
pub(crate) fn images() {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let base = std::env::temp_dir().join(format!("serfnode-images-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        // Node: serfnode (as cargo built it, with its libraries), busybox, handlers.
        let root = base.join("node/rootfs");
        std::fs::create_dir_all(&root).expect("mkdir");
        add_binary(&root, Path::new(env!("CARGO_BIN_EXE_serfnode")), "/usr/bin/serfnode");
        // A CLI to talk to the embedded agent's RPC, as a child would.
        add_binary(&root, &which("serf").expect("serf"), "/usr/bin/serf");
        add_busybox(&root);
        std::fs::create_dir_all(root.join("serfnode")).expect("mkdir");
        write_exec(
            &root,
            "/handler/events/deploy",
            "#!/bin/sh\necho \"$SERF_EVENT $SERF_USER_EVENT $SERF_SELF_NAME $SERF_TAG_ROLE $(cat)\" >> /tmp/handled\n",
        );
        write_exec(&root, "/handler/events/whoami", "#!/bin/sh\necho \"I am $SERF_SELF_NAME\"\n");
        write_exec(&root, "/handler/init", "#!/bin/sh\necho init > /tmp/init\n");
        // Leaves an orphan behind: PID 1 (serfnode) must reap it.
        write_exec(
            &root,
            "/handler/events/orphan",
            "#!/bin/sh\n(sleep 1; echo done > /tmp/orphan) &\nexit 0\n",
        );
        build(
            NODE_IMAGE,
            &base.join("node"),
            "FROM scratch\nCOPY rootfs/ /\nVOLUME /serfnode\nENTRYPOINT [\"/usr/bin/serfnode\"]\n",
        );
        // Busybox for children.
        let root = base.join("busybox/rootfs");
        std::fs::create_dir_all(&root).expect("mkdir");
        add_busybox(&root);
        build(BUSYBOX_IMAGE, &base.join("busybox"), "FROM scratch\nCOPY rootfs/ /\nCMD [\"sh\"]\n");
        // Go serf, with busybox as /bin/sh for its handlers.
        let root = base.join("go/rootfs");
        std::fs::create_dir_all(&root).expect("mkdir");
        add_binary(&root, &which("serf").expect("serf"), "/usr/bin/serf");
        add_busybox(&root);
        build(
            GO_IMAGE,
            &base.join("go"),
            "FROM scratch\nCOPY rootfs/ /\nENTRYPOINT [\"/usr/bin/serf\"]\n",
        );
        // Our serf, as scripts/serf-image shapes it (non-root, health check).
        let root = base.join("serf/rootfs");
        std::fs::create_dir_all(root.join("tmp")).expect("mkdir");
        add_binary(&root, &our_serf(), "/serf");
        build(
            SERF_IMAGE,
            &base.join("serf"),
            "FROM scratch\nCOPY --chown=65534:65534 rootfs/ /\nUSER 65534:65534\n\
             HEALTHCHECK --interval=2s --timeout=3s CMD [\"/serf\", \"info\"]\n\
             ENTRYPOINT [\"/serf\"]\n",
        );
        let _ = std::fs::remove_dir_all(&base);
    });
}

/// Polls `f` every 200 ms until it gives a value; panics naming `what` after `timeout`.
pub(crate) fn poll<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A container this test started.
#[derive(Debug, Clone)]
pub(crate) struct Container {
    /// Full id.
    pub(crate) id: String,
    /// Name.
    pub(crate) name: String,
}

impl Container {
    /// A file's content inside the container (needs busybox in the image).
    pub(crate) fn cat(&self, path: &str) -> Option<String> {
        docker(&["exec", &self.id, "/bin/busybox", "cat", path]).ok()
    }

    /// A file's content parsed as JSON.
    pub(crate) fn json(&self, path: &str) -> Option<serde_json::Value> {
        self.cat(path).and_then(|t| serde_json::from_str(&t).ok())
    }

    /// `docker inspect -f <format>`.
    pub(crate) fn inspect(&self, format: &str) -> String {
        must(&["inspect", "-f", format, &self.id])
    }

    /// The container's IP on `network`.
    pub(crate) fn ip(&self, network: &str) -> String {
        self.inspect(&format!(
            "{{{{(index .NetworkSettings.Networks \"{network}\").IPAddress}}}}"
        ))
    }

    /// stdout and stderr so far.
    pub(crate) fn logs(&self) -> String {
        let out = Command::new("docker")
            .args(["logs", &self.id])
            .output()
            .expect("docker logs");
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }
}

/// What one test created; all of it is removed on drop.
#[derive(Debug)]
pub(crate) struct Scope {
    prefix: String,
    containers: Mutex<Vec<String>>,
    networks: Mutex<Vec<String>>,
    /// A directory for files to mount.
    pub(crate) dir: PathBuf,
}

impl Scope {
    /// A scope whose names start with `sntest-<pid>-<test>`.
    pub(crate) fn new(test: &str) -> Scope {
        let prefix = format!("sntest-{}-{test}", std::process::id());
        let dir = std::env::temp_dir().join(&prefix);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("mkdir");
        Scope {
            prefix,
            containers: Mutex::new(Vec::new()),
            networks: Mutex::new(Vec::new()),
            dir,
        }
    }

    /// The scope's name for `suffix`.
    pub(crate) fn name(&self, suffix: &str) -> String {
        format!("{}-{suffix}", self.prefix)
    }

    /// Creates a network (`extra`: e.g. `--subnet`).
    pub(crate) fn network(&self, suffix: &str, extra: &[&str]) -> String {
        let name = self.name(suffix);
        let mut args = vec!["network", "create"];
        args.extend_from_slice(extra);
        args.push(&name);
        must(&args);
        self.networks.lock().expect("lock").push(name.clone());
        name
    }

    /// `docker run -d --name <scope>-<suffix> args...`.
    pub(crate) fn run(&self, suffix: &str, args: &[&str]) -> Container {
        let name = self.name(suffix);
        // Recorded first, so a half-made container is removed too.
        self.containers.lock().expect("lock").push(name.clone());
        let mut all = vec!["run", "-d", "--name", &name];
        all.extend_from_slice(args);
        let id = must(&all);
        Container { id, name }
    }

    /// A serfnode container on `network` with the Docker socket and `env` (`K=V`).
    pub(crate) fn serfnode(
        &self,
        suffix: &str,
        network: &str,
        env: &[&str],
        extra: &[&str],
    ) -> Container {
        let mut args = vec![
            "--network",
            network,
            "-v",
            "/var/run/docker.sock:/var/run/docker.sock",
        ];
        for e in env {
            args.push("-e");
            args.push(e);
        }
        args.extend_from_slice(extra);
        args.push(NODE_IMAGE);
        self.run(suffix, &args)
    }
}

impl Scope {
    /// Records a container made by other means (by full id) for removal, with its
    /// children.
    pub(crate) fn adopt(&self, id: &str) {
        self.containers.lock().expect("lock").push(id.to_string());
    }
}

impl Drop for Scope {
    fn drop(&mut self) {
        let containers =
            std::mem::take(&mut *self.containers.lock().unwrap_or_else(|e| e.into_inner()));
        for c in containers.iter().rev() {
            // Children a serfnode made carry its id as a label: remove them too.
            let is_id = c.len() == 64 && c.bytes().all(|b| b.is_ascii_hexdigit());
            let id = if is_id {
                Ok(c.clone())
            } else {
                docker(&["inspect", "-f", "{{.Id}}", c])
            };
            if let Ok(id) = id {
                let filter = format!("label=serfnode.parent={id}");
                if let Ok(kids) = docker(&["ps", "-aq", "--no-trunc", "--filter", &filter]) {
                    for kid in kids.split_whitespace() {
                        let _ = docker(&["rm", "-f", "-v", kid]);
                    }
                }
            }
            let _ = docker(&["rm", "-f", "-v", c]);
        }
        for n in self
            .networks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            let _ = docker(&["network", "rm", n]);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
