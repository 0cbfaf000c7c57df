//! Incarnation numbers are 32 bits on the wire and only ever grow; a forged or very old claim
//! can sit at the top of the range. They are compared as serial numbers (RFC 1982), so the
//! number after `u32::MAX` is still newer and a member can always refute a claim about itself.
//! Ordinary incarnations (small numbers) compare exactly as memberlist compares them.

/// Whether incarnation `a` is newer than `b`.
pub fn is_newer(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) > 0
}

/// Whether incarnation `a` is `b` or newer.
pub fn at_least(a: u32, b: u32) -> bool {
    a == b || is_newer(a, b)
}

/// The incarnation after `a`. It skips 0, which memberlist ignores for members it does not
/// know yet.
pub fn next(a: u32) -> u32 {
    match a.wrapping_add(1) {
        0 => 1,
        n => n,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_numbers_compare_as_integers() {
        assert!(is_newer(2, 1));
        assert!(!is_newer(1, 2));
        assert!(!is_newer(5, 5));
        assert!(at_least(5, 5));
        assert!(!at_least(0, 1));
    }

    #[test]
    fn the_number_after_the_top_of_the_range_is_newer() {
        assert_eq!(next(u32::MAX), 1);
        assert!(is_newer(next(u32::MAX), u32::MAX));
        assert!(is_newer(u32::MAX, u32::MAX - 1));
        // A claim half the range away is older, so a forged jump cannot win for ever.
        assert!(!is_newer(1u32.wrapping_add(1 << 31), 1));
    }
}
