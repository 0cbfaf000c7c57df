//! From objects to a [`Config`]: every validation rule, each error naming object, field and reason.
use super::*;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::ResourceExt;

const POOL: &str = "IPAddressPool";
const L2_ADV: &str = "L2Advertisement";
const BGP_ADV: &str = "BGPAdvertisement";
const PEER: &str = "BGPPeer";
const BFD: &str = "BFDProfile";
const COMMUNITY: &str = "Community";

pub(super) fn build(objects: &ConfigObjects) -> Result<Config, Vec<ConfigError>> {
    let mut builder = Builder {
        objects,
        errors: Vec::new(),
    };
    let bfd_profiles = builder.bfd_profiles();
    let aliases = builder.community_aliases();
    let mut pools = builder.pools();
    builder.attach_l2_advertisements(&mut pools);
    builder.attach_bgp_advertisements(&mut pools, &aliases);
    let peers = builder.peers(&bfd_profiles);
    if builder.errors.is_empty() {
        Ok(Config {
            pools,
            peers,
            bfd_profiles,
        })
    } else {
        let mut errors = builder.errors;
        errors.sort();
        errors.dedup();
        Err(errors)
    }
}

struct Builder<'a> {
    objects: &'a ConfigObjects,
    errors: Vec<ConfigError>,
}

/// Objects in name order, so results and errors never depend on listing order.
fn by_name<K: ResourceExt>(objects: &[K]) -> Vec<&K> {
    let mut sorted: Vec<&K> = objects.iter().collect();
    sorted.sort_by_key(|o| o.name_any());
    sorted
}

