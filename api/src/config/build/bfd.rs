//! BFDProfile: ranges and defaults as MetalLB's CRD defines them.
use super::*;

impl Builder<'_> {
    pub(super) fn bfd_profiles(&mut self) -> BTreeMap<String, BfdProfile> {
        let mut seen = BTreeSet::new();
        let mut profiles = BTreeMap::new();
        for object in by_name(&self.objects.bfd_profiles) {
            let name = object.name_any();
            if !self.claim_name(BFD, &name, &mut seen) {
                continue;
            }
            let spec = &object.spec;
            let before = self.errors.len();
            let mut field =
                |field: &str, value: Option<u32>, min: u32, max: u32, default: u32| match value {
                    Some(v) if !(min..=max).contains(&v) => {
                        self.errors.push(ConfigError::new(
                            BFD,
                            &name,
                            format!("spec.{field}"),
                            format!("invalid value {v}, must be in {min}-{max} range"),
                        ));
                        default
                    }
                    Some(v) => v,
                    None => default,
                };
            let profile = BfdProfile {
                name: name.clone(),
                receive_interval_ms: field(
                    "receiveInterval",
                    spec.receive_interval,
                    10,
                    60_000,
                    300,
                ),
                transmit_interval_ms: field(
                    "transmitInterval",
                    spec.transmit_interval,
                    10,
                    60_000,
                    300,
                ),
                detect_multiplier: field("detectMultiplier", spec.detect_multiplier, 2, 255, 3),
                echo_interval_ms: field("echoInterval", spec.echo_interval, 10, 60_000, 50),
                minimum_ttl: field("minimumTtl", spec.minimum_ttl, 1, 254, 254),
                echo_mode: spec.echo_mode.unwrap_or(false),
                passive_mode: spec.passive_mode.unwrap_or(false),
            };
            if self.errors.len() == before {
                profiles.insert(name, profile);
            }
        }
        profiles
    }
}

impl Builder<'_> {
    /// BFD echo cannot serve a session that carries IPv6 routes, so MetalLB refuses a peer
    /// with an echo profile that a BGPAdvertisement of an IPv6 pool reaches; FerroLB too.
    pub(super) fn refuse_echo_towards_ipv6(
        &mut self,
        pools: &BTreeMap<String, Pool>,
        peers: &BTreeMap<String, Peer>,
        bfd_profiles: &BTreeMap<String, BfdProfile>,
    ) {
        let echoes = |peer: &Peer| {
            peer.bfd_profile
                .as_ref()
                .and_then(|name| bfd_profiles.get(name))
                .is_some_and(|profile| profile.echo_mode)
        };
        for pool in pools.values() {
            if !pool.families().contains(&Family::V6) {
                continue;
            }
            for advertisement in &pool.bgp_advertisements {
                for peer in peers.values().filter(|p| echoes(p)) {
                    if advertisement.peers.is_empty() || advertisement.peers.contains(&peer.name) {
                        self.error(
                            PEER,
                            &peer.name,
                            "spec.bfdProfile",
                            format!(
                                "BFD echo mode with IPv6 routes is not possible: BGPAdvertisement {:?} sends the IPv6 pool {:?} to this peer",
                                advertisement.name, pool.name
                            ),
                        );
                    }
                }
            }
        }
    }
}
