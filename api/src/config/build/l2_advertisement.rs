//! L2Advertisement: which pools are announced by layer 2, from which nodes and interfaces.
use super::*;

impl Builder<'_> {
    pub(super) fn attach_l2_advertisements(&mut self, pools: &mut BTreeMap<String, Pool>) {
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
}
