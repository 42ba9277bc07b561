//! Proctor's bucketing, bit-exact (§2.3–§2.5): MD5 of salt and identifier, bytes 12..15 as a
//! big-endian `i32`, compared against integer cutoffs computed with Java's `(int)` cast.

use md5::{Digest, Md5};

/// The bytes hashed before the identifier (§2.5): the salt itself when it starts with `&`
/// (tests sharing such a salt get identical hashes), else `testName|salt`, where a missing
/// salt is the text `null` as in Java string concatenation.
pub fn salt_prefix(test_name: &str, salt: Option<&str>) -> Vec<u8> {
    match salt {
        Some(s) if s.starts_with('&') => s.as_bytes().to_vec(),
        Some(s) => format!("{test_name}|{s}").into_bytes(),
        None => format!("{test_name}|null").into_bytes(),
    }
}

/// The MD5 digest of `prefix ‖ identifier`.
pub fn digest(prefix: &[u8], identifier: &str) -> [u8; 16] {
    let mut md5 = Md5::new();
    md5.update(prefix);
    md5.update(identifier.as_bytes());
    md5.finalize().into()
}

/// The signed 32-bit hash Proctor compares with cutoffs: digest bytes 12..15, big-endian.
pub fn hash(prefix: &[u8], identifier: &str) -> i32 {
    #[cfg(target_arch = "x86_64")]
    if let Some(h) = one_block_hash(prefix, identifier.as_bytes()) {
        return h;
    }
    let d = digest(prefix, identifier);
    i32::from_be_bytes([d[12], d[13], d[14], d[15]])
}

/// MD5 of a message short enough for one block (at most 55 bytes, as almost every salt and
/// identifier pair is), padded by hand and compressed once. `None` for longer messages.
#[cfg(target_arch = "x86_64")]
fn one_block_hash(prefix: &[u8], identifier: &[u8]) -> Option<i32> {
    let len = prefix.len() + identifier.len();
    if len > 55 {
        return None;
    }
    let mut block = [0u8; 64];
    block[..prefix.len()].copy_from_slice(prefix);
    block[prefix.len()..len].copy_from_slice(identifier);
    block[len] = 0x80;
    block[56..].copy_from_slice(&(len as u64 * 8).to_le_bytes());
    let mut state = [0x6745_2301u32, 0xefcd_ab89, 0x98ba_dcfe, 0x1032_5476];
    md5_asm::compress(&mut state, &[block]);
    // The digest is the state words little-endian; bytes 12..15 are the last word's.
    Some(i32::from_be_bytes(state[3].to_le_bytes()))
}

/// `Proctor.INT_RANGE`: `(long) Integer.MAX_VALUE - (long) Integer.MIN_VALUE`.
const INT_RANGE: f64 = 4_294_967_295.0;

/// The `n - 1` inclusive upper bounds of `n` ranges, summing lengths in order in `f64` and
/// casting like Java's `(int)` (truncation toward zero, saturating; Rust's `as` does the same).
pub fn cutoffs(lengths: impl IntoIterator<Item = f64>) -> Vec<i32> {
    let lengths: Vec<f64> = lengths.into_iter().collect();
    let mut total = 0.0f64;
    let mut out = Vec::with_capacity(lengths.len().saturating_sub(1));
    for (i, length) in lengths.iter().enumerate() {
        total += length;
        if i + 1 < lengths.len() {
            out.push((f64::from(i32::MIN) + total * INT_RANGE) as i32);
        }
    }
    out
}

/// The index of the range a hash falls in: the first whose cutoff is `>= hash`, else the last.
pub fn choose_range(cutoffs: &[i32], hash: i32) -> usize {
    cutoffs.iter().position(|&c| hash <= c).unwrap_or(cutoffs.len())
}

/// A RANDOM test's walk (§2.6): the first range whose running sum exceeds `x`, else the last.
pub fn choose_random_range(lengths: &[f64], x: f64) -> usize {
    let mut cumulative = 0.0;
    for (i, length) in lengths.iter().enumerate() {
        cumulative += length;
        if x < cumulative {
            return i;
        }
    }
    lengths.len().saturating_sub(1)
}

/// A uniform number in [0, 1) for the `index`-th RANDOM test from the caller's random seed
/// (splitmix64), so one caller-drawn number serves every RANDOM test of a request.
pub fn random_unit(seed: u64, index: usize) -> f64 {
    let mut z = seed.wrapping_add((index as u64).wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cutoffs_match_the_reference_examples() {
        assert_eq!(cutoffs([0.0, 0.5, 0.5]), [-2147483648, 0]);
        assert_eq!(cutoffs([0.25; 4]), [-1073741824, 0, 1073741823]);
        assert_eq!(cutoffs([0.3333333333; 3]), [-715827883, 715827881]);
        // Over 1 within tolerance: later cutoffs saturate at i32::MAX.
        assert_eq!(cutoffs([0.5, 0.50005, 0.0])[1], i32::MAX);
        assert_eq!(cutoffs([f64::NAN, 1.0]), [0]);
    }

    #[test]
    fn a_hash_on_a_cutoff_stays_in_that_range() {
        let c = [-2147483648, 0];
        assert_eq!(choose_range(&c, i32::MIN), 0);
        assert_eq!(choose_range(&c, i32::MIN + 1), 1);
        assert_eq!(choose_range(&c, 0), 1);
        assert_eq!(choose_range(&c, 1), 2);
        assert_eq!(choose_range(&[], 12345), 0);
    }

    #[test]
    fn the_one_block_path_matches_the_streaming_digest_at_every_length() {
        for len in 0..80 {
            let id: String = (0..len).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
            let d = digest(b"t|s", &id);
            assert_eq!(hash(b"t|s", &id), i32::from_be_bytes([d[12], d[13], d[14], d[15]]), "length {len}");
        }
    }

    #[test]
    fn salts() {
        assert_eq!(salt_prefix("t", Some("&s")), b"&s");
        assert_eq!(salt_prefix("t", Some("s")), b"t|s");
        assert_eq!(salt_prefix("t", None), b"t|null");
        assert_eq!(salt_prefix("t", Some("")), b"t|");
        assert_eq!(hash(b"testName|testName", "1"), -516411852);
    }

    #[test]
    fn random_units_are_in_range_and_differ_per_test() {
        let xs: Vec<f64> = (0..100).map(|i| random_unit(42, i)).collect();
        assert!(xs.iter().all(|x| (0.0..1.0).contains(x)));
        assert_ne!(random_unit(42, 0), random_unit(42, 1));
        assert_eq!(choose_random_range(&[0.2, 0.8], 0.1), 0);
        assert_eq!(choose_random_range(&[0.2, 0.8], 0.2), 1);
        assert_eq!(choose_random_range(&[0.2, 0.7], 0.95), 1);
    }
}
