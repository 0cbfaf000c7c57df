//! The allocator: which Service holds which IPs. Pure and deterministic: no I/O, no clock,
//! no randomness; every choice is the lowest address of the first eligible pool by name.
//!
//! Costs: taking or freeing an address is O(log n) in the pool's free intervals, so filling
//! a pool of n addresses costs O(n log n) (MetalLB scans each pool first-fit: O(n^2)).
mod free_space;
mod request;

#[cfg(test)]
mod tests;

pub use free_space::FreeSpace;
pub use request::{FamilyPolicy, Request, ServiceKey, Sharing};

use ferrolb_api::address::{AddressCount, Family};
use ferrolb_api::config::{Config, Pool};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

/// The IPs a Service holds and the pool they come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assignment {
    /// Shared with the pool's other assignments: one allocation per pool, not per Service.
    pub pool: Arc<str>,
    /// In the order of the Service's families (primary first).
    pub ips: Vec<IpAddr>,
}

/// Why a Service got no IP. The text is what the `AllocationFailed` Event says.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AllocationError {
    #[error("pool {0:?} does not exist")]
    UnknownPool(String),
    #[error("{ip} is not in any pool")]
    NotInAnyPool { ip: IpAddr },
    #[error("{ip} is not in pool {pool:?}")]
    NotInPool { ip: IpAddr, pool: String },
    #[error("{ip} is skipped by pool {pool:?}, which avoids buggy IPs")]
    BuggyIp { ip: IpAddr, pool: String },
    #[error("{ip} is already in use by {holder} and cannot be shared with it")]
    InUse { ip: IpAddr, holder: String },
    #[error("requested IPs {ips:?} do not match the Service's IP families ({families})")]
    WrongFamilies { ips: Vec<IpAddr>, families: String },
    #[error("requested IPs {0:?} are not all in the same pool")]
    SplitAcrossPools(Vec<IpAddr>),
    #[error("no available IPs{0}")]
    NoAvailableIps(String),
    /// MetalLB's rule: a requested IP or pool is given only if the pool's serviceAllocation
    /// selects the Service.
    #[error("pool {0:?} does not serve this Service (its serviceAllocation does not select it)")]
    NotSelectedByPool(String),
    /// MetalLB's rule: a Service with two cluster IPs that asks for IPs asks for one of each
    /// family.
    #[error(
        "requested IPs {ips:?} do not match the Service's IP families ({families}): a dual-stack Service requests one IP of each family"
    )]
    DualStackRequestNotDual { ips: Vec<IpAddr>, families: String },
}

/// What happened to a Service's assignment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The Service keeps what it had.
    Kept(Assignment),
    /// New or changed IPs.
    Assigned(Assignment),
}

struct PoolState {
    name: Arc<str>,
    pool: Pool,
    v4: FreeSpace,
    v6: FreeSpace,
}

impl PoolState {
    fn new(pool: &Pool) -> PoolState {
        PoolState {
            name: pool.name.as_str().into(),
            v4: FreeSpace::new(Family::V4, &pool.ranges, pool.avoid_buggy_ips),
            v6: FreeSpace::new(Family::V6, &pool.ranges, pool.avoid_buggy_ips),
            pool: pool.clone(),
        }
    }

    fn space(&mut self, family: Family) -> &mut FreeSpace {
        match family {
            Family::V4 => &mut self.v4,
            Family::V6 => &mut self.v6,
        }
    }

    fn has_family(&self, family: Family) -> bool {
        match family {
            Family::V4 => self.v4.capacity() != AddressCount::ZERO,
            Family::V6 => self.v6.capacity() != AddressCount::ZERO,
        }
    }
}

/// The Services holding one IP, with what each shares it under. Almost always one Service:
/// a Vec of one costs far less than a map.
struct Holders {
    pool: Arc<str>,
    services: Vec<(ServiceKey, Option<Sharing>)>,
}

impl Holders {
    fn get(&self, key: &ServiceKey) -> Option<&Option<Sharing>> {
        self.services.iter().find(|(k, _)| k == key).map(|(_, s)| s)
    }

