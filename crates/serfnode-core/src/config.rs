//! The serfnode configuration: environment variables over the `serfnode:` section of
//! `/serfnode.yml` over defaults (SPEC §2), and the `children:` list (SPEC §1.6).
//!
//! Everything here is pure: the environment comes in as a map ([`Env`]) and the YAML file
//! as text, so the caller decides where they come from (and whether `/serfnode.yml`
//! exists). [`Config::from_sources`] validates everything and names the offending key in
//! its [`ConfigError`].
//!
//! # Precedence (SPEC §2)
//!
//! For `ROLE`, `PEER`, `SERF_IP`, `SERF_PORT`, `SERVICE_IP` and `SERVICE_PORT`: a non-empty
//! environment variable wins over the `serfnode:` key of the same name in lower case
//! (`role`, `peer`, ...), which wins over the default. An empty environment variable counts
//! as unset. `NODE_NAME`, `RPC_PORT`, `HOST_PREFIX`, `DOCKER_SOCKET`, `DOCKER_RUN`,
//! `DOCKER_NAME`, `SERF_ENCRYPT_KEY` and `RPC_AUTH` exist only as environment variables.
//! `APP_PORTS`, `APP_VOLUMES` and `APP_VOLUMES_FROM` (a YAML list inside the variable) are
//! *added* to every child after the child's own list and the `serfnode:` section's list.
//!
//! # Deliberate differences from the 2015 original
//!
//! - Ports must be numbers in 0..=65535 (`SERF_PORT` and `RPC_PORT` not 0); IPs must be IP
//!   addresses; the original pasted anything into serf's flags.
//! - `PEER` (and `peer:`) may be a comma-separated list (or a YAML list); the original
//!   passed a comma list unsplit to `-join`, which failed.
//! - Unknown keys (top level, `serfnode:` section, child parameters) and wrong types are
//!   errors naming the key; the original ignored unknown keys and crashed on wrong types.
//! - `ports`, `expose` and `links` of a child are accepted but not applied: a child shares
//!   the parent's network namespace, where Docker ignores or rejects them (SPEC §7.2 bug 9).
//!   Each one is reported as a [`Warning`]; publish such ports on the serfnode container.
//!   `serfnode.ports` and `APP_PORTS` are kept in [`Config::extra_ports`] for the same
//!   reason (with a warning), not given to children.
//! - `environment` may be a mapping or a list of `KEY=VALUE` strings. Precedence stays the
//!   original's (SPEC §8 item 23): a `serfnode.environment` value wins over the child's.
//! - `volumes_from` entries naming a sibling child become [`VolumesFrom::Sibling`]; the
//!   Docker layer resolves them to that sibling's container (the original rewrote them to
//!   the sibling's generated container name).
//! - `DOCKER_RUN` is split into arguments here (POSIX-shell-like quoting, no expansion),
//!   not handed to a shell.
//! - `SERF_ENCRYPT_KEY` (base64 of a 16, 24 or 32-byte key) and `RPC_AUTH` are new; both
//!   are kept in [`Secret`]s whose `Debug` does not show them.
//!
//! # The YAML crate: `serde_norway`
//!
//! Of the candidates: `serde_yaml` 0.9 is archived and deprecated by its author (no fixes
//! will come); `serde_yml` is archived too and carries a RustSec soundness advisory
//! (RUSTSEC-2025-0068, with its `libyml` backend in RUSTSEC-2025-0067); `serde_norway` is a
//! maintained fork of `serde_yaml` 0.9 (same API, same parser: a Rust port of libyaml,
//! `unsafe-libyaml-norway`, with serde_yaml's recursion and alias-expansion limits). It
//! builds with rustc 1.95 (its MSRV is 1.71.1) and adds only itself and its parser to
//! `Cargo.lock`. It is pinned exactly (`=0.9.42`) so that a parser change is a reviewed
//! change. Only its dynamic `Value` is used, so moving to another serde YAML crate touches
//! two calls in this module.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use base64::Engine as _;
use serde_norway::Value;

mod children;
mod values;

use children::children;
use values::*;

/// Environment variables, name to value (e.g. `std::env::vars().collect()`).
pub type Env = BTreeMap<String, String>;

