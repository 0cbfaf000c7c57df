//! What the controller's admission webhook needs from the API server: its certificate's
//! Secret, read and written, and its CA put into the ValidatingWebhookConfiguration.
use super::KubeCluster;
use crate::ClusterError;
use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ObjectMeta, Patch, PatchParams};
use std::collections::BTreeMap;

/// A Secret's data, annotations and type.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SecretContents {
    pub data: BTreeMap<String, Vec<u8>>,
    pub annotations: BTreeMap<String, String>,
    /// `None`: Opaque.
    pub type_: Option<String>,
}

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
        Ok(Some(SecretContents {
            data,
            annotations: secret.metadata.annotations.unwrap_or_default(),
            type_: secret.type_,
        }))
    }

    /// Creates the Secret `name`; `false` when one already exists (another replica was first),
    /// which is left as it is.
    pub async fn create_secret(
        &self,
        namespace: &str,
        name: &str,
        contents: SecretContents,
    ) -> Result<bool, ClusterError> {
        let secrets: Api<Secret> = Api::namespaced(self.client.clone(), namespace);
        let object = secret(namespace, name, contents);
        match secrets
            .create(&kube::api::PostParams::default(), &object)
            .await
        {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(status)) if status.is_already_exists() => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Writes the existing Secret `name` (server-side apply: this component owns these keys;
    /// its type, which cannot change, is kept as `contents` says it is).
    pub async fn write_secret(
        &self,
        namespace: &str,
        name: &str,
        contents: SecretContents,
    ) -> Result<(), ClusterError> {
        let secrets: Api<Secret> = Api::namespaced(self.client.clone(), namespace);
        let object = secret(namespace, name, contents);
        let mut value =
            serde_json::to_value(&object).map_err(|e| ClusterError::InvalidPatch(e.to_string()))?;
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
        // A merge patch replaces the list whole: the same webhooks, each with the CA; the
        // resourceVersion makes it fail, rather than undo, a change made since the read.
        let patch = serde_json::json!({
            "metadata": {"resourceVersion": configuration.metadata.resource_version},
            "webhooks": webhooks,
        });
        api.patch(name, &PatchParams::default(), &Patch::Merge(patch))
            .await?;
        Ok(true)
    }
}

fn secret(namespace: &str, name: &str, contents: SecretContents) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            namespace: Some(namespace.to_string()),
            annotations: Some(contents.annotations),
            ..ObjectMeta::default()
        },
        data: Some(
            contents
                .data
                .into_iter()
                .map(|(k, v)| (k, ByteString(v)))
                .collect(),
        ),
        type_: Some(contents.type_.unwrap_or_else(|| "Opaque".into())),
        ..Secret::default()
    }
}