    fn remove(&mut self, key: &ServiceKey) -> Option<Option<Sharing>> {
        let index = self.services.iter().position(|(k, _)| k == key)?;
        Some(self.services.swap_remove(index).1)
    }

    fn insert(&mut self, key: &ServiceKey, sharing: Option<Sharing>) {
        match self.services.iter_mut().find(|(k, _)| k == key) {
            Some(entry) => entry.1 = sharing,
            None => self.services.push((key.clone(), sharing)),
        }
    }
}

/// Usage of a pool, for status counters and metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolUsage {
    pub capacity_v4: AddressCount,
    pub in_use_v4: u128,
    pub capacity_v6: AddressCount,
    pub in_use_v6: u128,
    /// Services holding IPs of the pool.
    pub services: u64,
}

#[derive(Default)]
pub struct Allocator {
    pools: BTreeMap<String, PoolState>,
    assignments: HashMap<ServiceKey, Assignment>,
    holders: HashMap<IpAddr, Holders>,
    /// IPs held under each sharing key, to find a shareable IP without scanning.
    by_sharing_key: HashMap<String, BTreeSet<IpAddr>>,
}

impl Allocator {
    pub fn new(config: &Config) -> Allocator {
        let mut allocator = Allocator::default();
        allocator.set_config(config);
        allocator
    }

    /// Switches to a new set of pools. Assignments whose IPs all remain in their pool are kept;
    /// so are orphans, whose IPs are in no pool any more (a pool deleted, or a pool file empty
    /// for a moment while it is rewritten): their Services keep their IPs until they go, and
    /// nobody else is given them, also if the pool comes back. The others are dropped and
    /// their Services returned, to be allocated again.
    pub fn set_config(&mut self, config: &Config) -> Vec<ServiceKey> {
        self.pools = config
            .pools
            .values()
            .map(|p| (p.name.clone(), PoolState::new(p)))
            .collect();
        let holders = std::mem::take(&mut self.holders);
        self.by_sharing_key.clear();
        let mut lost = Vec::new();
        let mut assignments: Vec<(ServiceKey, Assignment)> = self.assignments.drain().collect();
        assignments.sort_by(|a, b| a.0.cmp(&b.0));
        for (key, assignment) in assignments {
            let still_valid = self.pools.get(&*assignment.pool).is_some_and(|state| {
                assignment
                    .ips
                    .iter()
                    .all(|ip| state.pool.contains(ip) && usable_in(state, ip))
            });
            if !still_valid && !self.is_orphan(&assignment) {
                lost.push(key);
                continue;
            }
            for ip in &assignment.ips {
                let sharing = holders.get(ip).and_then(|h| h.get(&key).cloned()).flatten();
                self.hold(ip, &assignment.pool, &key, sharing);
            }
            self.assignments.insert(key, assignment);
        }
        lost
    }

    pub fn assignment(&self, key: &ServiceKey) -> Option<&Assignment> {
        self.assignments.get(key)
    }

    pub fn assignments(&self) -> impl Iterator<Item = (&ServiceKey, &Assignment)> {
        self.assignments.iter()
    }

    /// Every pool's usage with its Service count, in one pass over the assignments.
    pub fn usages(&self) -> BTreeMap<String, PoolUsage> {
        let mut usages: BTreeMap<String, PoolUsage> = self
            .pools
            .iter()
            .map(|(name, s)| {
                let usage = PoolUsage {
                    capacity_v4: s.v4.capacity(),
                    in_use_v4: s.v4.used(),
                    capacity_v6: s.v6.capacity(),
                    in_use_v6: s.v6.used(),
                    services: 0,
                };
                (name.clone(), usage)
            })
            .collect();
        for assignment in self.assignments.values() {
            if let Some(usage) = usages.get_mut(&*assignment.pool) {
                usage.services += 1;
            }
        }
        usages
    }