/// Where the original image keeps the configuration file.
pub const CONFIG_PATH: &str = "/serfnode.yml";
/// Role when neither `ROLE` nor `serfnode.role` is given.
pub const DEFAULT_ROLE: &str = "no_role";
/// Default gossip port (bind and advertise).
pub const DEFAULT_SERF_PORT: u16 = 7946;
/// Default RPC port (on 127.0.0.1).
pub const DEFAULT_RPC_PORT: u16 = 7373;
/// Default `service_port` tag.
pub const DEFAULT_SERVICE_PORT: u16 = 0;
/// Default mount point of the host's root filesystem.
pub const DEFAULT_HOST_PREFIX: &str = "/host";
/// Default Docker socket, as a path on the host.
pub const DEFAULT_DOCKER_SOCKET: &str = "/run/docker.sock";
/// Default container name of the `DOCKER_RUN` child.
pub const DEFAULT_DOCKER_NAME: &str = "app_docker_run";

/// Why a configuration was rejected. Every variant names the key: an environment variable
/// as `$NAME`, a YAML key as its path (`serfnode.serf_port`, `children[1].b.image`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    /// `/serfnode.yml` is not valid YAML (or holds several documents).
    Yaml {
        /// The parser's message, with line and column.
        message: String,
    },
    /// A value has the wrong type.
    WrongType {
        /// The key.
        key: String,
        /// What was expected ("a string", "a list", ...).
        expected: &'static str,
        /// What was found ("a mapping", ...).
        found: &'static str,
    },
    /// A value of the right type that is not acceptable.
    InvalidValue {
        /// The key.
        key: String,
        /// The value as given.
        value: String,
        /// Why it is not acceptable.
        reason: String,
    },
    /// A key serfnode does not know (often a typo).
    UnknownKey {
        /// The key.
        key: String,
    },
    /// A required key is missing.
    MissingKey {
        /// The key.
        key: String,
    },
    /// Two children have the same name.
    DuplicateChild {
        /// The name.
        name: String,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Yaml { message } => write!(f, "serfnode.yml is not valid YAML: {message}"),
            ConfigError::WrongType {
                key,
                expected,
                found,
            } => write!(f, "{key}: expected {expected}, found {found}"),
            ConfigError::InvalidValue { key, value, reason } => {
                write!(f, "{key}: invalid value {value:?}: {reason}")
            }
            ConfigError::UnknownKey { key } => write!(f, "{key}: unknown key"),
            ConfigError::MissingKey { key } => write!(f, "{key}: missing (required)"),
            ConfigError::DuplicateChild { name } => {
                write!(
                    f,
                    "children: the name {name:?} is used by more than one child"
                )
            }
        }
    }
}

impl std::error::Error for ConfigError {}

/// Something accepted but not applied; the caller should log it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Warning {
    /// A child parameter that means nothing for a child sharing the parent's network
    /// (`ports`, `expose`, `links`), or `serfnode.ports` / `APP_PORTS`.
    NetworkOptionIgnored {
        /// The key.
        key: String,
    },
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Warning::NetworkOptionIgnored { key } => write!(
                f,
                "{key}: ignored for children, which share the serfnode container's network; \
                 publish these ports on the serfnode container instead"
            ),
        }
    }
}

/// A secret string: its `Debug` output does not show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The secret text.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// The gossip encryption key from `SERF_ENCRYPT_KEY`, validated: base64 of 16, 24 or 32
/// bytes (AES-128/192/256), as serf's `-encrypt` takes it.
#[derive(Clone, PartialEq, Eq)]
pub struct EncryptKey {
    text: Secret,
    bytes: Vec<u8>,
}

impl EncryptKey {
    /// The key as given (base64).
    pub fn as_base64(&self) -> &str {
        self.text.expose()
    }

    /// The decoded key (16, 24 or 32 bytes).
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }
}

impl fmt::Debug for EncryptKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EncryptKey(<redacted {} bytes>)", self.bytes.len())
    }
}

/// A `volumes_from` entry of a child.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VolumesFrom {
    /// Another child of this serfnode, by its name in `children:`; the Docker layer
    /// substitutes that child's container.
    Sibling(String),
    /// Any other container reference, passed to Docker as given.
    Container(String),
}

