//! What the controller's admission webhook needs from the API server: its certificate's
//! Secret, read and written, and its CA put into the ValidatingWebhookConfiguration.
use super::KubeCluster;
use crate::ClusterError;
use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ObjectMeta, Patch, PatchParams};
use std::collections::BTreeMap;

/// A Secret's data and annotations.
pub type SecretContents = (BTreeMap<String, Vec<u8>>, BTreeMap<String, String>);

impl KubeCluster {
    /// The Secret `name` in `namespace`, or `None` when there is none.
    pub async fn read_secret(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<SecretContents>, ClusterError> {
        let secrets: Api<Secret> = Api::namespaced(self.client.clone(), namespace);
        let Some(secret) = secrets.get_opt(name).await? else {
            return Ok(None);
        };
        let data = secret
            .data
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, v.0))
            .collect();
        Ok(Some((
            data,
            secret.metadata.annotations.unwrap_or_default(),
        )))
    }

    /// Writes the Secret `name` (server-side apply: this component owns these keys).
    pub async fn write_secret(
        &self,
        namespace: &str,
        name: &str,
        (data, annotations): SecretContents,
    ) -> Result<(), ClusterError> {
        let secrets: Api<Secret> = Api::namespaced(self.client.clone(), namespace);
        let secret = Secret {
            metadata: ObjectMeta {
                name: Some(name.to_string()),
                namespace: Some(namespace.to_string()),
                annotations: Some(annotations),
                ..ObjectMeta::default()
            },
            data: Some(data.into_iter().map(|(k, v)| (k, ByteString(v))).collect()),
            type_: Some("kubernetes.io/tls".into()),
            ..Secret::default()
        };
        let mut value =
            serde_json::to_value(&secret).map_err(|e| ClusterError::InvalidPatch(e.to_string()))?;
        value["apiVersion"] = "v1".into();
        value["kind"] = "Secret".into();
        secrets
            .patch(
                name,
                &PatchParams::apply(&self.field_manager).force(),
                &Patch::Apply(value),
            )
            .await?;
        Ok(())
    }

    /// Puts `ca_pem` into every webhook of the ValidatingWebhookConfiguration `name` that
    /// does not hold it yet; whether the configuration exists.
    pub async fn set_webhook_ca(&self, name: &str, ca_pem: &str) -> Result<bool, ClusterError> {
        let api: Api<ValidatingWebhookConfiguration> = Api::all(self.client.clone());
        let Some(configuration) = api.get_opt(name).await? else {
            return Ok(false);
        };
        let wanted = ByteString(ca_pem.as_bytes().to_vec());
        let mut webhooks = configuration.webhooks.unwrap_or_default();
        if webhooks
            .iter()
            .all(|webhook| webhook.client_config.ca_bundle.as_ref() == Some(&wanted))
        {
            return Ok(true);
        }
        for webhook in &mut webhooks {
            webhook.client_config.ca_bundle = Some(wanted.clone());
        }
        // A merge patch replaces the list whole: the same webhooks, each with the CA.
        let patch = serde_json::json!({"webhooks": webhooks});
        api.patch(name, &PatchParams::default(), &Patch::Merge(patch))
            .await?;
        Ok(true)
    }
}