    /// Frees a Service's IPs (those no other Service shares).
    pub fn release(&mut self, key: &ServiceKey) {
        let Some(assignment) = self.assignments.remove(key) else {
            return;
        };
        for ip in &assignment.ips {
            let Some(holders) = self.holders.get_mut(ip) else {
                continue;
            };
            if let Some(Some(sharing)) = holders.remove(key)
                && !holders
                    .services
                    .iter()
                    .filter_map(|(_, s)| s.as_ref())
                    .any(|s| s.key == sharing.key)
                && let Some(ips) = self.by_sharing_key.get_mut(&sharing.key)
            {
                ips.remove(ip);
            }
            if holders.services.is_empty() {
                let pool = holders.pool.clone();
                self.holders.remove(ip);
                if let Some(state) = self.pools.get_mut(&*pool) {
                    state.space(Family::of(ip)).give_back(ip);
                }
            }
        }
    }

    /// Keeps the IPs a Service holds (in memory, or `current` from its status after a
    /// restart, from `current_pool` per its annotation) when they still fit its request;
    /// `None` when they do not, with nothing held.
    pub fn keep(
        &mut self,
        request: &Request,
        current: &[IpAddr],
        current_pool: Option<&str>,
    ) -> Option<Outcome> {
        let existing = self.assignments.get(&request.key).cloned().or_else(|| {
            // After a restart while their pool is gone: the status still says where they
            // came from, and they stay held as orphans.
            let pool = current_pool?;
            let orphan = Assignment {
                pool: pool.into(),
                ips: current.to_vec(),
            };
            (!current.is_empty() && self.is_orphan(&orphan)).then(|| {
                for ip in current {
                    self.hold(ip, pool, &request.key, request.sharing.clone());
                }
                self.assignments.insert(request.key.clone(), orphan.clone());
                orphan
            })
        });
        if let Some(orphan) = existing.as_ref().filter(|a| self.is_orphan(a)) {
            // Held as they are while the Service asks for nothing else: there is no pool to
            // check them against or move them in.
            // The Services sharing its IPs must still allow it (its sharing key may have
            // changed); then they are held under the new sharing.
            let same_pool = request.pool.as_ref().is_none_or(|p| **p == *orphan.pool);
            let shareable = orphan
                .ips
                .iter()
                .all(|ip| self.check_available(request, ip).is_ok());
            if same_pool && shareable && self.fits(request, &orphan.ips) {
                for ip in &orphan.ips {
                    self.hold(ip, &orphan.pool, &request.key, request.sharing.clone());
                }
                return Some(Outcome::Kept(orphan.clone()));
            }
            self.release(&request.key);
            return None;
        }
        let candidate = existing
            .as_ref()
            .map(|a| a.ips.clone())
            .unwrap_or_else(|| current.to_vec());
        self.release(&request.key);
        if candidate.is_empty() || !self.fits(request, &candidate) {
            return None;
        }
        let mut assignment = self.claim(request, &candidate).ok()?;
        let kept = existing.as_ref().is_none_or(|e| *e == assignment);
        if self.add_missing_family(request, &mut assignment) || !kept {
            Some(Outcome::Assigned(assignment))
        } else {
            Some(Outcome::Kept(assignment))
        }
    }

    /// Keeps a Service's IPs when they still fit ([`Allocator::keep`]), otherwise gives it new
    /// ones.
    pub fn ensure(
        &mut self,
        request: &Request,
        current: &[IpAddr],
        current_pool: Option<&str>,
    ) -> Result<Outcome, AllocationError> {
        if let Some(outcome) = self.keep(request, current, current_pool) {
            return Ok(outcome);
        }
        self.allocate(request).map(Outcome::Assigned)
    }

    /// Holds `ips` for a Service whose request cannot be read (a broken annotation), so no one
    /// else gets them meanwhile; nothing is shared. Returns whether they could be held.
    pub fn reserve(&mut self, key: &ServiceKey, ips: &[IpAddr]) -> bool {
        if self.assignments.contains_key(key) {
            return true;
        }
        let request = Request::reservation(key, ips);
        self.claim_in_any_pool(&request, ips).is_ok()
    }