impl Builder<'_> {
    fn error(
        &mut self,
        kind: &'static str,
        name: &str,
        field: impl Into<String>,
        reason: impl Into<String>,
    ) {
        self.errors
            .push(ConfigError::new(kind, name, field, reason));
    }

    /// Checks a name is present and not taken yet by another object of the kind.
    fn claim_name(&mut self, kind: &'static str, name: &str, seen: &mut BTreeSet<String>) -> bool {
        if name.is_empty() {
            self.error(kind, name, "metadata.name", "missing name");
            return false;
        }
        if !seen.insert(name.to_string()) {
            self.error(
                kind,
                name,
                "metadata.name",
                format!("duplicate definition of {kind} {name:?}"),
            );
            return false;
        }
        true
    }

    /// Compiles a list of label selectors, rejecting invalid and repeated ones.
    fn selectors(
        &mut self,
        kind: &'static str,
        name: &str,
        field: &str,
        list: &[LabelSelector],
    ) -> Vec<Selector> {
        let mut compiled: Vec<Selector> = Vec::new();
        for (i, raw) in list.iter().enumerate() {
            match Selector::new(raw) {
                Ok(selector) if compiled.contains(&selector) => self.error(
                    kind,
                    name,
                    format!("spec.{field}[{i}]"),
                    format!(
                        "duplicate definition of {field} {selector:?}",
                        selector = selector.to_string()
                    ),
                ),
                Ok(selector) => compiled.push(selector),
                Err(reason) => self.error(kind, name, format!("spec.{field}[{i}]"), reason),
            }
        }
        compiled
    }

    /// Reports repeated entries of a list of names.
    fn unique_names(
        &mut self,
        kind: &'static str,
        name: &str,
        field: &str,
        list: &[String],
    ) -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        for (i, entry) in list.iter().enumerate() {
            if entry.is_empty() {
                self.error(kind, name, format!("spec.{field}[{i}]"), "empty name");
            } else if !seen.insert(entry.clone()) {
                self.error(
                    kind,
                    name,
                    format!("spec.{field}[{i}]"),
                    format!("duplicate definition of {field} {entry:?}"),
                );
            }
        }
        seen
    }

    fn bfd_profiles(&mut self) -> BTreeMap<String, BfdProfile> {
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

    /// Community aliases from every Community object, in one namespace of names.
    fn community_aliases(&mut self) -> BTreeMap<String, BgpCommunity> {
        let mut aliases = BTreeMap::new();
        for object in by_name(&self.objects.communities) {
            let name = object.name_any();
            for (i, alias) in object.spec.communities.iter().enumerate() {
                let field = format!("spec.communities[{i}]");
                if alias.name.is_empty() {
                    self.error(
                        COMMUNITY,
                        &name,
                        format!("{field}.name"),
                        "missing alias name",
                    );
                    continue;
                }
                match alias.value.parse::<BgpCommunity>() {
                    Err(reason) => self.error(COMMUNITY, &name, format!("{field}.value"), reason),
                    Ok(_) if aliases.contains_key(&alias.name) => self.error(
                        COMMUNITY,
                        &name,
                        format!("{field}.name"),
                        format!("duplicate definition of community {:?}", alias.name),
                    ),
                    Ok(value) => {
                        aliases.insert(alias.name.clone(), value);
                    }
                }
            }
        }
        aliases
    }

    fn pools(&mut self) -> BTreeMap<String, Pool> {
        let mut seen = BTreeSet::new();
        let mut pools = BTreeMap::new();
        // Every parsed range with its owner, for the overlap check across all pools.
        let mut all_ranges: Vec<(AddressRange, String, usize, String)> = Vec::new();
        for object in by_name(&self.objects.pools) {
            let name = object.name_any();
            if !self.claim_name(POOL, &name, &mut seen) {
                continue;
            }
            let spec = &object.spec;
            let before = self.errors.len();
            if spec.addresses.is_empty() {
                self.error(POOL, &name, "spec.addresses", "pool has no addresses");
            }
            let mut ranges = Vec::new();
            for (i, entry) in spec.addresses.iter().enumerate() {
                match AddressRange::parse(entry) {
                    Ok(range) => {
                        ranges.push(range);
                        all_ranges.push((range, name.clone(), i, entry.clone()));
                    }
                    Err(e) => {
                        self.error(POOL, &name, format!("spec.addresses[{i}]"), e.to_string())
                    }
                }
            }
            ranges.sort();
            let allocation = spec.service_allocation.as_ref().map(|a| {
                let namespaces =
                    self.unique_names(POOL, &name, "serviceAllocation.namespaces", &a.namespaces);
                ServiceAllocation {
                    priority: a.priority,
                    namespaces,
                    namespace_selectors: self.selectors(
                        POOL,
                        &name,
                        "serviceAllocation.namespaceSelectors",
                        &a.namespace_selectors,
                    ),
                    service_selectors: self.selectors(
                        POOL,
                        &name,
                        "serviceAllocation.serviceSelectors",
                        &a.service_selectors,
                    ),
                }
            });
            if self.errors.len() == before {
                pools.insert(
                    name.clone(),
                    Pool {
                        name,
                        labels: object.labels().clone(),
                        ranges,
                        auto_assign: spec.auto_assign.unwrap_or(true),
                        avoid_buggy_ips: spec.avoid_buggy_ips,
                        allocation,
                        l2_advertisements: Vec::new(),
                        bgp_advertisements: Vec::new(),
                    },
                );
            }
        }
        // Sorted by start, a range overlaps an earlier one exactly when it starts at or before
        // the furthest end seen so far: n log n, not n^2.
        all_ranges.sort_by_key(|(range, ..)| (range.family(), range.offsets().0));
        let mut furthest: Option<&(AddressRange, String, usize, String)> = None;
        let mut overlaps = Vec::new();
        for current in &all_ranges {
            if let Some(previous) = furthest {
                if previous.0.overlaps(&current.0) {
                    overlaps.push((current, previous));
                }
                if previous.0.family() == current.0.family()
                    && previous.0.offsets().1 >= current.0.offsets().1
                {
                    continue;
                }
            }
            furthest = Some(current);
        }
        for ((_, pool, i, entry), (_, other_pool, _, other_entry)) in overlaps {
            let reason = if pool == other_pool {
                format!("{entry:?} overlaps with {other_entry:?} in the same pool")
            } else {
                format!("{entry:?} overlaps with {other_entry:?} of pool {other_pool:?}")
            };
            self.error(POOL, pool, format!("spec.addresses[{i}]"), reason);
            pools.remove(pool.as_str());
        }
        pools
    }

    /// The pools an advertisement names or selects; with neither, every pool.
    fn selected_pools(
        &mut self,
        kind: &'static str,
        name: &str,
        names: &[String],
        selectors: &[LabelSelector],
        pools: &BTreeMap<String, Pool>,
    ) -> Vec<String> {
        let names = self.unique_names(kind, name, "ipAddressPools", names);
        let selectors = self.selectors(kind, name, "ipAddressPoolSelectors", selectors);
        pools
            .values()
            .filter(|pool| {
                (names.is_empty() && selectors.is_empty())
                    || names.contains(&pool.name)
                    || selectors.iter().any(|s| s.matches(&pool.labels))
            })
            .map(|pool| pool.name.clone())
            .collect()
    }

    fn attach_l2_advertisements(&mut self, pools: &mut BTreeMap<String, Pool>) {
        let mut seen = BTreeSet::new();
        for object in by_name(&self.objects.l2_advertisements) {
            let name = object.name_any();
            if !self.claim_name(L2_ADV, &name, &mut seen) {
                continue;
            }
            let spec = &object.spec;
            let before = self.errors.len();
            let selected = self.selected_pools(
                L2_ADV,
                &name,
                &spec.ip_address_pools,
                &spec.ip_address_pool_selectors,
                pools,
            );
            let node_selectors =
                self.selectors(L2_ADV, &name, "nodeSelectors", &spec.node_selectors);
            let service_selectors =
                self.selectors(L2_ADV, &name, "serviceSelectors", &spec.service_selectors);
            let interfaces = self.unique_names(L2_ADV, &name, "interfaces", &spec.interfaces);
            let mut preferred = Vec::new();
            for (i, p) in spec.preferred_node_selectors.iter().enumerate() {
                if !(1..=100).contains(&p.weight) {
                    self.error(
                        L2_ADV,
                        &name,
                        format!("spec.preferredNodeSelectors[{i}].weight"),
                        format!("invalid weight {}, must be in 1-100 range", p.weight),
                    );
                }
                match Selector::new(&p.preference) {
                    Ok(s) => preferred.push((p.weight, s)),
                    Err(reason) => self.error(
                        L2_ADV,
                        &name,
                        format!("spec.preferredNodeSelectors[{i}].preference"),
                        reason,
                    ),
                }
            }
            if self.errors.len() != before {
                continue;
            }
            let advertisement = L2Advertisement {
                name: name.clone(),
                node_selectors,
                interfaces: interfaces.into_iter().collect(),
                service_selectors,
                preferred_node_selectors: preferred,
            };
            for pool in selected {
                if let Some(pool) = pools.get_mut(&pool) {
                    pool.l2_advertisements.push(advertisement.clone());
                }
            }
        }
    }

    fn attach_bgp_advertisements(
        &mut self,
        pools: &mut BTreeMap<String, Pool>,
        aliases: &BTreeMap<String, BgpCommunity>,
    ) {
        let mut seen = BTreeSet::new();
        let objects = by_name(&self.objects.bgp_advertisements);
        for (i, object) in objects.iter().enumerate() {
            if let Some(twin) = objects[..i].iter().find(|o| o.spec == object.spec) {
                self.error(
                    BGP_ADV,
                    &object.name_any(),
                    "spec",
                    format!(
                        "duplicate definition of BGPAdvertisement: equal to {:?}",
                        twin.name_any()
                    ),
                );
            }
        }
        for object in objects {
            let name = object.name_any();
            if !self.claim_name(BGP_ADV, &name, &mut seen) {
                continue;
            }
            let spec = &object.spec;
            let before = self.errors.len();
            let selected = self.selected_pools(
                BGP_ADV,
                &name,
                &spec.ip_address_pools,
                &spec.ip_address_pool_selectors,
                pools,
            );
            let length = |value: Option<i32>,
                          default: u8,
                          min: i32,
                          max: u8,
                          field: &str,
                          errors: &mut Vec<ConfigError>| match value {
                None => default,
                Some(v) if v < min || v > i32::from(max) => {
                    errors.push(ConfigError::new(
                        BGP_ADV,
                        &name,
                        format!("spec.{field}"),
                        format!("invalid aggregation length {v}: must be in {min}-{max} range"),
                    ));
                    default
                }
                Some(v) => v as u8,
            };
            let aggregation_length = length(
                spec.aggregation_length,
                32,
                1,
                32,
                "aggregationLength",
                &mut self.errors,
            );
            let aggregation_length_v6 = length(
                spec.aggregation_length_v6,
                128,
                0,
                128,
                "aggregationLengthV6",
                &mut self.errors,
            );
            let service_selectors =
                self.selectors(BGP_ADV, &name, "serviceSelectors", &spec.service_selectors);
            if !service_selectors.is_empty()
                && (aggregation_length != 32 || aggregation_length_v6 != 128)
            {
                self.error(BGP_ADV, &name, "spec.serviceSelectors", "serviceSelectors and aggregationLength are mutually exclusive: serviceSelectors can only be used with the default aggregation lengths (32 and 128)");
            }
            let mut communities = BTreeSet::new();
            for (i, entry) in spec.communities.iter().enumerate() {
                let field = format!("spec.communities[{i}]");
                let value = match aliases.get(entry) {
                    Some(value) => Ok(*value),
                    None if !entry.contains(':') => Err(format!(
                        "{entry:?} is neither a community value nor a Community alias"
                    )),
                    None => entry.parse::<BgpCommunity>(),
                };
                match value {
                    Ok(value) if !communities.insert(value) => self.error(
                        BGP_ADV,
                        &name,
                        field,
                        format!("duplicate definition of community {entry:?}"),
                    ),
                    Ok(_) => {}
                    Err(reason) => self.error(BGP_ADV, &name, field, reason),
                }
            }
            let advertisement = BgpAdvertisement {
                name: name.clone(),
                aggregation_length,
                aggregation_length_v6,
                local_pref: spec.local_pref,
                communities,
                node_selectors: self.selectors(
                    BGP_ADV,
                    &name,
                    "nodeSelectors",
                    &spec.node_selectors,
                ),
                peers: self.unique_names(BGP_ADV, &name, "peers", &spec.peers),
                service_selectors,
            };
            if self.errors.len() != before {
                continue;
            }
            for pool_name in selected {
                let Some(pool) = pools.get_mut(&pool_name) else {
                    continue;
                };
                if let Some(reason) = aggregation_problem(pool, &advertisement) {
                    self.error(BGP_ADV, &name, "spec.aggregationLength", reason);
                    continue;
                }
                let nodes = self.objects.nodes.as_deref();
                if let Some(other) = pool.bgp_advertisements.iter().find(|other| {
                    local_pref_conflict(pool.families(), other, &advertisement, nodes)
                }) {
                    self.error(BGP_ADV, &name, "spec.localPref", format!(
                        "local preference {} conflicts with {} of BGPAdvertisement {:?} for the same routes of pool {:?} to the same peers from the same nodes",
                        advertisement.local_pref, other.local_pref, other.name, pool.name
                    ));
                    continue;
                }
                pool.bgp_advertisements.push(advertisement.clone());
            }
        }
    }

    fn peers(&mut self, bfd_profiles: &BTreeMap<String, BfdProfile>) -> BTreeMap<String, Peer> {
        let mut seen = BTreeSet::new();
        let mut peers: BTreeMap<String, Peer> = BTreeMap::new();
        for object in by_name(&self.objects.bgp_peers) {
            let name = object.name_any();
            if !self.claim_name(PEER, &name, &mut seen) {
                continue;
            }
            let before = self.errors.len();
            let peer = self.peer(&name, &object.spec, bfd_profiles);
            let Some(peer) = peer.filter(|_| self.errors.len() == before) else {
                continue;
            };
            let nodes = self.objects.nodes.as_deref();
            if let Some(twin) = peers.values().find(|other| {
                other.endpoint == peer.endpoint
                    && other.vrf == peer.vrf
                    && nodes_overlap(&other.node_selectors, &peer.node_selectors, nodes)
            }) {
                self.error(PEER, &name, "spec.peerAddress", format!(
                    "duplicate peer: BGPPeer {:?} already peers with the same router from the same nodes",
                    twin.name
                ));
                continue;
            }
            peers.insert(name, peer);
        }
        peers
    }

    fn peer(
        &mut self,
        name: &str,
        spec: &v1beta2::BGPPeerSpec,
        bfd_profiles: &BTreeMap<String, BfdProfile>,
    ) -> Option<Peer> {
        if spec.my_asn == 0 {
            self.error(PEER, name, "spec.myASN", "missing local ASN");
        }
        let peer_asn = match (spec.peer_asn, spec.dynamic_asn) {
            (0, None) => {
                self.error(
                    PEER,
                    name,
                    "spec.peerASN",
                    "missing peer ASN: set peerASN or dynamicASN",
                );
                None
            }
            (asn, Some(_)) if asn != 0 => {
                self.error(
                    PEER,
                    name,
                    "spec.dynamicASN",
                    "both peerASN and dynamicASN specified",
                );
                None
            }
            (0, Some(mode)) => Some(PeerAsn::Dynamic(mode)),
            (asn, _) => Some(PeerAsn::Fixed(asn)),
        };
        let internal = match peer_asn {
            Some(PeerAsn::Fixed(asn)) => asn == spec.my_asn,
            Some(PeerAsn::Dynamic(mode)) => mode == v1beta2::DynamicAsnMode::Internal,
            None => false,
        };
        if internal && spec.ebgp_multi_hop {
            self.error(
                PEER,
                name,
                "spec.ebgpMultiHop",
                "ebgpMultiHop set for an iBGP peer",
            );
        }
        let endpoint = match (spec.peer_address.as_str(), spec.interface.as_str()) {
            ("", "") => {
                self.error(
                    PEER,
                    name,
                    "spec.peerAddress",
                    "peer has no peerAddress or interface specified",
                );
                None
            }
            (address, interface) if !address.is_empty() && !interface.is_empty() => {
                self.error(
                    PEER,
                    name,
                    "spec.interface",
                    "peer has both peerAddress and interface specified",
                );
                None
            }
            ("", interface) => Some(PeerEndpoint::Interface(interface.to_string())),
            (address, _) => match address.parse::<IpAddr>() {
                Ok(ip) => Some(PeerEndpoint::Address(ip)),
                Err(_) => {
                    self.error(
                        PEER,
                        name,
                        "spec.peerAddress",
                        format!("invalid peer address {address:?}"),
                    );
                    None
                }
            },
        };
        let (hold_time, keepalive_time) = self.timers(name, spec)?;
        let connect_time =
            spec.connect_time
                .as_deref()
                .and_then(|text| match parse_go_duration(text) {
                    Ok(d) if d.subsec_nanos() != 0 => {
                        self.error(
                            PEER,
                            name,
                            "spec.connectTime",
                            "connect time should contain a whole number of seconds",
                        );
                        None
                    }
                    Ok(d) if !(1..=65535).contains(&d.as_secs()) => {
                        self.error(
                            PEER,
                            name,
                            "spec.connectTime",
                            "connect time should be between 1 and 65535 seconds",
                        );
                        None
                    }
                    Ok(d) => Some(d),
                    Err(reason) => {
                        self.error(PEER, name, "spec.connectTime", reason);
                        None
                    }
                });
        let port = match spec.peer_port {
            Some(0) => {
                self.error(
                    PEER,
                    name,
                    "spec.peerPort",
                    "invalid port 0, must be in 1-16384 range",
                );
                179
            }
            Some(port) if port > 16384 => {
                self.error(
                    PEER,
                    name,
                    "spec.peerPort",
                    format!("invalid port {port}, must be in 1-16384 range"),
                );
                179
            }
            Some(port) => port,
            None => 179,
        };
        let router_id = (!spec.router_id.is_empty())
            .then(|| spec.router_id.parse::<std::net::Ipv4Addr>())
            .and_then(|r| {
                r.map_err(|_| {
                    self.error(
                        PEER,
                        name,
                        "spec.routerID",
                        format!(
                            "invalid router ID {:?}: must be an IPv4 address",
                            spec.router_id
                        ),
                    )
                })
                .ok()
            });
        let source_address = (!spec.source_address.is_empty())
            .then(|| spec.source_address.parse::<IpAddr>())
            .and_then(|r| {
                r.map_err(|_| {
                    self.error(
                        PEER,
                        name,
                        "spec.sourceAddress",
                        format!("invalid source address {:?}", spec.source_address),
                    )
                })
                .ok()
            });
        if spec.local_asn == Some(0) {
            self.error(PEER, name, "spec.localASN", "invalid localASN 0");
        }
        let node_selectors = self.selectors(PEER, name, "nodeSelectors", &spec.node_selectors);
        let password = self.password(name, spec);
        let bfd_profile = (!spec.bfd_profile.is_empty()).then(|| spec.bfd_profile.clone());
        if let Some(profile) = &bfd_profile
            && !bfd_profiles.contains_key(profile)
        {
            self.error(
                PEER,
                name,
                "spec.bfdProfile",
                format!("references BFDProfile {profile:?}, which does not exist"),
            );
        }
        Some(Peer {
            name: name.to_string(),
            my_asn: spec.my_asn,
            local_asn: spec.local_asn,
            peer_asn: peer_asn?,
            endpoint: endpoint?,
            port,
            source_address,
            router_id,
            hold_time,
            keepalive_time,
            connect_time,
            node_selectors,
            password,
            bfd_profile,
            graceful_restart: spec.enable_graceful_restart,
            ebgp_multi_hop: spec.ebgp_multi_hop,
            vrf: (!spec.vrf.is_empty()).then(|| spec.vrf.clone()),
            dual_stack_address_family: spec.dual_stack_address_family,
        })
    }

    /// Hold and keepalive times with MetalLB's defaults: 90s hold, keepalive a third of it.
    fn timers(&mut self, name: &str, spec: &v1beta2::BGPPeerSpec) -> Option<(Duration, Duration)> {
        let mut parse =
            |field: &str, text: &Option<String>| match text.as_deref().map(parse_go_duration) {
                None => Some(None),
                Some(Ok(d)) => Some(Some(d)),
                Some(Err(reason)) => {
                    self.errors.push(ConfigError::new(
                        PEER,
                        name,
                        format!("spec.{field}"),
                        reason,
                    ));
                    None
                }
            };
        let hold = parse("holdTime", &spec.hold_time);
        let keepalive = parse("keepaliveTime", &spec.keepalive_time);
        let (hold, keepalive) = match (hold?, keepalive?) {
            (None, None) => (Duration::from_secs(90), Duration::from_secs(30)),
            (Some(hold), None) => (hold, hold / 3),
            (None, Some(keepalive)) => (keepalive.saturating_mul(3), keepalive),
            (Some(hold), Some(keepalive)) => (hold, keepalive),
        };
        // BGP carries whole seconds (RFC 4271 4.2).
        let hold = Duration::from_secs(hold.as_secs());
        if hold != Duration::ZERO && hold < Duration::from_secs(3) {
            self.error(
                PEER,
                name,
                "spec.holdTime",
                format!("invalid hold time {hold:?}: must be 0 or >=3s"),
            );
            return None;
        }
        if keepalive > hold {
            self.error(PEER, name, "spec.keepaliveTime", format!("invalid keepalive time {keepalive:?}: must be lower than the hold time {hold:?}"));
            return None;
        }
        Some((hold, keepalive))
    }

    fn password(&mut self, name: &str, spec: &v1beta2::BGPPeerSpec) -> Option<String> {
        let secret_name = spec.password_secret.name.as_deref().unwrap_or("");
        match (spec.password.as_str(), secret_name) {
            ("", "") => None,
            (password, "") => Some(password.to_string()),
            (password, _) if !password.is_empty() => {
                self.error(
                    PEER,
                    name,
                    "spec.passwordSecret",
                    "can not have both password and passwordSecret set",
                );
                None
            }
            (_, secret_name) => {
                let namespace = spec.password_secret.namespace.as_deref();
                let secret = self.objects.secrets.iter().find(|s| {
                    s.name_any() == secret_name
                        && namespace.is_none_or(|ns| s.namespace().as_deref() == Some(ns))
                });
                let Some(secret) = secret else {
                    self.error(
                        PEER,
                        name,
                        "spec.passwordSecret",
                        format!("secret {secret_name:?} not found"),
                    );
                    return None;
                };
                if secret.type_.as_deref() != Some("kubernetes.io/basic-auth") {
                    self.error(PEER, name, "spec.passwordSecret", format!("secret {secret_name:?} has type {:?}, expected \"kubernetes.io/basic-auth\"", secret.type_.as_deref().unwrap_or("")));
                    return None;
                }
                let password = secret
                    .data
                    .as_ref()
                    .and_then(|d| d.get("password"))
                    .map(|b| String::from_utf8_lossy(&b.0).into_owned())
                    .or_else(|| {
                        secret
                            .string_data
                            .as_ref()
                            .and_then(|d| d.get("password"))
                            .cloned()
                    });
                if password.is_none() {
                    self.error(
                        PEER,
                        name,
                        "spec.passwordSecret",
                        format!("password not specified in secret {secret_name:?}"),
                    );
                }
                password
            }
        }
    }
}

