//! The Docker Engine API calls serfnode makes, over the daemon's unix socket (`bollard`).
//!
//! The API version is negotiated with the daemon at connect time, so one build talks to
//! old and new engines. Inspect documents are handed on as JSON (`serde_json::Value`):
//! the file API publishes them as they are.

use bollard::models::{ContainerCreateBody, HostConfig, PortBinding};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, InspectContainerOptions, ListContainersOptionsBuilder,
    StopContainerOptionsBuilder, UploadToContainerOptionsBuilder, WaitContainerOptions,
};
use futures_util::StreamExt as _;
use serde_json::Value;
use std::collections::HashMap;
use std::fmt;

/// Label naming the serfnode container that owns a child.
pub const LABEL_PARENT: &str = "serfnode.parent";
/// Label naming a child by its name in `serfnode.yml` (or the `DOCKER_RUN` name).
pub const LABEL_CHILD: &str = "serfnode.child";

/// A failed Docker call.
#[derive(Debug)]
pub struct DockerError {
    /// What was being done ("inspect container abc", ...).
    pub what: String,
    /// The client's error.
    pub source: bollard::errors::Error,
}

impl fmt::Display for DockerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.what, self.source)
    }
}

impl std::error::Error for DockerError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

impl DockerError {
    /// Whether the daemon answered 404 (no such container or image).
    pub fn is_not_found(&self) -> bool {
        matches!(
            self.source,
            bollard::errors::Error::DockerResponseServerError {
                status_code: 404,
                ..
            }
        )
    }
}

fn err(what: impl Into<String>) -> impl FnOnce(bollard::errors::Error) -> DockerError {
    let what = what.into();
    move |source| DockerError { what, source }
}

/// A container to create.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContainerSpec {
    /// Container name.
    pub name: String,
    /// Image (must exist locally: serfnode never pulls).
    pub image: String,
    /// Command (empty: the image's).
    pub cmd: Vec<String>,
    /// Entrypoint override.
    pub entrypoint: Option<Vec<String>>,
    /// `KEY=VALUE` environment entries.
    pub env: Vec<String>,
    /// `-v` values (`/host:/container[:ro]` or `volume:/path`).
    pub binds: Vec<String>,
    /// Containers whose volumes it mounts.
    pub volumes_from: Vec<String>,
    /// `container:<id>` to share that container's network namespace.
    pub network_mode: Option<String>,
    /// Published ports: `port/proto` → host ports.
    pub port_bindings: Vec<(String, Vec<String>)>,
    /// Working directory.
    pub working_dir: Option<String>,
    /// User.
    pub user: Option<String>,
    /// Privileged mode.
    pub privileged: bool,
    /// Labels.
    pub labels: Vec<(String, String)>,
}

/// A Docker Engine API client.
#[derive(Debug, Clone)]
pub struct Docker {
    inner: bollard::Docker,
}

impl Docker {
    /// Connects to the daemon at the unix socket `path` and negotiates the API version.
    pub async fn connect(path: &str) -> Result<Docker, DockerError> {
        let what = format!("connect to the Docker daemon at unix://{path}");
        let inner = bollard::Docker::connect_with_unix(path, 120, bollard::API_DEFAULT_VERSION)
            .map_err(err(what.clone()))?
            .negotiate_version()
            .await
            .map_err(err(what))?;
        Ok(Docker { inner })
    }

    /// The daemon's version and API version.
    pub async fn version(&self) -> Result<(String, String), DockerError> {
        let v = self.inner.version().await.map_err(err("docker version"))?;
        Ok((
            v.version.unwrap_or_default(),
            v.api_version.unwrap_or_default(),
        ))
    }

    /// The inspect document of a container (by id or name).
    pub async fn inspect(&self, id: &str) -> Result<Value, DockerError> {
        let what = format!("inspect container {id}");
        let doc = self
            .inner
            .inspect_container(id, None::<InspectContainerOptions>)
            .await
            .map_err(err(what.clone()))?;
        serde_json::to_value(doc).map_err(|e| DockerError {
            what,
            source: bollard::errors::Error::JsonSerdeError { err: e },
        })
    }

