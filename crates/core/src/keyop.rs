//! Cluster-wide key operations (Serf's key manager, docs/serf-protocol.md section 10): the
//! internal `_serf_*-key(s)` query goes out, and each node's [`KeyResponse`] is counted
//! here until every expected node answered or the query ended. The outcome arrives as
//! [`Event::KeyOpDone`](crate::Event::KeyOpDone).

use crate::query::KeyResponse;
use std::collections::HashMap;

/// What a key operation across the cluster reported (Serf's `KeyResponse` of the agent).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct KeyOpResult {
    /// Node -> error or info text.
    pub messages: Vec<(String, String)>,
    /// Key (base64) -> nodes that have it (list only).
    pub keys: HashMap<String, usize>,
    /// Primary key (base64) -> nodes using it (list only).
    pub primary_keys: HashMap<String, usize>,
    /// Nodes expected to answer.
    pub num_nodes: usize,
    /// Answers.
    pub num_resp: usize,
    /// Failed answers.
    pub num_err: usize,
    /// Go's summary error (`N/M nodes reported failure`, ...), or a local error.
    pub error: Option<String>,
}

impl KeyOpResult {
    /// A result that failed before any node was asked.
    pub fn failed(error: String) -> Self {
        KeyOpResult {
            error: Some(error),
            ..KeyOpResult::default()
        }
    }

    /// Counts one node's answer. Returns true once every expected node answered.
    pub(crate) fn add(&mut self, from: String, payload: &[u8]) -> bool {
        self.num_resp += 1;
        match KeyResponse::decode(payload) {
            Err(e) => {
                self.num_err += 1;
                self.messages.push((from, e));
            }
            Ok(r) => {
                if !r.result {
                    self.num_err += 1;
                }
                if !r.message.is_empty() || !r.result {
                    self.messages.push((from, r.message.clone()));
                }
                for k in r.keys {
                    *self.keys.entry(k).or_insert(0) += 1;
                }
                if !r.primary_key.is_empty() {
                    *self.primary_keys.entry(r.primary_key).or_insert(0) += 1;
                }
            }
        }
        self.num_resp >= self.num_nodes
    }

    /// Sets Go's summary error once the operation is over.
    pub(crate) fn finish(mut self) -> Self {
        if self.num_err > 0 {
            self.error = Some(format!(
                "{}/{} nodes reported failure",
                self.num_err, self.num_nodes
            ));
        } else if self.num_resp != self.num_nodes {
            self.error = Some(format!(
                "{}/{} nodes reported success",
                self.num_resp, self.num_nodes
            ));
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(result: bool, message: &str, keys: &[&str]) -> Vec<u8> {
        KeyResponse {
            result,
            message: message.to_string(),
            keys: keys.iter().map(|k| k.to_string()).collect(),
            primary_key: keys.first().map(|k| k.to_string()).unwrap_or_default(),
        }
        .encode()
    }

    #[test]
    fn counts_answers_and_summarises_like_go() {
        let mut r = KeyOpResult {
            num_nodes: 3,
            ..KeyOpResult::default()
        };
        assert!(!r.add("a".into(), &answer(true, "", &["k1", "k2"])));
        assert!(!r.add("b".into(), &answer(false, "no such key", &[])));
        let r = r.finish();
        assert_eq!(r.num_resp, 2);
        assert_eq!(r.num_err, 1);
        assert_eq!(r.keys.get("k1"), Some(&1));
        assert_eq!(r.primary_keys.get("k1"), Some(&1));
        assert_eq!(
            r.messages,
            vec![("b".to_string(), "no such key".to_string())]
        );
        assert_eq!(r.error.as_deref(), Some("1/3 nodes reported failure"));

        let mut r = KeyOpResult {
            num_nodes: 2,
            ..KeyOpResult::default()
        };
        assert!(!r.add("a".into(), &answer(true, "", &[])));
        assert_eq!(
            r.finish().error.as_deref(),
            Some("1/2 nodes reported success")
        );
    }
}
