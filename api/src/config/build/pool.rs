//! IPAddressPool: address ranges, overlaps, and the selectors advertisements use to pick pools.
use super::*;

impl Builder<'_> {
    pub(super) fn pools(&mut self) -> BTreeMap<String, Pool> {
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
    pub(super) fn selected_pools(
        &mut self,
        kind: Kind,
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
}