    /// The id of the container labelled as child `child` of `parent`, if any (running
    /// or not).
    pub async fn find_child(
        &self,
        parent: &str,
        child: &str,
    ) -> Result<Option<String>, DockerError> {
        let mut filters: HashMap<String, Vec<String>> = HashMap::new();
        filters.insert(
            "label".to_string(),
            vec![
                format!("{LABEL_PARENT}={parent}"),
                format!("{LABEL_CHILD}={child}"),
            ],
        );
        let opts = ListContainersOptionsBuilder::default()
            .all(true)
            .filters(&filters)
            .build();
        let list = self
            .inner
            .list_containers(Some(opts))
            .await
            .map_err(err(format!("list the containers of child {child}")))?;
        Ok(list.into_iter().find_map(|c| c.id))
    }

    /// Removes the children whose serfnode container no longer exists (it was removed
    /// while they were kept for a restart); how many were removed.
    pub async fn remove_orphans(&self) -> Result<usize, DockerError> {
        let mut filters: HashMap<String, Vec<String>> = HashMap::new();
        filters.insert("label".to_string(), vec![LABEL_PARENT.to_string()]);
        let opts = ListContainersOptionsBuilder::default()
            .all(true)
            .filters(&filters)
            .build();
        let list = self
            .inner
            .list_containers(Some(opts))
            .await
            .map_err(err("list serfnode children"))?;
        let mut removed = 0;
        for c in list {
            let (Some(id), Some(parent)) =
                (c.id, c.labels.and_then(|l| l.get(LABEL_PARENT).cloned()))
            else {
                continue;
            };
            match self.inspect(&parent).await {
                Err(e) if e.is_not_found() => {}
                _ => continue,
            }
            let opts = bollard::query_parameters::RemoveContainerOptionsBuilder::default()
                .force(true)
                .build();
            match self.inner.remove_container(&id, Some(opts)).await {
                Ok(()) => {
                    tracing::info!("removed child container {id} of the removed serfnode {parent}");
                    removed += 1;
                }
                Err(e) => tracing::warn!("cannot remove orphan child {id}: {e}"),
            }
        }
        Ok(removed)
    }

    /// Creates a container; returns its id.
    pub async fn create(&self, spec: &ContainerSpec) -> Result<String, DockerError> {
        let mut exposed: Vec<String> = Vec::new();
        let mut bindings: HashMap<String, Option<Vec<PortBinding>>> = HashMap::new();
        for (port, hosts) in &spec.port_bindings {
            exposed.push(port.clone());
            bindings.insert(
                port.clone(),
                Some(
                    hosts
                        .iter()
                        .map(|h| PortBinding {
                            host_ip: None,
                            host_port: Some(h.clone()),
                        })
                        .collect(),
                ),
            );
        }
        let some_vec = |v: &Vec<String>| (!v.is_empty()).then(|| v.clone());
        let body = ContainerCreateBody {
            image: Some(spec.image.clone()),
            cmd: some_vec(&spec.cmd),
            entrypoint: spec.entrypoint.clone(),
            env: some_vec(&spec.env),
            working_dir: spec.working_dir.clone(),
            user: spec.user.clone(),
            labels: Some(spec.labels.iter().cloned().collect()),
            exposed_ports: (!exposed.is_empty()).then_some(exposed),
            host_config: Some(HostConfig {
                binds: some_vec(&spec.binds),
                volumes_from: some_vec(&spec.volumes_from),
                network_mode: spec.network_mode.clone(),
                port_bindings: (!bindings.is_empty()).then_some(bindings),
                privileged: Some(spec.privileged),
                ..Default::default()
            }),
            ..Default::default()
        };
        let opts = CreateContainerOptionsBuilder::default()
            .name(&spec.name)
            .build();
        let r = self
            .inner
            .create_container(Some(opts), body)
            .await
            .map_err(err(format!("create container {}", spec.name)))?;
        Ok(r.id)
    }

