//! MetalLB's own command-line flags (controller and speaker, 0.13 to today), so its
//! manifests, charts and habits start FerroLB unchanged. The few that mean something here
//! are read by the component; the rest are accepted and named in one log line as ignored.
//! A flag MetalLB takes must never stop FerroLB from starting.

/// Every MetalLB flag FerroLB has no flag of its own for. Values are kept as text: an odd
/// value of a flag FerroLB ignores is no reason to refuse to start.
#[derive(Clone, Debug, Default, clap::Args)]
#[command(
    next_help_heading = "MetalLB's flags (accepted; see the README for which mean something)"
)]
pub struct MetallbFlags {
    /// `enabled` (the default), `disabled`, or `onlywebhook` (the webhook without the
    /// controller, as MetalLB's separate webhook Deployment runs).
    #[arg(long, hide = true)]
    pub webhook_mode: Option<String>,
    /// Speaker: announce from nodes labelled
    /// `node.kubernetes.io/exclude-from-external-load-balancers` too.
    #[arg(long, hide = true, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub ignore_exclude_lb: Option<String>,
    #[arg(long, hide = true, env = "METALLB_ML_SECRET_NAME")]
    pub ml_secret_name: Option<String>,
    #[arg(long, hide = true, env = "METALLB_DEPLOYMENT")]
    pub deployment: Option<String>,
    #[arg(long, hide = true, env = "METALLB_POD_NAME")]
    pub pod_name: Option<String>,
    #[arg(long, hide = true, env = "METALLB_BGP_DEBOUNCE_TIMEOUT")]
    pub bgp_debounce_timeout: Option<String>,
    #[arg(long, hide = true, env = "FRRK8S_NAMESPACE")]
    pub frrk8s_namespace: Option<String>,
    #[arg(long, hide = true, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub frrk8s_secret_passthrough: Option<String>,
    #[arg(long, hide = true)]
    pub cert_dir: Option<String>,
    #[arg(long, hide = true)]
    pub cert_service_name: Option<String>,
    #[arg(long, hide = true)]
    pub webhook_secret: Option<String>,
    #[arg(long, hide = true, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub webhook_http2: Option<String>,
    #[arg(long, hide = true, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub disable_cert_rotation: Option<String>,
    #[arg(long, hide = true)]
    pub metrics_cert_dir: Option<String>,
    #[arg(long, hide = true)]
    pub tls_min_version: Option<String>,
    #[arg(long, hide = true)]
    pub tls_cipher_suites: Option<String>,
    #[arg(long, hide = true)]
    pub tls_curve_preferences: Option<String>,
    #[arg(long, hide = true)]
    pub health_probe_port: Option<String>,
    #[arg(long, hide = true)]
    pub pprof_bind_address: Option<String>,
    #[arg(long, hide = true, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub enable_pprof: Option<String>,
    #[arg(long, hide = true, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub ml_wan_config: Option<String>,
}

/// What `--webhook-mode` asks of the controller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WebhookMode {
    /// The controller, serving the admission webhook too (MetalLB's default).
    Enabled,
    /// The controller alone.
    Disabled,
    /// The webhook alone: MetalLB's separate webhook Deployment, beside a controller.
    OnlyWebhook,
}

impl MetallbFlags {
    /// The flags given on the command line or through MetalLB's environment variables, as
    /// `--name`, in a fixed order.
    pub fn given(&self) -> Vec<&'static str> {
        let flags: [(&'static str, bool); 21] = [
            ("--webhook-mode", self.webhook_mode.is_some()),
            ("--ignore-exclude-lb", self.ignore_exclude_lb.is_some()),
            ("--ml-secret-name", self.ml_secret_name.is_some()),
            ("--deployment", self.deployment.is_some()),
            ("--pod-name", self.pod_name.is_some()),
            (
                "--bgp-debounce-timeout",
                self.bgp_debounce_timeout.is_some(),
            ),
            ("--frrk8s-namespace", self.frrk8s_namespace.is_some()),
            (
                "--frrk8s-secret-passthrough",
                self.frrk8s_secret_passthrough.is_some(),
            ),
            ("--cert-dir", self.cert_dir.is_some()),
            ("--cert-service-name", self.cert_service_name.is_some()),
            ("--webhook-secret", self.webhook_secret.is_some()),
            ("--webhook-http2", self.webhook_http2.is_some()),
            (
                "--disable-cert-rotation",
                self.disable_cert_rotation.is_some(),
            ),
            ("--metrics-cert-dir", self.metrics_cert_dir.is_some()),
            ("--tls-min-version", self.tls_min_version.is_some()),
            ("--tls-cipher-suites", self.tls_cipher_suites.is_some()),
            (
                "--tls-curve-preferences",
                self.tls_curve_preferences.is_some(),
            ),
            ("--health-probe-port", self.health_probe_port.is_some()),
            ("--pprof-bind-address", self.pprof_bind_address.is_some()),
            ("--enable-pprof", self.enable_pprof.is_some()),
            ("--ml-wan-config", self.ml_wan_config.is_some()),
        ];
        flags
            .into_iter()
            .filter_map(|(name, given)| given.then_some(name))
            .collect()
    }