/// An aggregation length shorter than the widest CIDR of a range would announce addresses
/// outside the pool.
fn aggregation_problem(pool: &Pool, advertisement: &BgpAdvertisement) -> Option<String> {
    pool.ranges.iter().find_map(|range| {
        let length = match range.family() {
            Family::V4 => advertisement.aggregation_length,
            Family::V6 => advertisement.aggregation_length_v6,
        };
        let widest = range.widest_prefix();
        (length < widest).then(|| {
            format!(
                "invalid aggregation length {length}: prefix {widest} of {range} in pool {:?} is more specific than the aggregation length",
                pool.name
            )
        })
    })
}

/// Two advertisements of one pool conflict when they would send the same routes to the same
/// peers from the same nodes with different LOCAL_PREF (MetalLB's rule).
fn local_pref_conflict(
    families: BTreeSet<Family>,
    a: &BgpAdvertisement,
    b: &BgpAdvertisement,
    nodes: Option<&[Node]>,
) -> bool {
    if !a.service_selectors.is_empty()
        || !b.service_selectors.is_empty()
        || a.local_pref == b.local_pref
    {
        return false;
    }
    let same_routes = families.iter().any(|family| match family {
        Family::V4 => a.aggregation_length == b.aggregation_length,
        Family::V6 => a.aggregation_length_v6 == b.aggregation_length_v6,
    });
    let same_peers = a.peers.is_empty() || b.peers.is_empty() || !a.peers.is_disjoint(&b.peers);
    same_routes && same_peers && nodes_overlap(&a.node_selectors, &b.node_selectors, nodes)
}

/// Whether some node is selected by both lists (empty lists select every node). With the
/// nodes unknown, whether the selectors could select a common node.
fn nodes_overlap(a: &[Selector], b: &[Selector], nodes: Option<&[Node]>) -> bool {
    let selects = |list: &[Selector], labels: &BTreeMap<String, String>| {
        list.is_empty() || list.iter().any(|s| s.matches(labels))
    };
    match nodes {
        Some(nodes) => nodes
            .iter()
            .any(|node| selects(a, node.labels()) && selects(b, node.labels())),
        None => {
            let any = [Selector::default()];
            let a = if a.is_empty() { &any[..] } else { a };
            let b = if b.is_empty() { &any[..] } else { b };
            a.iter().any(|x| b.iter().any(|y| x.may_overlap(y)))
        }
    }
}