/// One child from the `children:` list, with the `serfnode:` section and `APP_*`
/// variables already merged in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Child {
    /// The child's name (the key of its one-key mapping).
    pub name: String,
    /// Its position in `children:` (children start in this order).
    pub position: usize,
    /// The image.
    pub image: String,
    /// The command, split into arguments (empty: the image's default).
    pub command: Vec<String>,
    /// Environment: the child's, then `serfnode.environment` over it.
    pub environment: BTreeMap<String, String>,
    /// `-v` values: the child's, then `serfnode.volumes`, then `APP_VOLUMES`.
    pub volumes: Vec<String>,
    /// `--volumes-from` values: the child's, then `serfnode.volumes_from`, then
    /// `APP_VOLUMES_FROM`; entries naming a sibling child are [`VolumesFrom::Sibling`].
    pub volumes_from: Vec<VolumesFrom>,
    /// Working directory.
    pub working_dir: Option<String>,
    /// Entrypoint override, split into arguments.
    pub entrypoint: Option<Vec<String>>,
    /// User.
    pub user: Option<String>,
    /// Privileged mode.
    pub privileged: bool,
}

impl Child {
    /// The `--volumes-from` values for Docker: sibling names replaced by
    /// `sibling_container(name)` (the container the Docker layer made for that child),
    /// other entries as given.
    pub fn resolved_volumes_from(&self, sibling_container: impl Fn(&str) -> String) -> Vec<String> {
        self.volumes_from
            .iter()
            .map(|v| match v {
                VolumesFrom::Sibling(name) => sibling_container(name),
                VolumesFrom::Container(c) => c.clone(),
            })
            .collect()
    }
}

/// The extra child from `DOCKER_RUN` (SPEC §1.6.4): own network, raw `docker run` options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerRun {
    /// Container name: `DOCKER_NAME`, default [`DEFAULT_DOCKER_NAME`].
    pub name: String,
    /// `DOCKER_RUN` as given.
    pub raw: String,
    /// `DOCKER_RUN` split into arguments (e.g. `["-p", "80:80", "nginx"]`).
    pub args: Vec<String>,
}

/// The resolved serfnode configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Tag `role`.
    pub role: String,
    /// Addresses to join at start (`host` or `host:port`); empty: no join.
    pub peers: Vec<String>,
    /// Advertised IP; `None`: detect the local IP at start.
    pub serf_ip: Option<IpAddr>,
    /// Gossip port, bound on 0.0.0.0 and advertised.
    pub serf_port: u16,
    /// Node name; `None`: a random one (32 lowercase hex digits) per agent start.
    pub node_name: Option<String>,
    /// RPC port on 127.0.0.1.
    pub rpc_port: u16,
    /// Tag `service`; `None`: the serf IP.
    pub service_ip: Option<IpAddr>,
    /// Tag `service_port`.
    pub service_port: u16,
    /// `serfnode.ports` then `APP_PORTS`: not given to children (they share the parent's
    /// network); for the deployer to publish on the serfnode container.
    pub extra_ports: Vec<String>,
    /// `APP_VOLUMES` alone (already merged into every child).
    pub app_volumes: Vec<String>,
    /// `APP_VOLUMES_FROM` alone (already merged into every child).
    pub app_volumes_from: Vec<String>,
    /// Where the host's root filesystem is mounted (`HOST_PREFIX`).
    pub host_prefix: String,
    /// The Docker socket's path on the host (`DOCKER_SOCKET`).
    pub docker_socket: String,
    /// The `DOCKER_RUN` child.
    pub docker_run: Option<DockerRun>,
    /// Gossip encryption key (`SERF_ENCRYPT_KEY`).
    pub encrypt_key: Option<EncryptKey>,
    /// RPC auth key (`RPC_AUTH`).
    pub rpc_auth: Option<Secret>,
    /// Children in `children:` order.
    pub children: Vec<Child>,
    /// Accepted but not applied settings.
    pub warnings: Vec<Warning>,
}

