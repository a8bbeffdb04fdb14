//! TCP sequence-space arithmetic (RFC 9293 §3.4): comparisons modulo 2^32.

#[inline]
pub fn before(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}

#[inline]
pub fn after(a: u32, b: u32) -> bool {
    before(b, a)
}

/// `lo <= x <= hi` in sequence space.
#[inline]
pub fn between(x: u32, lo: u32, hi: u32) -> bool {
    !before(x, lo) && !after(x, hi)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_around() {
        assert!(before(u32::MAX - 5, 3));
        assert!(after(3, u32::MAX - 5));
        assert!(!before(7, 7));
        assert!(between(1, u32::MAX, 2));
    }
}
