//! The speaker's ConfigurationState, `speaker-<node>` (MetalLB's name): Invalid with the
//! configuration's errors while the speaker keeps the last good one, Valid otherwise; and,
//! when this node runs without some BGPPeer field (or cannot open a peer's session at all),
//! a `NotHonoured` condition that says which, so nothing is ignored silently.
use crate::bgp::NotHonoured;
use ferrolb_api::kind::Kind;
use ferrolb_api::status_partial::StatusPartial;
use ferrolb_api::v1beta1::{ConfigurationResult, ConfigurationStateStatus};
use ferrolb_cluster::Cluster;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, ObjectMeta, OwnerReference, Time};

/// What the state says, as last written.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Said {
    pub errors: Vec<String>,
    pub not_honoured: Vec<NotHonoured>,
}

pub struct ConfigState {
    node: String,
    namespace: String,
    /// The speaker's pod (Kubernetes): the state goes with it, as MetalLB's does.
    owner: Option<OwnerReference>,
    written: Option<Said>,
    /// Whether the last write failed (said once, not at every pass).
    failing: bool,
}

impl ConfigState {
    pub fn new(node: &str, namespace: &str, owner: Option<OwnerReference>) -> ConfigState {
        ConfigState {
            node: node.to_string(),
            namespace: namespace.to_string(),
            owner,
            written: None,
            failing: false,
        }
    }

    /// Writes the state when it changed; a failed write is tried again at the next call.
    pub async fn apply(&mut self, cluster: &Cluster, said: Said) {
        if self.written.as_ref() == Some(&said) {
            return;
        }
        match cluster.apply(self.partial(&said)).await {
            Ok(()) => {
                self.written = Some(said);
                self.failing = false;
            }
            Err(error) => {
                if !std::mem::replace(&mut self.failing, true) {
                    tracing::warn!(%error, "writing the speaker's ConfigurationState failed; trying again at each change");
                }
            }
        }
    }

    fn partial(&self, said: &Said) -> serde_json::Value {
        let metadata = ObjectMeta {
            name: Some(format!("speaker-{}", self.node)),
            namespace: Some(self.namespace.clone()),
            labels: Some(
                [
                    ("metallb.io/component-type".into(), "speaker".into()),
                    ("metallb.io/node-name".into(), self.node.clone()),
                ]
                .into_iter()
                .collect(),
            ),
            owner_references: self.owner.clone().map(|o| vec![o]),
            ..ObjectMeta::default()
        };
        let result = if said.errors.is_empty() {
            ConfigurationResult::Valid
        } else {
            ConfigurationResult::Invalid
        };
        let conditions = if said.not_honoured.is_empty() {
            Vec::new()
        } else {
            vec![Condition {
                type_: "NotHonoured".into(),
                status: "True".into(),
                reason: "UnsupportedFields".into(),
                message: said
                    .not_honoured
                    .iter()
                    .map(|n| n.message.as_str())
                    .collect::<Vec<_>>()
                    .join("\n"),
                // The wall clock, read in this shell (a condition must say since when).
                last_transition_time: Time(k8s_openapi::jiff::Timestamp::now()),
                observed_generation: None,
            }]
        };
        let status = ConfigurationStateStatus {
            result: Some(result),
            error_summary: said.errors.join("\n"),
            conditions,
        };
        StatusPartial::new(Kind::ConfigurationState, metadata, status).to_json()
    }
}
