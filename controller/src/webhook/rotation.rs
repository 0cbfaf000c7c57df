//! Keeping the webhook's certificate current: the Secret's while it is good, a new one when
//! it is missing or due (written back, so every replica serves the same), its CA in the
//! ValidatingWebhookConfiguration; or, with `--disable-cert-rotation`, the files in
//! `--cert-dir` that someone else (cert-manager) keeps current.
use super::certs::{Bundle, CERT_KEY, PRIVATE_KEY};
use super::server;
use ferrolb_cluster::kubernetes::KubeCluster;
use std::path::PathBuf;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

/// MetalLB's names, so its manifests' Service and ValidatingWebhookConfiguration fit.
pub const DEFAULT_SERVICE: &str = "metallb-webhook-service";
pub const DEFAULT_SECRET: &str = "metallb-webhook-cert";
pub const DEFAULT_CERT_DIR: &str = "/tmp/k8s-webhook-server/serving-certs";
pub const CONFIGURATION: &str = "metallb-webhook-configuration";

#[derive(Clone, Debug)]
pub struct Settings {
    pub namespace: String,
    /// The webhook Service, named in the certificate.
    pub service: String,
    /// The Secret the certificate is kept in.
    pub secret: String,
    /// The ValidatingWebhookConfiguration that gets the CA.
    pub configuration: String,
    /// `--disable-cert-rotation`: serve what `cert_dir` holds instead.
    pub external: Option<PathBuf>,
}

/// The certificate to serve at `now`: the stored one while it is good, otherwise a new one
/// (`true`: it must be stored).
pub fn choose(
    stored: Option<Bundle>,
    settings: &Settings,
    now: i64,
) -> Result<(Bundle, bool), rcgen::Error> {
    match stored {
        Some(bundle) if !bundle.due(now) => Ok((bundle, false)),
        _ => Ok((
            Bundle::issue(&settings.service, &settings.namespace, now)?,
            true,
        )),
    }
}

/// One round: makes sure the certificate served, the Secret and the webhook configuration
/// agree and are good at `now`. Returns the certificate to serve.
pub async fn refresh(kube: &KubeCluster, settings: &Settings, now: i64) -> Result<Bundle, String> {
    if let Some(dir) = &settings.external {
        let read = |name: &str| {
            std::fs::read_to_string(dir.join(name))
                .map_err(|e| format!("{}: {e}", dir.join(name).display()))
        };
        return Ok(Bundle {
            ca_pem: String::new(),
            cert_pem: read(CERT_KEY)?,
            key_pem: read(PRIVATE_KEY)?,
            not_after: i64::MAX,
        });
    }
    let stored = kube
        .read_secret(&settings.namespace, &settings.secret)
        .await
        .map_err(|e| format!("reading Secret {}: {e}", settings.secret))?
        .and_then(|(data, annotations)| Bundle::from_secret_data(&data, &annotations));
    let (bundle, store) = choose(stored, settings, now).map_err(|e| e.to_string())?;
    if store {
        let (data, annotations) = bundle.to_secret_data();
        let data = data.into_iter().map(|(k, v)| (k, v.into_bytes())).collect();
        kube.write_secret(&settings.namespace, &settings.secret, (data, annotations))
            .await
            .map_err(|e| format!("writing Secret {}: {e}", settings.secret))?;
        tracing::info!(secret = %settings.secret, "webhook certificate issued");
    }
    let configured = kube
        .set_webhook_ca(&settings.configuration, &bundle.ca_pem)
        .await
        .map_err(|e| {
            format!(
                "ValidatingWebhookConfiguration {}: {e}",
                settings.configuration
            )
        })?;
    if !configured {
        tracing::warn!(configuration = %settings.configuration, "no such ValidatingWebhookConfiguration: the API server does not call the webhook");
    }
    Ok(bundle)
}

