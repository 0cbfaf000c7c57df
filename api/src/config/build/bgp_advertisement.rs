//! BGPAdvertisement: aggregation, communities, LOCAL_PREF and their conflicts.
use super::*;

impl Builder<'_> {
    pub(super) fn attach_bgp_advertisements(
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