impl Config {
    /// Resolves the configuration from the environment and the text of `/serfnode.yml`
    /// (`None` when the file does not exist; an empty or all-comment file is the same).
    pub fn from_sources(env: &Env, yaml: Option<&str>) -> Result<Config, ConfigError> {
        let doc = match yaml {
            Some(text) => serde_norway::from_str::<Value>(text).map_err(|e| ConfigError::Yaml {
                message: e.to_string(),
            })?,
            None => Value::Null,
        };
        let top = as_mapping_or_empty(&doc, "serfnode.yml (top level)")?;
        let mut section: Vec<(String, &Value)> = Vec::new();
        let mut children_value: Option<&Value> = None;
        for (key, value) in top {
            match key.as_str() {
                "serfnode" => {
                    section = as_mapping_or_empty(value, "serfnode")?;
                }
                "children" => children_value = Some(value),
                _ => return Err(ConfigError::UnknownKey { key }),
            }
        }
        let mut yaml_section = Section::default();
        for (key, value) in section {
            let path = format!("serfnode.{key}");
            match key.as_str() {
                "role" => yaml_section.role = Some(non_empty_string(value, &path)?),
                "peer" => yaml_section.peers = Some(peers_from_yaml(value, &path)?),
                "serf_ip" => yaml_section.serf_ip = Some(ip_from_yaml(value, &path)?),
                "serf_port" => yaml_section.serf_port = Some(port_from_yaml(value, &path, false)?),
                "service_ip" => yaml_section.service_ip = Some(ip_from_yaml(value, &path)?),
                "service_port" => {
                    yaml_section.service_port = Some(port_from_yaml(value, &path, true)?)
                }
                "ports" => yaml_section.ports = string_list(value, &path)?,
                "volumes" => yaml_section.volumes = string_list(value, &path)?,
                "volumes_from" => yaml_section.volumes_from = string_list(value, &path)?,
                "environment" => yaml_section.environment = environment(value, &path)?,
                _ => return Err(ConfigError::UnknownKey { key: path }),
            }
        }

        let get = |name: &str| env.get(name).map(String::as_str).filter(|v| !v.is_empty());
        let env_key = |name: &str| format!("${name}");

        let role = match get("ROLE") {
            Some(r) => r.to_string(),
            None => yaml_section
                .role
                .take()
                .unwrap_or_else(|| DEFAULT_ROLE.to_string()),
        };
        let peers = match get("PEER") {
            Some(p) => split_peers(p, &env_key("PEER"))?,
            None => yaml_section.peers.take().unwrap_or_default(),
        };
        let serf_ip = match get("SERF_IP") {
            Some(v) => Some(parse_ip(v, &env_key("SERF_IP"))?),
            None => yaml_section.serf_ip,
        };
        let serf_port = match get("SERF_PORT") {
            Some(v) => parse_port(v, &env_key("SERF_PORT"), false)?,
            None => yaml_section.serf_port.unwrap_or(DEFAULT_SERF_PORT),
        };
        let service_ip = match get("SERVICE_IP") {
            Some(v) => Some(parse_ip(v, &env_key("SERVICE_IP"))?),
            None => yaml_section.service_ip,
        };
        let service_port = match get("SERVICE_PORT") {
            Some(v) => parse_port(v, &env_key("SERVICE_PORT"), true)?,
            None => yaml_section.service_port.unwrap_or(DEFAULT_SERVICE_PORT),
        };
        let rpc_port = match get("RPC_PORT") {
            Some(v) => parse_port(v, &env_key("RPC_PORT"), false)?,
            None => DEFAULT_RPC_PORT,
        };
        let node_name = get("NODE_NAME").map(str::to_string);
        let app_ports = env_list(get("APP_PORTS"), &env_key("APP_PORTS"))?;
        let app_volumes = env_list(get("APP_VOLUMES"), &env_key("APP_VOLUMES"))?;
        let app_volumes_from = env_list(get("APP_VOLUMES_FROM"), &env_key("APP_VOLUMES_FROM"))?;
        let host_prefix = get("HOST_PREFIX")
            .unwrap_or(DEFAULT_HOST_PREFIX)
            .to_string();
        let docker_socket = get("DOCKER_SOCKET")
            .unwrap_or(DEFAULT_DOCKER_SOCKET)
            .to_string();
        let docker_run = match get("DOCKER_RUN") {
            Some(raw) => {
                let name = get("DOCKER_NAME").unwrap_or(DEFAULT_DOCKER_NAME);
                check_container_name(name, &env_key("DOCKER_NAME"))?;
                let args = split_words(raw).map_err(|reason| ConfigError::InvalidValue {
                    key: env_key("DOCKER_RUN"),
                    value: raw.to_string(),
                    reason,
                })?;
                if args.is_empty() {
                    return Err(ConfigError::InvalidValue {
                        key: env_key("DOCKER_RUN"),
                        value: raw.to_string(),
                        reason: "needs at least an image".to_string(),
                    });
                }
                Some(DockerRun {
                    name: name.to_string(),
                    raw: raw.to_string(),
                    args,
                })
            }
            None => None,
        };
        let encrypt_key = match get("SERF_ENCRYPT_KEY") {
            Some(v) => Some(parse_encrypt_key(v)?),
            None => None,
        };
        let rpc_auth = get("RPC_AUTH").map(|v| Secret(v.to_string()));

        let mut warnings = Vec::new();
        if !yaml_section.ports.is_empty() {
            warnings.push(Warning::NetworkOptionIgnored {
                key: "serfnode.ports".to_string(),
            });
        }
        if !app_ports.is_empty() {
            warnings.push(Warning::NetworkOptionIgnored {
                key: env_key("APP_PORTS"),
            });
        }
        let mut extra_ports = yaml_section.ports.clone();
        extra_ports.extend(app_ports.iter().cloned());

        let children = match children_value {
            Some(v) => children(
                v,
                &yaml_section,
                &app_volumes,
                &app_volumes_from,
                &mut warnings,
            )?,
            None => Vec::new(),
        };

        Ok(Config {
            role,
            peers,
            serf_ip,
            serf_port,
            node_name,
            rpc_port,
            service_ip,
            service_port,
            extra_ports,
            app_volumes,
            app_volumes_from,
            host_prefix,
            docker_socket,
            docker_run,
            encrypt_key,
            rpc_auth,
            children,
            warnings,
        })
    }