    /// Says in one log line which of the given MetalLB flags this component does not act on.
    pub fn log_ignored(&self, component: &str, honoured: &[&str]) {
        let ignored: Vec<&str> = self
            .given()
            .into_iter()
            .filter(|flag| !honoured.contains(flag))
            .collect();
        if !ignored.is_empty() {
            tracing::info!(
                component,
                flags = %ignored.join(" "),
                "MetalLB flags accepted and ignored: they mean nothing to FerroLB"
            );
        }
    }

    /// `--ignore-exclude-lb`, as Go reads a boolean flag (`--flag`, `--flag=true`, `=1`, ...).
    pub fn ignore_exclude_lb(&self) -> bool {
        self.ignore_exclude_lb.as_deref().is_some_and(go_bool)
    }

    /// `--disable-cert-rotation`, read the same way.
    pub fn disable_cert_rotation(&self) -> bool {
        self.disable_cert_rotation.as_deref().is_some_and(go_bool)
    }

    pub fn webhook_mode(&self) -> WebhookMode {
        match self.webhook_mode.as_deref() {
            Some("onlywebhook") => WebhookMode::OnlyWebhook,
            Some("disabled") => WebhookMode::Disabled,
            None | Some("enabled") => WebhookMode::Enabled,
            Some(other) => {
                tracing::warn!(
                    mode = other,
                    "--webhook-mode is enabled, disabled or onlywebhook; taking enabled"
                );
                WebhookMode::Enabled
            }
        }
    }
}

/// Go's `strconv.ParseBool`: anything else is false.
fn go_bool(text: &str) -> bool {
    matches!(text, "1" | "t" | "T" | "true" | "TRUE" | "True")
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        flags: MetallbFlags,
    }

    #[test]
    fn every_metallb_flag_is_accepted_in_the_forms_go_accepts() {
        let cli = Cli::try_parse_from([
            "x",
            "--webhook-mode=onlywebhook",
            "--cert-dir",
            "/tmp/k8s-webhook-server/serving-certs",
            "--cert-service-name=metallb-webhook-service",
            "--enable-pprof",
            "--ml-wan-config=false",
            "--ignore-exclude-lb=true",
            "--disable-cert-rotation",
            "--webhook-http2=1",
            "--bgp-debounce-timeout=3s",
            "--frrk8s-namespace=frr-k8s-system",
            "--frrk8s-secret-passthrough",
            "--tls-min-version=VersionTLS13",
            "--tls-cipher-suites=TLS_AES_128_GCM_SHA256",
            "--tls-curve-preferences=29",
            "--metrics-cert-dir=/certs",
            "--health-probe-port=8081",
            "--pprof-bind-address=127.0.0.1:6060",
            "--pod-name=speaker-abcde",
            "--deployment=controller",
            "--webhook-secret=metallb-webhook-cert",
            "--ml-secret-name=memberlist",
        ])
        .expect("MetalLB's flags parse");
        assert_eq!(cli.flags.given().len(), 21);
        assert!(cli.flags.ignore_exclude_lb());
        assert_eq!(cli.flags.webhook_mode(), WebhookMode::OnlyWebhook);
        let off =
            Cli::try_parse_from(["x", "--ignore-exclude-lb=false", "--webhook-mode=sideways"])
                .unwrap();
        assert!(!off.flags.ignore_exclude_lb());
        assert_eq!(off.flags.webhook_mode(), WebhookMode::Enabled);
    }
}
