//! The Prometheus text format (0.0.4), MetalLB's, for scrapers that do not ask for
//! OpenMetrics: prometheus-client writes OpenMetrics only, so its output is rewritten.
//!
//! The differences that matter: a counter's `# HELP`/`# TYPE` name its samples (`x_total`),
//! not the family (`x`); `unknown` is `untyped`; `info` is a gauge named `x_info`; there is
//! no `# UNIT`, no `_created` sample and no `# EOF`.

/// The content type of what [`to_prometheus`] returns.
pub const PROMETHEUS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
/// The content type of what prometheus-client renders.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Whether an `Accept` header asks for OpenMetrics (Prometheus itself does; `curl` and
/// older scrapers do not).
pub fn wants_openmetrics(accept: Option<&str>) -> bool {
    accept.is_some_and(|a| a.contains("application/openmetrics-text"))
}

/// OpenMetrics text, as prometheus-client renders it, in the Prometheus text format.
pub fn to_prometheus(openmetrics: &str) -> String {
    let mut out = String::with_capacity(openmetrics.len());
    // Per family (from its TYPE line): the name its HELP and TYPE take, and the sample
    // suffix dropped.
    let mut families: Vec<(String, String, Option<&str>)> = Vec::new();
    for line in openmetrics.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ")
            && let Some((name, kind)) = rest.split_once(' ')
        {
            let (renamed, kind, dropped) = match kind {
                "counter" => (format!("{name}_total"), "counter", Some("_created")),
                "unknown" => (name.to_string(), "untyped", None),
                "info" => (format!("{name}_info"), "gauge", None),
                other => (name.to_string(), other, None),
            };
            families.push((name.to_string(), renamed.clone(), dropped));
            out.push_str(&format!("# TYPE {renamed} {kind}\n"));
        } else if let Some(rest) = line.strip_prefix("# HELP ") {
            // The HELP line comes before its TYPE line: look the family's type up ahead.
            let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
            let renamed = type_of(openmetrics, name).map_or_else(
                || name.to_string(),
                |kind| match kind {
                    "counter" => format!("{name}_total"),
                    "info" => format!("{name}_info"),
                    _ => name.to_string(),
                },
            );
            out.push_str(&format!("# HELP {renamed} {help}\n"));
        } else if line.starts_with("# UNIT ") || line == "# EOF" {
        } else if let Some((family, _, Some(dropped))) = families.last()
            && line
                .strip_prefix(family.as_str())
                .is_some_and(|rest| rest.starts_with(dropped))
        {
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// The type a `# TYPE` line gives `name`.
fn type_of<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    text.lines().find_map(|l| {
        let (n, kind) = l.strip_prefix("# TYPE ")?.split_once(' ')?;
        (n == name).then_some(kind)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites_each_family_kind() {
        let openmetrics = "# HELP metallb_k8s_client_updates Number of updates.\n# TYPE metallb_k8s_client_updates counter\nmetallb_k8s_client_updates_total 2\nmetallb_k8s_client_updates_created 1.7e9\n# HELP metallb_layer2_requests_received Requests.\n# TYPE metallb_layer2_requests_received unknown\nmetallb_layer2_requests_received{ip=\"203.0.113.1\"} 1\n# HELP up Gauge.\n# TYPE up gauge\n# UNIT up seconds\nup 1\n# HELP build Build.\n# TYPE build info\nbuild_info{version=\"1\"} 1\n# EOF\n";
        assert_eq!(
            to_prometheus(openmetrics),
            "# HELP metallb_k8s_client_updates_total Number of updates.\n# TYPE metallb_k8s_client_updates_total counter\nmetallb_k8s_client_updates_total 2\n# HELP metallb_layer2_requests_received Requests.\n# TYPE metallb_layer2_requests_received untyped\nmetallb_layer2_requests_received{ip=\"203.0.113.1\"} 1\n# HELP up Gauge.\n# TYPE up gauge\nup 1\n# HELP build_info Build.\n# TYPE build_info gauge\nbuild_info{version=\"1\"} 1\n"
        );
    }

    #[test]
    fn negotiates_like_prometheus() {
        assert!(wants_openmetrics(Some(
            "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"
        )));
        assert!(!wants_openmetrics(Some("text/plain")));
        assert!(!wants_openmetrics(None));
    }
}