    /// The `service` tag's IP: `SERVICE_IP`, else the serf IP (`serf_ip` when configured,
    /// else the detected one given here).
    pub fn service_ip_or(&self, detected_serf_ip: IpAddr) -> IpAddr {
        self.service_ip.or(self.serf_ip).unwrap_or(detected_serf_ip)
    }

    /// The node name: `NODE_NAME`, else a random UUID4 as 32 lowercase hex digits made
    /// from `random` (16 bytes from the caller's random source, drawn anew at each agent
    /// start, SPEC §1.5).
    pub fn node_name_or(&self, random: [u8; 16]) -> String {
        if let Some(name) = &self.node_name {
            return name.clone();
        }
        let mut bytes = random;
        bytes[6] = (bytes[6] & 0x0f) | 0x40; // version 4
        bytes[8] = (bytes[8] & 0x3f) | 0x80; // RFC 4122 variant
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Where the gossip listener binds: `0.0.0.0:<serf_port>`.
    pub fn bind_addr(&self) -> SocketAddr {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), self.serf_port)
    }

    /// Where the RPC listener binds: `127.0.0.1:<rpc_port>`.
    pub fn rpc_addr(&self) -> SocketAddr {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), self.rpc_port)
    }

    /// The Docker socket path as seen inside the container: `HOST_PREFIX` + `DOCKER_SOCKET`
    /// (default `/host/run/docker.sock`).
    pub fn docker_socket_path(&self) -> String {
        format!(
            "{}/{}",
            self.host_prefix.trim_end_matches('/'),
            self.docker_socket.trim_start_matches('/')
        )
    }
}

/// The `serfnode:` section as read from YAML.
#[derive(Debug, Default)]
struct Section {
    role: Option<String>,
    peers: Option<Vec<String>>,
    serf_ip: Option<IpAddr>,
    serf_port: Option<u16>,
    service_ip: Option<IpAddr>,
    service_port: Option<u16>,
    ports: Vec<String>,
    volumes: Vec<String>,
    volumes_from: Vec<String>,
    environment: BTreeMap<String, String>,
}