    /// Starts a container (already running is fine).
    pub async fn start(&self, id: &str) -> Result<(), DockerError> {
        match self.inner.start_container(id, None).await {
            Ok(()) => Ok(()),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 304, ..
            }) => Ok(()),
            Err(e) => Err(err(format!("start container {id}"))(e)),
        }
    }

    /// Stops a container: SIGTERM, then SIGKILL after `grace_secs`.
    pub async fn stop(&self, id: &str, grace_secs: i32) -> Result<(), DockerError> {
        let opts = StopContainerOptionsBuilder::default().t(grace_secs).build();
        match self.inner.stop_container(id, Some(opts)).await {
            Ok(()) => Ok(()),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 304, ..
            }) => Ok(()),
            Err(e) => Err(err(format!("stop container {id}"))(e)),
        }
    }

    /// Waits until a container is not running; its exit code.
    pub async fn wait(&self, id: &str) -> Result<i64, DockerError> {
        let mut stream = self.inner.wait_container(id, None::<WaitContainerOptions>);
        match stream.next().await {
            Some(Ok(r)) => Ok(r.status_code),
            // bollard reports a non-zero exit as an error carrying the code.
            Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => Ok(code),
            Some(Err(e)) => Err(err(format!("wait for container {id}"))(e)),
            None => Ok(0),
        }
    }

    /// Writes the file `dir/name` (mode 0644) into a container, created or running,
    /// through the archive API: no shell or tool is needed in the container.
    pub async fn put_file(
        &self,
        id: &str,
        dir: &str,
        name: &str,
        bytes: &[u8],
    ) -> Result<(), DockerError> {
        let what = format!("write {dir}/{name} into container {id}");
        let tar = tar_one_file(name, bytes).map_err(|e| DockerError {
            what: what.clone(),
            source: bollard::errors::Error::IOError { err: e },
        })?;
        let opts = UploadToContainerOptionsBuilder::default().path(dir).build();
        self.inner
            .upload_to_container(id, Some(opts), bollard::body_full(tar.into()))
            .await
            .map_err(err(what))
    }
}

/// A tar archive holding one regular file.
fn tar_one_file(name: &str, bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut header = tar::Header::new_gnu();
    header.set_size(bytes.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    );
    header.set_entry_type(tar::EntryType::Regular);
    let mut builder = tar::Builder::new(Vec::new());
    builder.append_data(&mut header, name, bytes)?;
    builder.into_inner()
}

/// This container's id, as Docker's own bind mounts (`/etc/hostname`, `/etc/hosts`,
/// `/etc/resolv.conf` from `/var/lib/docker/containers/<id>/`) show it in
/// `/proc/self/mountinfo`; else the host name (Docker's default host name is the short id).
pub fn own_container_id() -> Option<String> {
    if let Ok(text) = std::fs::read_to_string("/proc/self/mountinfo") {
        if let Some(id) = container_id_in_mountinfo(&text) {
            return Some(id);
        }
    }
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
}

/// The first `/containers/<64 hex digits>/` in a mountinfo text.
pub fn container_id_in_mountinfo(text: &str) -> Option<String> {
    for line in text.lines() {
        for field in line.split_whitespace() {
            let mut rest = field;
            while let Some(at) = rest.find("/containers/") {
                rest = &rest[at + "/containers/".len()..];
                let id: String = rest.chars().take_while(char::is_ascii_hexdigit).collect();
                if id.len() == 64 && rest[64..].starts_with('/') {
                    return Some(id);
                }
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_container_id_in_mountinfo() {
        let id = "a".repeat(64);
        let text = format!(
            "1 2 0:1 / / rw - overlay overlay rw\n\
             530 520 8:1 /var/lib/docker/containers/{id}/hostname /etc/hostname rw - ext4 /dev/sda1 rw\n"
        );
        assert_eq!(container_id_in_mountinfo(&text), Some(id));
        assert_eq!(container_id_in_mountinfo("1 2 0:1 / / rw\n"), None);
        let short = "530 520 8:1 /var/lib/docker/containers/abc/hostname /etc/hostname";
        assert_eq!(container_id_in_mountinfo(short), None);
    }

    #[test]
    fn a_tar_with_one_file() {
        let tar = tar_one_file("me.json", b"{}\n").expect("tar");
        let mut archive = tar::Archive::new(tar.as_slice());
        let mut entries = archive.entries().expect("entries");
        let mut e = entries.next().expect("one").expect("entry");
        assert_eq!(e.path().expect("path").to_str(), Some("me.json"));
        let mut s = String::new();
        std::io::Read::read_to_string(&mut e, &mut s).expect("read");
        assert_eq!(s, "{}\n");
    }
}
