//! Clusters of mixed implementations.

use super::*;

/// One node of a [`Cluster`].
#[derive(Debug, Clone)]
pub struct NodeSpec {
    /// Implementation.
    pub imp: Impl,
    /// Node name.
    pub name: String,
    /// Tags.
    pub tags: Vec<(String, String)>,
    /// Indices of earlier nodes to `-join` at start.
    pub join: Vec<usize>,
    /// Extra agent arguments (e.g. `-event-handler=...`), appended last.
    pub args: Vec<String>,
}

impl NodeSpec {
    /// A node with no tags and no joins (a seed).
    pub fn new(imp: Impl, name: &str) -> Self {
        NodeSpec {
            imp,
            name: name.to_string(),
            tags: Vec::new(),
            join: Vec::new(),
            args: Vec::new(),
        }
    }

    /// Adds a tag.
    pub fn tag(mut self, k: &str, v: &str) -> Self {
        self.tags.push((k.to_string(), v.to_string()));
        self
    }

    /// Joins the earlier node with index `i` at start.
    pub fn join(mut self, i: usize) -> Self {
        self.join.push(i);
        self
    }

    /// Appends an extra agent argument.
    pub fn arg(mut self, a: &str) -> Self {
        self.args.push(a.to_string());
        self
    }
}

/// Agents started in order, each `-join`ing earlier ones by index.
#[derive(Debug)]
pub struct Cluster {
    /// The agents, in spec order.
    pub agents: Vec<Agent>,
}

impl Cluster {
    /// Starts every node in order (waiting for each one's RPC), with the
    /// same `-encrypt` key on all when given.
    pub fn start(nodes: &[NodeSpec], encrypt: Option<&str>) -> Result<Cluster, String> {
        Self::start_with_log_level(nodes, encrypt, Some("debug"))
    }

    /// Like [`Cluster::start`], with the agents' `-log-level` (None: the default).
    pub fn start_with_log_level(
        nodes: &[NodeSpec],
        encrypt: Option<&str>,
        log_level: Option<&str>,
    ) -> Result<Cluster, String> {
        let mut agents: Vec<Agent> = Vec::with_capacity(nodes.len());
        for (i, n) in nodes.iter().enumerate() {
            let mut spec = AgentSpec::new(n.imp, &n.name).log_level(log_level);
            for (k, v) in &n.tags {
                spec = spec.tag(k, v);
            }
            for &j in &n.join {
                let seed = agents.get(j).ok_or_else(|| {
                    format!("node {i} ({}) joins node {j}, which is not earlier", n.name)
                })?;
                spec = spec.join(&seed.addr());
            }
            if let Some(key) = encrypt {
                spec = spec.encrypt(key);
            }
            for a in &n.args {
                spec = spec.arg(a);
            }
            match Agent::start(spec) {
                Ok(agent) => agents.push(agent),
                Err(e) => {
                    let others: Vec<String> = agents
                        .iter()
                        .map(|a| {
                            format!(
                                "--- {} agent {} log tail ({}) ---\n{}",
                                a.imp(),
                                a.name(),
                                a.log_path().display(),
                                a.log_tail(15)
                            )
                        })
                        .collect();
                    return Err(format!("{e}\n{}", others.join("\n")));
                }
            }
        }
        Ok(Cluster { agents })
    }

    /// The agent named `name` (panics if none).
    pub fn agent(&self, name: &str) -> &Agent {
        self.agents
            .iter()
            .find(|a| a.name() == name)
            .unwrap_or_else(|| panic!("no agent named {name}"))
    }

    /// All agents.
    pub fn all(&self) -> Vec<&Agent> {
        self.agents.iter().collect()
    }

    /// Agents of one implementation.
    pub fn of(&self, imp: Impl) -> Vec<&Agent> {
        self.agents.iter().filter(|a| a.imp() == imp).collect()
    }

    /// Agents except those named.
    pub fn except(&self, names: &[&str]) -> Vec<&Agent> {
        self.agents
            .iter()
            .filter(|a| !names.contains(&a.name()))
            .collect()
    }

    /// [`wait_converged`] over all agents.
    pub fn wait_converged(&self, timeout: Duration) -> Result<Duration, String> {
        wait_converged(&self.all(), timeout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_known_vectors() {
        assert_eq!(base64_encode(b""), "");
        assert_eq!(base64_encode(b"f"), "Zg==");
        assert_eq!(base64_encode(b"fo"), "Zm8=");
        assert_eq!(base64_encode(b"foo"), "Zm9v");
        assert_eq!(base64_encode(b"foob"), "Zm9vYg==");
        assert_eq!(base64_encode(b"fooba"), "Zm9vYmE=");
        assert_eq!(base64_encode(b"foobar"), "Zm9vYmFy");
        assert_eq!(keygen().len(), 44);
    }

    #[test]
    fn parses_members_json() {
        let text = r#"{
  "members": [
    {
      "name": "a",
      "addr": "127.0.0.1:27946",
      "port": 27946,
      "tags": {
        "role": "web"
      },
      "status": "alive",
      "protocol": {
        "max": 5,
        "min": 2,
        "version": 5
      }
    }
  ]
}"#;
        let v = parse_members_json(text).unwrap();
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].name, "a");
        assert_eq!(v[0].port, 27946);
        assert_eq!(v[0].tags.get("role").map(String::as_str), Some("web"));
        assert_eq!(v[0].protocol.get("version"), Some(&5));
        assert!(parse_members_json("{\n  \"members\": null\n}")
            .unwrap()
            .is_empty());
    }

    #[test]
    fn gossip_ports_are_distinct() {
        let a = free_gossip_port();
        let b = free_gossip_port();
        let c = free_tcp_port();
        assert!(a != b && b != c && a != c);
    }
}
