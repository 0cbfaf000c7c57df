//! One copy of each namespace and node name, however many records and keys name it.
use std::collections::HashSet;
use std::sync::{Arc, Mutex};

/// One copy of each namespace and node name, however many records name it: a cluster has
/// few of them, and a record's own copy was an allocation (32 bytes with the allocator's
/// share) for 7 bytes of `default`. Names nothing holds any more (a deleted namespace, a
/// node scaled away) are dropped whenever the set has doubled since the last look, so it
/// stays within twice what is in use.
pub fn shared_name(name: &str) -> Arc<str> {
    let mut guard = NAMES
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let names = &mut *guard;
    let set = names.set.get_or_insert_with(HashSet::new);
    if let Some(shared) = set.get(name) {
        return shared.clone();
    }
    if set.len() >= names.look_at {
        set.retain(|n| Arc::strong_count(n) > 1);
        names.look_at = (2 * set.len()).max(MIN_LOOK_AT);
    }
    let shared: Arc<str> = name.into();
    set.insert(shared.clone());
    shared
}

/// How many names are kept now.
#[cfg(test)]
pub(crate) fn count() -> usize {
    let names = NAMES
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    names.set.as_ref().map_or(0, HashSet::len)
}

static NAMES: Mutex<Names> = Mutex::new(Names {
    set: None,
    look_at: MIN_LOOK_AT,
});

/// Below this many names, none are dropped.
const MIN_LOOK_AT: usize = 64;

struct Names {
    set: Option<HashSet<Arc<str>>>,
    /// The size at which names nothing holds are dropped.
    look_at: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Shared names nothing holds any more are dropped: churning namespaces or nodes do not
    /// grow the set without bound.
    #[test]
    fn shared_names_nothing_holds_are_dropped() {
        let kept = shared_name("kept-namespace");
        for i in 0..10_000 {
            drop(shared_name(&format!("gone-{i}")));
        }
        // Other tests in this process may hold a few dozen names of their own.
        assert!(count() < 1_000, "{} names kept", count());
        assert!(Arc::ptr_eq(&kept, &shared_name("kept-namespace")));
    }
}