/// Refreshes every `period` and hands a changed certificate to the server.
pub async fn keep_current(
    kube: &KubeCluster,
    settings: &Settings,
    acceptor: &watch::Sender<TlsAcceptor>,
    mut serving: Bundle,
    period: std::time::Duration,
) {
    loop {
        tokio::time::sleep(period).await;
        // The wall clock, read in this shell: certificates are dated by it.
        let now = k8s_openapi::jiff::Timestamp::now().as_second();
        match refresh(kube, settings, now).await {
            Ok(bundle) if bundle != serving => match server::acceptor(&bundle) {
                Ok(new) => {
                    acceptor.send_replace(new);
                    serving = bundle;
                    tracing::info!("webhook certificate replaced");
                }
                Err(error) => tracing::error!(%error, "the new webhook certificate is unusable"),
            },
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "webhook certificate not refreshed; trying again"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrolb_cluster::kubernetes::fake::{mock_cluster, next};
    use http::Method;
    use std::collections::BTreeMap;

    fn settings() -> Settings {
        Settings {
            namespace: "metallb-system".into(),
            service: DEFAULT_SERVICE.into(),
            secret: DEFAULT_SECRET.into(),
            configuration: CONFIGURATION.into(),
            external: None,
        }
    }

    const NOW: i64 = 1_796_000_000;

    #[test]
    fn a_good_stored_certificate_is_kept_and_a_due_one_replaced() {
        let stored = Bundle::issue(DEFAULT_SERVICE, "metallb-system", NOW).unwrap();
        let (kept, store) = choose(Some(stored.clone()), &settings(), NOW + 86_400).unwrap();
        assert_eq!((kept, store), (stored.clone(), false));
        let (new, store) = choose(Some(stored.clone()), &settings(), NOW + 340 * 86_400).unwrap();
        assert!(store && new != stored);
        assert!(choose(None, &settings(), NOW).unwrap().1);
    }

    /// No Secret yet: a certificate is issued, stored, and its CA put into both webhooks.
    #[tokio::test]
    async fn a_first_start_issues_stores_and_configures() {
        let configuration = serde_json::json!({
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingWebhookConfiguration",
            "metadata": {"name": CONFIGURATION, "resourceVersion": "1"},
            "webhooks": [
                {"name": "ipaddresspoolvalidationwebhook.metallb.io", "admissionReviewVersions": ["v1"], "sideEffects": "None",
                 "clientConfig": {"service": {"name": DEFAULT_SERVICE, "namespace": "metallb-system", "path": "/validate-metallb-io-v1beta1-ipaddresspool"}}},
                {"name": "bgppeervalidationwebhook.metallb.io", "admissionReviewVersions": ["v1"], "sideEffects": "None",
                 "clientConfig": {"service": {"name": DEFAULT_SERVICE, "namespace": "metallb-system", "path": "/validate-metallb-io-v1beta2-bgppeer"}}},
            ],
        });
        let lists = BTreeMap::from([
            (
                "/api/v1/namespaces/metallb-system/secrets/metallb-webhook-cert",
                serde_json::Value::Null,
            ),
            (
                "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/metallb-webhook-configuration",
                configuration,
            ),
        ]);
        let (cluster, mut seen, _listed) =
            mock_cluster(lists, "metallb-system", "ferrolb-controller");
        let bundle = refresh(&cluster, &settings(), NOW).await.unwrap();

        let secret = next(&mut seen).await;
        assert_eq!(secret.method, Method::PATCH);
        assert_eq!(
            secret.path,
            "/api/v1/namespaces/metallb-system/secrets/metallb-webhook-cert"
        );
        assert_eq!(secret.content_type, "application/apply-patch+yaml");
        assert_eq!(secret.body["type"], "kubernetes.io/tls");
        let field = |key: &str| secret.body["data"][key].as_str().map(str::to_string);
        assert!(
            field("ca.crt").is_some() && field("tls.crt").is_some() && field("tls.key").is_some()
        );
        assert_eq!(
            secret.body["metadata"]["annotations"]["ferrolb.io/not-after"],
            bundle.not_after.to_string()
        );

        let patch = next(&mut seen).await;
        assert_eq!(patch.method, Method::PATCH);
        assert_eq!(patch.content_type, "application/merge-patch+json");
        let webhooks = patch.body["webhooks"].as_array().unwrap();
        assert_eq!(webhooks.len(), 2);
        use base64::Engine;
        let ca = base64::engine::general_purpose::STANDARD.encode(bundle.ca_pem.as_bytes());
        for webhook in webhooks {
            assert_eq!(webhook["clientConfig"]["caBundle"], ca);
            assert_eq!(webhook["clientConfig"]["service"]["name"], DEFAULT_SERVICE);
        }
        server::acceptor(&bundle).expect("the issued certificate serves");
    }
}
