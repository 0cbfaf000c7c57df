//! Keeping the webhook's certificate current: the Secret's while it is good, a new one when
//! it is missing or due (written back, so every replica serves the same), its CA in the
//! ValidatingWebhookConfiguration; or, with `--disable-cert-rotation`, the files in
//! `--cert-dir` that someone else (cert-manager) keeps current.
use super::certs::{Bundle, CERT_KEY, PRIVATE_KEY};
use super::server;
use ferrolb_cluster::kubernetes::KubeCluster;
use ferrolb_cluster::kubernetes::webhook::SecretContents;
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

/// What to do with the certificate's Secret at `now`.
#[derive(Debug, PartialEq, Eq)]
pub enum Plan {
    /// Serve what it holds.
    Keep(Bundle),
    /// There is none: create it with this.
    Create(Bundle),
    /// Replace what it holds (due, or not ours to read) with this.
    Replace(Bundle),
}

/// `stored`: `None` when there is no Secret, `Some(None)` when it holds no bundle of ours
/// (MetalLB's cert-controller left it, say).
pub fn plan(
    stored: Option<Option<Bundle>>,
    settings: &Settings,
    now: i64,
) -> Result<Plan, rcgen::Error> {
    let issue = || Bundle::issue(&settings.service, &settings.namespace, now);
    Ok(match stored {
        None => Plan::Create(issue()?),
        Some(None) => Plan::Replace(issue()?),
        Some(Some(bundle)) if !bundle.due(now) => Plan::Keep(bundle),
        Some(Some(bundle)) => {
            Plan::Replace(bundle.renewed(&settings.service, &settings.namespace, now)?)
        }
    })
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
            ca_key_pem: String::new(),
            ca_not_after: i64::MAX,
            cert_pem: read(CERT_KEY)?,
            key_pem: read(PRIVATE_KEY)?,
            not_after: i64::MAX,
        });
    }
    let secret_error =
        |e: ferrolb_cluster::ClusterError| format!("Secret {}: {e}", settings.secret);
    // Twice at most: when another replica creates the Secret first, theirs is read.
    let mut bundle = None;
    for _ in 0..2 {
        let stored = kube
            .read_secret(&settings.namespace, &settings.secret)
            .await
            .map_err(secret_error)?;
        let type_ = stored.as_ref().and_then(|s| s.type_.clone());
        let held = stored.map(|s| Bundle::from_secret_data(&s.data, &s.annotations));
        let contents = |bundle: &Bundle| {
            let (data, annotations) = bundle.to_secret_data();
            SecretContents {
                data: data.into_iter().map(|(k, v)| (k, v.into_bytes())).collect(),
                annotations,
                type_: type_.clone(),
            }
        };
        match plan(held, settings, now).map_err(|e| e.to_string())? {
            Plan::Keep(kept) => bundle = Some(kept),
            Plan::Create(new) => {
                let created = kube
                    .create_secret(&settings.namespace, &settings.secret, contents(&new))
                    .await
                    .map_err(secret_error)?;
                if !created {
                    continue;
                }
                tracing::info!(secret = %settings.secret, "webhook certificate issued");
                bundle = Some(new);
            }
            Plan::Replace(new) => {
                kube.write_secret(&settings.namespace, &settings.secret, contents(&new))
                    .await
                    .map_err(secret_error)?;
                tracing::info!(secret = %settings.secret, "webhook certificate renewed");
                bundle = Some(new);
            }
        }
        break;
    }
    let bundle = bundle.ok_or_else(|| format!("Secret {} keeps changing", settings.secret))?;
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
    fn a_good_stored_certificate_is_kept_a_due_one_renewed_and_a_foreign_one_replaced() {
        let stored = Bundle::issue(DEFAULT_SERVICE, "metallb-system", NOW).unwrap();
        assert_eq!(
            plan(Some(Some(stored.clone())), &settings(), NOW + 86_400).unwrap(),
            Plan::Keep(stored.clone())
        );
        let Plan::Replace(renewed) =
            plan(Some(Some(stored.clone())), &settings(), NOW + 340 * 86_400).unwrap()
        else {
            panic!("a due certificate is replaced");
        };
        assert_eq!(renewed.ca_pem, stored.ca_pem, "the CA stays");
        assert_ne!(renewed.cert_pem, stored.cert_pem);
        assert!(matches!(
            plan(Some(None), &settings(), NOW).unwrap(),
            Plan::Replace(_)
        ));
        assert!(matches!(
            plan(None, &settings(), NOW).unwrap(),
            Plan::Create(_)
        ));
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
        assert_eq!(
            secret.method,
            Method::POST,
            "created, not forced over another's"
        );
        assert_eq!(secret.path, "/api/v1/namespaces/metallb-system/secrets");
        assert_eq!(secret.body["metadata"]["name"], "metallb-webhook-cert");
        assert_eq!(secret.body["type"], "Opaque", "MetalLB's type");
        let field = |key: &str| secret.body["data"][key].as_str().map(str::to_string);
        for key in ["ca.crt", "ca.key", "tls.crt", "tls.key"] {
            assert!(field(key).is_some(), "{key}");
        }
        assert_eq!(
            secret.body["metadata"]["annotations"]["ferrolb.io/not-after"],
            bundle.not_after.to_string()
        );

        let patch = next(&mut seen).await;
        assert_eq!(patch.method, Method::PATCH);
        assert_eq!(patch.content_type, "application/merge-patch+json");
        assert_eq!(patch.body["metadata"]["resourceVersion"], "1");
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