    /// Whether IPs a Service holds still match what it asks for (families, requested IPs).
    fn fits(&self, request: &Request, ips: &[IpAddr]) -> bool {
        let families: BTreeSet<Family> = ips.iter().map(Family::of).collect();
        if families.len() != ips.len() || !families.iter().all(|f| request.families().contains(f)) {
            return false;
        }
        if request.policy == FamilyPolicy::RequireDualStack && families.len() < 2 {
            return false;
        }
        if request.policy != FamilyPolicy::PreferDualStack && !families.contains(&request.primary) {
            return false;
        }
        if !request.requested_ips.is_empty() {
            let requested: BTreeSet<&IpAddr> = request.requested_ips.iter().collect();
            return requested == ips.iter().collect();
        }
        true
    }

    /// A PreferDualStack Service whose pool now has its other family gets an address of it.
    fn add_missing_family(&mut self, request: &Request, assignment: &mut Assignment) -> bool {
        if request.policy != FamilyPolicy::PreferDualStack || !request.requested_ips.is_empty() {
            return false;
        }
        let held: BTreeSet<Family> = assignment.ips.iter().map(Family::of).collect();
        let Some(missing) = request.families().into_iter().find(|f| !held.contains(f)) else {
            return false;
        };
        let Some(ip) = self.take_in_pool(request, &assignment.pool, missing) else {
            return false;
        };
        self.hold(
            &ip,
            &assignment.pool.clone(),
            &request.key,
            request.sharing.clone(),
        );
        assignment.ips.push(ip);
        assignment
            .ips
            .sort_by_key(|ip| Family::of(ip) != request.primary);
        self.assignments
            .insert(request.key.clone(), assignment.clone());
        true
    }

    /// Gives a Service exactly `ips`, which must be free or shareable with it, in a pool that
    /// serves it.
    pub fn claim(
        &mut self,
        request: &Request,
        ips: &[IpAddr],
    ) -> Result<Assignment, AllocationError> {
        let assignment = self.claim_in_any_pool(request, ips)?;
        if !self.serves(&assignment.pool, request) {
            self.release(&request.key);
            return Err(AllocationError::NotSelectedByPool(
                assignment.pool.to_string(),
            ));
        }
        Ok(assignment)
    }

    /// Whether a pool's serviceAllocation (if any) selects the Service.
    fn serves(&self, pool: &str, request: &Request) -> bool {
        self.pools
            .get(pool)
            .and_then(|state| state.pool.allocation.as_ref())
            .is_none_or(|allocation| request.matches(allocation))
    }

    /// [`Allocator::claim`] whatever the pool's serviceAllocation says: for holding the IPs of
    /// a Service whose request cannot be read.
    fn claim_in_any_pool(
        &mut self,
        request: &Request,
        ips: &[IpAddr],
    ) -> Result<Assignment, AllocationError> {
        let mut pool_name: Option<String> = None;
        for ip in ips {
            let pool = match &request.pool {
                Some(name) => {
                    let state = self
                        .pools
                        .get(name)
                        .ok_or_else(|| AllocationError::UnknownPool(name.clone()))?;
                    if !state.pool.contains(ip) {
                        return Err(AllocationError::NotInPool {
                            ip: *ip,
                            pool: name.clone(),
                        });
                    }
                    name.clone()
                }
                None => self
                    .pool_of(ip)
                    .ok_or(AllocationError::NotInAnyPool { ip: *ip })?,
            };
            if pool_name.as_ref().is_some_and(|p| *p != pool) {
                return Err(AllocationError::SplitAcrossPools(ips.to_vec()));
            }
            if !usable_in(&self.pools[&pool], ip) {
                return Err(AllocationError::BuggyIp { ip: *ip, pool });
            }
            self.check_available(request, ip)?;
            pool_name = Some(pool);
        }
        let pool = pool_name.ok_or_else(|| AllocationError::NoAvailableIps(String::new()))?;
        for ip in ips {
            self.hold(ip, &pool, &request.key, request.sharing.clone());
        }
        let assignment = Assignment {
            pool: self.pools[&pool].name.clone(),
            ips: ips.to_vec(),
        };
        self.assignments
            .insert(request.key.clone(), assignment.clone());
        Ok(assignment)
    }

