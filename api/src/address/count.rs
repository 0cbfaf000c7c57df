use std::fmt;
use std::ops::{Add, AddAssign};

/// A number of addresses: up to 2^128 (all of IPv6), which does not fit a `u128`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AddressCount {
    /// Set when the count is 2^128 or more; `low` then holds the rest.
    carry: bool,
    low: u128,
}

impl AddressCount {
    pub const ZERO: AddressCount = AddressCount {
        carry: false,
        low: 0,
    };

    pub fn new(count: u128) -> AddressCount {
        AddressCount {
            carry: false,
            low: count,
        }
    }

    /// The number of addresses from `first` to `last`, both included.
    pub fn span(first: u128, last: u128) -> AddressCount {
        let below = last - first;
        match below.checked_add(1) {
            Some(low) => AddressCount { carry: false, low },
            None => AddressCount {
                carry: true,
                low: 0,
            },
        }
    }

    /// `self - n`, or zero when `n` is larger.
    pub fn saturating_sub(self, n: u128) -> AddressCount {
        match (self.carry, self.low.checked_sub(n)) {
            (_, Some(low)) => AddressCount {
                carry: self.carry,
                low,
            },
            // 2^128 + low - n, with n > low: fits in a u128.
            (true, None) => AddressCount {
                carry: false,
                low: u128::MAX - (n - self.low) + 1,
            },
            (false, None) => AddressCount::ZERO,
        }
    }

    /// The count as an `i64`, as Kubernetes status counters hold it, saturating.
    pub fn saturating_i64(self) -> i64 {
        if self.carry {
            i64::MAX
        } else {
            i64::try_from(self.low).unwrap_or(i64::MAX)
        }
    }

    /// The count as a `u128`, or `None` for 2^128 and above.
    pub fn to_u128(self) -> Option<u128> {
        (!self.carry).then_some(self.low)
    }
}

impl Add for AddressCount {
    type Output = AddressCount;

    /// Saturates past 2^129 - 1, far above any real pool set.
    fn add(self, rhs: AddressCount) -> AddressCount {
        let (low, overflow) = self.low.overflowing_add(rhs.low);
        let carries = u8::from(self.carry) + u8::from(rhs.carry) + u8::from(overflow);
        if carries > 1 {
            AddressCount {
                carry: true,
                low: u128::MAX,
            }
        } else {
            AddressCount {
                carry: carries == 1,
                low,
            }
        }
    }
}

impl AddAssign for AddressCount {
    fn add_assign(&mut self, rhs: AddressCount) {
        *self = *self + rhs;
    }
}

impl fmt::Display for AddressCount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.carry, self.low) {
            (false, low) => write!(f, "{low}"),
            (true, 0) => f.write_str("340282366920938463463374607431768211456"),
            (true, low) => write!(f, "2^128+{low}"),
        }
    }
}
