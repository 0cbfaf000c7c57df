//! The free addresses of one pool in one family, as disjoint intervals: taking the lowest free
//! address, a given address, or giving one back are all O(log n).
//!
//! With `avoidBuggyIPs`, IPv4 addresses ending in `.0` and `.255` are left out by working in an
//! *index space* that skips them: index `i` is the `i`-th usable address, 254 per /24. No
//! per-address work is needed even for a pool of millions of addresses.
use ferrolb_api::address::{AddressCount, AddressRange, Family, offset};
use std::collections::BTreeMap;
use std::net::IpAddr;

#[derive(Clone, Debug)]
pub struct FreeSpace {
    family: Family,
    skip_buggy: bool,
    /// Free intervals of indexes, start → end (inclusive).
    free: BTreeMap<u128, u128>,
    capacity: AddressCount,
    used: u128,
}

impl FreeSpace {
    /// The space of `ranges` (all of `family`), everything free.
    pub fn new(family: Family, ranges: &[AddressRange], avoid_buggy_ips: bool) -> FreeSpace {
        let skip_buggy = avoid_buggy_ips && family == Family::V4;
        let mut space = FreeSpace {
            family,
            skip_buggy,
            free: BTreeMap::new(),
            capacity: AddressCount::ZERO,
            used: 0,
        };
        for range in ranges.iter().filter(|r| r.family() == family) {
            let (first, last) = range.offsets();
            let (first, last) = if skip_buggy {
                match (first_usable(first), last_usable(last)) {
                    (Some(f), Some(l)) if f <= l => (usable_index(f), usable_index(l)),
                    _ => continue,
                }
            } else {
                (first, last)
            };
            space.capacity += AddressCount::span(first, last);
            space.free.insert(first, last);
        }
        space
    }

    pub fn capacity(&self) -> AddressCount {
        self.capacity
    }

    pub fn used(&self) -> u128 {
        self.used
    }

    pub fn available(&self) -> AddressCount {
        self.capacity.saturating_sub(self.used)
    }

    /// The index of `ip` in this space, if the space can ever hold it.
    fn index(&self, ip: &IpAddr) -> Option<u128> {
        if Family::of(ip) != self.family {
            return None;
        }
        let raw = offset(ip);
        if self.skip_buggy {
            is_usable(raw).then(|| usable_index(raw))
        } else {
            Some(raw)
        }
    }

    fn address(&self, index: u128) -> IpAddr {
        self.family.ip(if self.skip_buggy {
            usable_address(index)
        } else {
            index
        })
    }

    /// Whether `ip` is free now.
    pub fn is_free(&self, ip: &IpAddr) -> bool {
        self.index(ip).is_some_and(|i| {
            self.free
                .range(..=i)
                .next_back()
                .is_some_and(|(_, end)| *end >= i)
        })
    }

    /// Takes the lowest free address.
    pub fn take_lowest(&mut self) -> Option<IpAddr> {
        let (&start, &end) = self.free.iter().next()?;
        self.free.remove(&start);
        if start < end {
            self.free.insert(start + 1, end);
        }
        self.used += 1;
        Some(self.address(start))
    }

    /// Takes `ip` if it is free.
    pub fn take(&mut self, ip: &IpAddr) -> bool {
        let Some(index) = self.index(ip) else {
            return false;
        };
        let Some((&start, &end)) = self.free.range(..=index).next_back() else {
            return false;
        };
        if end < index {
            return false;
        }
        self.free.remove(&start);
        if start < index {
            self.free.insert(start, index - 1);
        }
        if index < end {
            self.free.insert(index + 1, end);
        }
        self.used += 1;
        true
    }

    /// Gives `ip` back. The caller only gives back what it took from this space; giving back
    /// a free address is ignored.
    pub fn give_back(&mut self, ip: &IpAddr) {
        let Some(index) = self.index(ip) else { return };
        if self.used == 0 || self.is_free(ip) {
            return;
        }
        let mut start = index;
        let mut end = index;
        if let Some((&prev_start, &prev_end)) = self.free.range(..index).next_back()
            && prev_end.checked_add(1) == Some(index)
        {
            self.free.remove(&prev_start);
            start = prev_start;
        }
        if let Some(next_end) = index
            .checked_add(1)
            .and_then(|next| self.free.remove(&next))
        {
            end = next_end;
        }
        self.free.insert(start, end);
        self.used -= 1;
    }
}

fn is_usable(raw: u128) -> bool {
    !matches!(raw & 0xff, 0 | 255)
}

fn usable_index(raw: u128) -> u128 {
    (raw >> 8) * 254 + (raw & 0xff) - 1
}

fn usable_address(index: u128) -> u128 {
    (index / 254) << 8 | (index % 254 + 1)
}

fn first_usable(raw: u128) -> Option<u128> {
    match raw & 0xff {
        0 => raw.checked_add(1),
        255 => raw.checked_add(2),
        _ => Some(raw),
    }
}

fn last_usable(raw: u128) -> Option<u128> {
    match raw & 0xff {
        255 => raw.checked_sub(1),
        0 => raw.checked_sub(2),
        _ => Some(raw),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn space(ranges: &[&str], avoid: bool) -> FreeSpace {
        let ranges: Vec<AddressRange> = ranges
            .iter()
            .map(|r| AddressRange::parse(r).unwrap())
            .collect();
        FreeSpace::new(ranges[0].family(), &ranges, avoid)
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn takes_lowest_first_and_reuses_given_back_addresses() {
        let mut s = space(&["198.51.100.0/30"], false);
        assert_eq!(s.capacity(), AddressCount::new(4));
        assert_eq!(s.take_lowest(), Some(ip("198.51.100.0")));
        assert_eq!(s.take_lowest(), Some(ip("198.51.100.1")));
        s.give_back(&ip("198.51.100.0"));
        assert_eq!(s.take_lowest(), Some(ip("198.51.100.0")));
        assert!(s.take(&ip("198.51.100.3")));
        assert!(!s.take(&ip("198.51.100.3")));
        assert_eq!(s.take_lowest(), Some(ip("198.51.100.2")));
        assert_eq!(s.take_lowest(), None);
        assert_eq!(s.available(), AddressCount::ZERO);
    }

    #[test]
    fn avoids_buggy_ips() {
        let mut s = space(&["198.51.100.254-198.51.101.1"], true);
        assert_eq!(s.capacity(), AddressCount::new(2));
        assert!(!s.take(&ip("198.51.100.255")));
        assert_eq!(s.take_lowest(), Some(ip("198.51.100.254")));
        assert_eq!(s.take_lowest(), Some(ip("198.51.101.1")));
        assert_eq!(s.take_lowest(), None);
        let s = space(&["198.51.100.0/24"], true);
        assert_eq!(s.capacity(), AddressCount::new(254));
        // IPv6 has no buggy addresses.
        assert_eq!(
            space(&["2001:db8::/120"], true).capacity(),
            AddressCount::new(256)
        );
    }

    #[test]
    fn handles_the_ends_of_the_address_space() {
        let mut s = space(&["::/0"], false);
        assert_eq!(s.capacity().to_u128(), None);
        assert!(s.take(&ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")));
        assert_eq!(s.take_lowest(), Some(ip("::")));
        s.give_back(&ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"));
        s.give_back(&ip("::"));
        assert_eq!(s.used(), 0);
        assert!(s.is_free(&ip("::1")));
    }
}