    /// Allocates for a Service that holds nothing: its requested IPs, or the lowest free
    /// addresses of the first pool (in MetalLB's order) that has all the families it needs.
    pub fn allocate(&mut self, request: &Request) -> Result<Assignment, AllocationError> {
        let families = request.families();
        if !request.requested_ips.is_empty() {
            if !self.fits(request, &request.requested_ips) {
                return Err(AllocationError::WrongFamilies {
                    ips: request.requested_ips.clone(),
                    families: request.describe_families(),
                });
            }
            if request.policy == FamilyPolicy::PreferDualStack
                && request.requested_ips.len() < families.len()
            {
                return Err(AllocationError::DualStackRequestNotDual {
                    ips: request.requested_ips.clone(),
                    families: request.describe_families(),
                });
            }
            return self.claim(request, &request.requested_ips);
        }
        let groups: Vec<Vec<Arc<str>>> = match &request.pool {
            Some(name) => match self.pools.get(name) {
                Some(_) if !self.serves(name, request) => {
                    return Err(AllocationError::NotSelectedByPool(name.clone()));
                }
                Some(state) => vec![vec![state.name.clone()]],
                None => return Err(AllocationError::UnknownPool(name.clone())),
            },
            None => self.pool_groups(request).into(),
        };
        // A PreferDualStack Service with two cluster IPs looks, in each group, for a pool
        // with both families first, then one with its primary family, then the other: as
        // MetalLB does. A named pool gives what it has.
        let dual_preference = request.policy == FamilyPolicy::PreferDualStack
            && families.len() == 2
            && request.pool.is_none();
        let passes: Vec<Vec<Family>> = if dual_preference {
            vec![families.clone(), vec![families[0]], vec![families[1]]]
        } else {
            vec![Vec::new()]
        };
        for group in &groups {
            for pass in &passes {
                for pool in group {
                    if let Some(assignment) = self.allocate_in(request, pool, pass) {
                        return Ok(assignment);
                    }
                }
            }
        }
        let candidates: Vec<&Arc<str>> = groups.iter().flatten().collect();
        let detail = if candidates.is_empty() {
            ": no pool serves this Service".to_string()
        } else {
            format!(" in pools {candidates:?}")
        };
        Err(AllocationError::NoAvailableIps(detail))
    }

    /// Pools for automatic allocation, in MetalLB's order, as its two groups: those whose
    /// serviceAllocation selects the Service by priority (lower first, unset last), then the
    /// other autoAssign pools; ties broken by name.
    fn pool_groups(&self, request: &Request) -> [Vec<Arc<str>>; 2] {
        let mut selected: Vec<(i64, &Arc<str>)> = Vec::new();
        let mut general: Vec<Arc<str>> = Vec::new();
        for state in self.pools.values().filter(|s| s.pool.auto_assign) {
            match &state.pool.allocation {
                Some(allocation) => {
                    if request.matches(allocation) {
                        let priority = if allocation.priority == 0 {
                            i64::MAX
                        } else {
                            i64::from(allocation.priority)
                        };
                        selected.push((priority, &state.name));
                    }
                }
                None => general.push(state.name.clone()),
            }
        }
        selected.sort();
        [
            selected.into_iter().map(|(_, n)| n.clone()).collect(),
            general,
        ]
    }

    /// The Service's families from `pool`, or exactly `only` when not empty (all of them
    /// or nothing).
    fn allocate_in(
        &mut self,
        request: &Request,
        pool: &str,
        only: &[Family],
    ) -> Option<Assignment> {
        let state = self.pools.get(pool)?;
        let name = state.name.clone();
        let wanted: Vec<Family> = match request.policy {
            _ if !only.is_empty() => {
                if !only.iter().all(|f| state.has_family(*f)) {
                    return None;
                }
                only.to_vec()
            }
            FamilyPolicy::PreferDualStack => request
                .families()
                .into_iter()
                .filter(|f| state.has_family(*f))
                .collect(),
            _ => request.families(),
        };
        // A full pool is skipped without touching anything (unless the Service may share an
        // address already held): filling pools in order stays O(pools) per Service.
        let full = |f: &Family| match f {
            Family::V4 => state.v4.available() == AddressCount::ZERO,
            Family::V6 => state.v6.available() == AddressCount::ZERO,
        };
        if wanted.is_empty() || (request.sharing.is_none() && wanted.iter().any(full)) {
            return None;
        }
        let mut ips = Vec::new();
        for family in wanted {
            match self.take_in_pool(request, pool, family) {
                Some(ip) => {
                    self.hold(&ip, pool, &request.key, request.sharing.clone());
                    ips.push(ip);
                }
                None => {
                    // Undo what this pool gave before trying the next one.
                    self.assignments
                        .insert(request.key.clone(), Assignment { pool: name, ips });
                    self.release(&request.key);
                    return None;
                }
            }
        }
        let assignment = Assignment { pool: name, ips };
        self.assignments
            .insert(request.key.clone(), assignment.clone());
        Some(assignment)
    }

