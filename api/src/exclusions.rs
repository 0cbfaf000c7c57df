//! Which interfaces never announce by layer 2: MetalLB's `metallb-excludel2` ConfigMap
//! (`excludel2.yaml: announcedInterfacesToExclude: [regular expressions]`), or without it
//! MetalLB's own list.
use k8s_openapi::api::core::v1::ConfigMap;
use regex::Regex;

/// The ConfigMap MetalLB's manifests and chart create.
pub const CONFIGMAP: &str = "metallb-excludel2";
const KEY: &str = "excludel2.yaml";

/// MetalLB's list, as its manifests ship it: container, tunnel and virtual plumbing.
pub const METALLB_DEFAULT: &[&str] = &[
    "^docker.*",
    "^cbr.*",
    "^dummy.*",
    "^virbr.*",
    "^lxcbr.*",
    "^veth.*",
    "^lo$",
    "^cali.*",
    "^tunl.*",
    "^flannel.*",
    "^kube-ipvs.*",
    "^cni.*",
    "^nodelocaldns.*",
    "^lxc.*",
];

#[derive(Clone, Debug)]
pub struct Exclusions {
    /// The expressions, joined as MetalLB joins them: `(a)|(b)|...`; `None` excludes nothing.
    regex: Option<Regex>,
    /// The text they were read from (the ConfigMap's entry), to read it again only when it
    /// changes; `None` for the default.
    source: Option<String>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct ExcludeL2 {
    #[serde(default)]
    announced_interfaces_to_exclude: Vec<String>,
}

impl Default for Exclusions {
    fn default() -> Self {
        Exclusions {
            regex: join(METALLB_DEFAULT).ok(),
            source: None,
        }
    }
}

impl Exclusions {
    pub fn excludes(&self, interface: &str) -> bool {
        self.regex.as_ref().is_some_and(|r| r.is_match(interface))
    }

    /// The exclusions `configmap` sets (MetalLB's default without it). An entry that cannot
    /// be read is an error, and the caller keeps what it had.
    pub fn from_configmap(configmap: Option<&ConfigMap>) -> Result<Exclusions, String> {
        let Some(text) = configmap.and_then(|c| c.data.as_ref()?.get(KEY)) else {
            return Ok(Exclusions::default());
        };
        let parsed: ExcludeL2 =
            yaml_serde::from_str(text).map_err(|e| format!("ConfigMap {CONFIGMAP}: {KEY}: {e}"))?;
        let patterns: Vec<&str> = parsed
            .announced_interfaces_to_exclude
            .iter()
            .map(String::as_str)
            .collect();
        let regex =
            if patterns.is_empty() {
                None
            } else {
                Some(join(&patterns).map_err(|e| {
                    format!("ConfigMap {CONFIGMAP}: announcedInterfacesToExclude: {e}")
                })?)
            };
        Ok(Exclusions {
            regex,
            source: Some(text.clone()),
        })
    }

    /// Whether these were read from exactly this ConfigMap (or both are the default).
    pub fn read_from(&self, configmap: Option<&ConfigMap>) -> bool {
        self.source.as_ref() == configmap.and_then(|c| c.data.as_ref()?.get(KEY))
    }
}

fn join(patterns: &[&str]) -> Result<Regex, regex::Error> {
    let joined: Vec<String> = patterns.iter().map(|p| format!("({p})")).collect();
    Regex::new(&joined.join("|"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn configmap(text: &str) -> ConfigMap {
        ConfigMap {
            data: Some([(KEY.to_string(), text.to_string())].into_iter().collect()),
            ..ConfigMap::default()
        }
    }

    #[test]
    fn the_default_is_metallbs_list_and_no_more() {
        let default = Exclusions::from_configmap(None).unwrap();
        for name in [
            "docker0",
            "veth12ab",
            "lo",
            "cali1",
            "flannel.1",
            "kube-ipvs0",
            "cni0",
            "lxc9",
        ] {
            assert!(default.excludes(name), "{name}");
        }
        // An Open vSwitch bridge, a bond, a VLAN: MetalLB announces on them, and so does FerroLB.
        for name in ["ovsbr0", "eth0", "bond0", "eno1.100", "local0", "br-ex"] {
            assert!(!default.excludes(name), "{name}");
        }
    }

    #[test]
    fn the_configmap_replaces_the_list() {
        let custom = Exclusions::from_configmap(Some(&configmap(
            "announcedInterfacesToExclude: [\"^eth1$\", \"^ovs.*\"]\n",
        )))
        .unwrap();
        assert!(custom.excludes("eth1") && custom.excludes("ovsbr0"));
        assert!(!custom.excludes("eth10") && !custom.excludes("docker0"));
        let none =
            Exclusions::from_configmap(Some(&configmap("announcedInterfacesToExclude: []\n")))
                .unwrap();
        assert!(
            !none.excludes("docker0"),
            "an empty list excludes nothing, as in MetalLB"
        );
        assert!(none.read_from(Some(&configmap("announcedInterfacesToExclude: []\n"))));
        assert!(!none.read_from(None));
    }

    #[test]
    fn a_bad_configmap_is_an_error_naming_it() {
        let error = Exclusions::from_configmap(Some(&configmap(
            "announcedInterfacesToExclude: [\"^eth(\"]\n",
        )))
        .unwrap_err();
        assert!(
            error.starts_with("ConfigMap metallb-excludel2: announcedInterfacesToExclude:"),
            "{error}"
        );
        assert!(
            Exclusions::from_configmap(Some(&configmap("announcedInterfacesToExclude: 5\n")))
                .is_err()
        );
    }
}
