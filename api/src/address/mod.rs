//! Pool addresses: `a.b.c.d/n` CIDRs and `first-last` ranges, IPv4 or IPv6.
//!
//! Every address is mapped to a `u128` (IPv4 in the low 32 bits) so ranges, sizes and
//! overlaps are plain integer arithmetic with no per-address work.
mod count;

pub use count::AddressCount;

use ipnet::IpNet;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The address family of an IP, a range or a pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    pub fn of(ip: &IpAddr) -> Family {
        match ip {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }

    /// Bits in an address of this family.
    pub fn bits(self) -> u8 {
        match self {
            Family::V4 => 32,
            Family::V6 => 128,
        }
    }

    /// The address at `offset` in this family's space.
    pub fn ip(self, offset: u128) -> IpAddr {
        match self {
            // Offsets of an IPv4 range never exceed u32::MAX.
            Family::V4 => IpAddr::V4(Ipv4Addr::from(offset as u32)),
            Family::V6 => IpAddr::V6(Ipv6Addr::from(offset)),
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Family::V4 => "IPv4",
            Family::V6 => "IPv6",
        })
    }
}

/// An address as an integer in its family's space.
pub fn offset(ip: &IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(u32::from(*v4)),
        IpAddr::V6(v6) => u128::from(*v6),
    }
}

/// A contiguous, non-empty run of addresses of one family, both ends included.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AddressRange {
    family: Family,
    first: u128,
    last: u128,
}

/// Why a pool address entry was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    #[error("invalid CIDR {0:?}")]
    InvalidCidr(String),
    #[error("invalid IP range {range:?}: invalid start IP {start:?}")]
    InvalidStart { range: String, start: String },
    #[error("invalid IP range {range:?}: invalid end IP {end:?}")]
    InvalidEnd { range: String, end: String },
    #[error("invalid IP range {range:?}: start IP {start} is after the end IP {end}")]
    StartAfterEnd {
        range: String,
        start: IpAddr,
        end: IpAddr,
    },
    #[error("invalid IP range {range:?}: start {start} and end {end} are not of the same family")]
    MixedFamilies {
        range: String,
        start: IpAddr,
        end: IpAddr,
    },
}

impl AddressRange {
    /// The range from `first` to `last`; `None` when they differ in family or are out of order.
    pub fn new(first: IpAddr, last: IpAddr) -> Option<AddressRange> {
        let family = Family::of(&first);
        (family == Family::of(&last) && offset(&first) <= offset(&last)).then(|| AddressRange {
            family,
            first: offset(&first),
            last: offset(&last),
        })
    }

    /// Parses a pool entry as MetalLB does: a CIDR (masked to its network, no whitespace
    /// allowed) or `first-last` split at the first `-`, each side trimmed.
    pub fn parse(entry: &str) -> Result<AddressRange, AddressError> {
        let Some((start, end)) = entry.split_once('-') else {
            let net: IpNet = entry
                .parse()
                .map_err(|_| AddressError::InvalidCidr(entry.to_string()))?;
            return Ok(AddressRange::from(net));
        };
        let first: IpAddr = start
            .trim()
            .parse()
            .map_err(|_| AddressError::InvalidStart {
                range: entry.to_string(),
                start: start.to_string(),
            })?;
        let last: IpAddr = end.trim().parse().map_err(|_| AddressError::InvalidEnd {
            range: entry.to_string(),
            end: end.to_string(),
        })?;
        if Family::of(&first) != Family::of(&last) {
            return Err(AddressError::MixedFamilies {
                range: entry.to_string(),
                start: first,
                end: last,
            });
        }
        AddressRange::new(first, last).ok_or(AddressError::StartAfterEnd {
            range: entry.to_string(),
            start: first,
            end: last,
        })
    }

    pub fn family(&self) -> Family {
        self.family
    }

    pub fn first(&self) -> IpAddr {
        self.family.ip(self.first)
    }

    pub fn last(&self) -> IpAddr {
        self.family.ip(self.last)
    }

    /// First and last address as integers of the family's space.
    pub fn offsets(&self) -> (u128, u128) {
        (self.first, self.last)
    }

    pub fn contains(&self, ip: &IpAddr) -> bool {
        Family::of(ip) == self.family && (self.first..=self.last).contains(&offset(ip))
    }

    pub fn overlaps(&self, other: &AddressRange) -> bool {
        self.family == other.family && self.first <= other.last && other.first <= self.last
    }

    /// How many addresses the range holds (2^128 for `::/0`, without overflow).
    pub fn len(&self) -> AddressCount {
        AddressCount::span(self.first, self.last)
    }

    /// Always false: a range holds at least one address.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The fewest CIDRs that cover exactly this range, in address order.
    pub fn cidrs(&self) -> Vec<IpNet> {
        let bits = u32::from(self.family.bits());
        let mut out = Vec::new();
        let mut start = self.first;
        loop {
            // The largest aligned block starting at `start` that stays inside the range.
            let align = if start == 0 {
                bits
            } else {
                start.trailing_zeros().min(bits)
            };
            let mut size_log2 = align;
            while size_log2 > 0 && !block_fits(start, size_log2, self.last) {
                size_log2 -= 1;
            }
            let prefix = (bits - size_log2) as u8;
            let net = IpNet::new(self.family.ip(start), prefix)
                .expect("prefix is at most the family's bit count");
            out.push(net);
            let block_last = start + (low_mask(size_log2));
            if block_last >= self.last {
                return out;
            }
            start = block_last + 1;
        }
    }

    /// The shortest prefix length among the CIDRs covering this range: an aggregation length
    /// below it would announce addresses outside the range.
    pub fn widest_prefix(&self) -> u8 {
        self.cidrs()
            .iter()
            .map(IpNet::prefix_len)
            .min()
            .unwrap_or(self.family.bits())
    }
}

/// `2^bits - 1` without overflow for 128 bits.
fn low_mask(bits: u32) -> u128 {
    if bits >= 128 {
        u128::MAX
    } else {
        (1u128 << bits) - 1
    }
}

fn block_fits(start: u128, size_log2: u32, last: u128) -> bool {
    start
        .checked_add(low_mask(size_log2))
        .is_some_and(|block_last| block_last <= last)
}

impl From<IpNet> for AddressRange {
    fn from(net: IpNet) -> Self {
        let net = net.trunc();
        let family = Family::of(&net.network());
        AddressRange {
            family,
            first: offset(&net.network()),
            last: offset(&net.broadcast()),
        }
    }
}

impl fmt::Display for AddressRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.cidrs().as_slice() {
            [single] => write!(f, "{single}"),
            _ => write!(f, "{}-{}", self.first(), self.last()),
        }
    }
}

#[cfg(test)]
mod tests;