    /// An address of `family` in `pool` for the Service: one it may share, else the lowest free.
    /// Free addresses are taken from the pool here; shared ones are already held.
    fn take_in_pool(&mut self, request: &Request, pool: &str, family: Family) -> Option<IpAddr> {
        if let Some(sharing) = &request.sharing
            && let Some(ips) = self.by_sharing_key.get(&sharing.key)
        {
            let shareable = ips.iter().copied().find(|ip| {
                Family::of(ip) == family
                    && self.holders.get(ip).is_some_and(|h| &*h.pool == pool)
                    && self.check_available(request, ip).is_ok()
            });
            if shareable.is_some() {
                return shareable;
            }
        }
        self.pools.get_mut(pool)?.space(family).take_lowest()
    }

    /// Ok when `ip` is free, or held only by Services it can be shared with.
    fn check_available(&self, request: &Request, ip: &IpAddr) -> Result<(), AllocationError> {
        let Some(holders) = self.holders.get(ip) else {
            return Ok(());
        };
        for (other, sharing) in &holders.services {
            if *other == request.key {
                continue;
            }
            let compatible = match (&request.sharing, sharing) {
                (Some(mine), Some(theirs)) => mine.compatible_with(theirs),
                _ => false,
            };
            if !compatible {
                return Err(AllocationError::InUse {
                    ip: *ip,
                    holder: other.to_string(),
                });
            }
        }
        Ok(())
    }

    fn hold(&mut self, ip: &IpAddr, pool: &str, key: &ServiceKey, sharing: Option<Sharing>) {
        if let Some(sharing) = &sharing {
            self.by_sharing_key
                .entry(sharing.key.clone())
                .or_default()
                .insert(*ip);
        }
        if let Some(holders) = self.holders.get_mut(ip) {
            holders.insert(key, sharing);
            return;
        }
        let pool: Arc<str> = match self.pools.get_mut(pool) {
            Some(state) => {
                // Reserve the address in the pool's free space (a no-op if it was just taken).
                state.space(Family::of(ip)).take(ip);
                state.name.clone()
            }
            // An orphan's IP: held, in no pool's free space.
            None => pool.into(),
        };
        self.holders.insert(
            *ip,
            Holders {
                pool,
                services: vec![(key.clone(), sharing)],
            },
        );
    }

    /// Whether an assignment's pool is gone and no pool holds any of its IPs now.
    fn is_orphan(&self, assignment: &Assignment) -> bool {
        !self.pools.contains_key(&*assignment.pool)
            && assignment.ips.iter().all(|ip| self.pool_of(ip).is_none())
    }

    fn pool_of(&self, ip: &IpAddr) -> Option<String> {
        self.pools
            .values()
            .find(|s| s.pool.contains(ip))
            .map(|s| s.pool.name.clone())
    }
}

/// Whether a pool may hand out `ip` (avoidBuggyIPs excludes `.0` and `.255`).
fn usable_in(state: &PoolState, ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) if state.pool.avoid_buggy_ips => !matches!(v4.octets()[3], 0 | 255),
        _ => true,
    }
}

impl fmt::Display for Assignment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ips: Vec<String> = self.ips.iter().map(ToString::to_string).collect();
        write!(f, "{} from pool {}", ips.join(","), self.pool)
    }
}
