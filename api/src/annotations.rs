//! MetalLB's Service annotations, under `metallb.io/` and the older `metallb.universe.tf/`.
use std::collections::BTreeMap;
use std::net::IpAddr;

/// Written by the controller: the pool a Service's IPs came from.
pub const IP_ALLOCATED_FROM_POOL: &str = "metallb.io/ip-allocated-from-pool";

const PREFIX: &str = "metallb.io/";
const OLD_PREFIX: &str = "metallb.universe.tf/";
const LOAD_BALANCER_IPS: &str = "loadBalancerIPs";
/// The requested-IPs annotation, as users write it.
pub const LOAD_BALANCER_IPS_KEY: &str = "metallb.io/loadBalancerIPs";
const ADDRESS_POOL: &str = "address-pool";
const ALLOW_SHARED_IP: &str = "allow-shared-ip";

/// What a Service asks for through annotations.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServiceAnnotations {
    /// `loadBalancerIPs`: at most one address per family.
    pub requested_ips: Vec<IpAddr>,
    /// `address-pool`.
    pub pool: Option<String>,
    /// `allow-shared-ip`: the sharing key.
    pub sharing_key: Option<String>,
    /// Keys read under the deprecated `metallb.universe.tf/` prefix (for a Warning Event).
    pub deprecated_keys: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AnnotationError {
    #[error("invalid {key} annotation: {value:?} is not an IP address")]
    InvalidIp { key: String, value: String },
    #[error("invalid {key} annotation: more than one {family} address in {value:?}")]
    TwoOfAFamily {
        key: String,
        value: String,
        family: &'static str,
    },
    #[error("invalid {key} annotation: empty")]
    Empty { key: String },
    /// MetalLB refuses a Service that asks for IPs in two places rather than pick one.
    #[error(
        "the Service asks for IPs both with the {key} annotation and spec.loadBalancerIP; keep one"
    )]
    BothRequests { key: String },
}

impl ServiceAnnotations {
    /// Reads the annotations; a `metallb.io/` key wins over its `metallb.universe.tf/` twin.
    pub fn parse(
        annotations: &BTreeMap<String, String>,
    ) -> Result<ServiceAnnotations, AnnotationError> {
        let mut out = ServiceAnnotations::default();
        let mut get = |name: &str| -> Option<(String, String)> {
            let new_key = format!("{PREFIX}{name}");
            if let Some(value) = annotations.get(&new_key) {
                return Some((new_key, value.clone()));
            }
            let old_key = format!("{OLD_PREFIX}{name}");
            let value = annotations.get(&old_key)?;
            out.deprecated_keys.push(old_key.clone());
            Some((old_key, value.clone()))
        };
        let ips = get(LOAD_BALANCER_IPS);
        let pool = get(ADDRESS_POOL);
        let sharing = get(ALLOW_SHARED_IP);
        if let Some((key, value)) = ips {
            out.requested_ips = parse_ips(&key, &value)?;
        }
        if let Some((key, value)) = pool {
            if value.trim().is_empty() {
                return Err(AnnotationError::Empty { key });
            }
            out.pool = Some(value.trim().to_string());
        }
        out.sharing_key = sharing.map(|(_, v)| v).filter(|v| !v.is_empty());
        Ok(out)
    }
}

/// A comma-separated list of addresses, at most one IPv4 and one IPv6.
fn parse_ips(key: &str, value: &str) -> Result<Vec<IpAddr>, AnnotationError> {
    let mut ips: Vec<IpAddr> = Vec::new();
    for part in value.split(',') {
        let part = part.trim();
        let ip: IpAddr = part.parse().map_err(|_| AnnotationError::InvalidIp {
            key: key.to_string(),
            value: part.to_string(),
        })?;
        if ips.iter().any(|other| other.is_ipv4() == ip.is_ipv4()) {
            let family = if ip.is_ipv4() { "IPv4" } else { "IPv6" };
            return Err(AnnotationError::TwoOfAFamily {
                key: key.to_string(),
                value: value.to_string(),
                family,
            });
        }
        ips.push(ip);
    }
    Ok(ips)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn annotations(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn reads_new_keys_and_prefers_them_over_old_ones() {
        let a = ServiceAnnotations::parse(&annotations(&[
            ("metallb.io/loadBalancerIPs", "198.51.100.1, 2001:db8::1"),
            ("metallb.universe.tf/loadBalancerIPs", "198.51.100.9"),
            ("metallb.universe.tf/address-pool", "blue"),
            ("metallb.io/allow-shared-ip", "web"),
        ]))
        .unwrap();
        assert_eq!(
            a.requested_ips,
            vec![
                "198.51.100.1".parse::<IpAddr>().unwrap(),
                "2001:db8::1".parse().unwrap()
            ]
        );
        assert_eq!(a.pool.as_deref(), Some("blue"));
        assert_eq!(a.sharing_key.as_deref(), Some("web"));
        assert_eq!(
            a.deprecated_keys,
            vec!["metallb.universe.tf/address-pool".to_string()]
        );
    }

    #[test]
    fn rejects_bad_lists() {
        let bad = |v: &str| {
            ServiceAnnotations::parse(&annotations(&[("metallb.io/loadBalancerIPs", v)]))
                .unwrap_err()
        };
        assert!(matches!(
            bad("198.51.100.1,198.51.100.2"),
            AnnotationError::TwoOfAFamily { .. }
        ));
        assert!(matches!(bad("nope"), AnnotationError::InvalidIp { .. }));
        assert!(matches!(bad(""), AnnotationError::InvalidIp { .. }));
    }
}
