//! Proctor's bucketing, bit-exact (docs/proctor.md §2.3–§2.5): MD5 of salt and identifier,
//! bytes 12..15 as a big-endian `i32`, compared against integer cutoffs computed with Java's
//! `(int)` cast.

use md5::{Digest, Md5};

/// The bytes hashed before the identifier (docs/proctor.md §2.5): the salt itself when it starts
/// with `&` (tests sharing such a salt get identical hashes), else `testName|salt`, where a
/// missing salt is the text `null` as in Java string concatenation.
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

/// The hash values (inclusive bounds, as `i64`) each range of an allocation covers, in range
/// order; a range of zero length covers nothing and is left out.
fn hash_intervals(ranges: &[(i32, f64)]) -> Vec<(i64, i64, i32)> {
    let cuts = cutoffs(ranges.iter().map(|r| r.1));
    let mut out = Vec::with_capacity(ranges.len());
    let mut low = i64::from(i32::MIN);
    for (i, &(bucket, _)) in ranges.iter().enumerate() {
        // A hash falls in the first range whose cutoff is >= the hash (`choose_range`), so a range
        // ends at its cutoff (or at i32::MAX for the last) and starts after everything before it.
        let high = cuts.get(i).map_or(i64::from(i32::MAX), |&c| i64::from(c));
        if high >= low {
            out.push((low, high, bucket));
            low = high + 1;
        }
    }
    out
}

/// How many of the 2^32 hash values each bucket value receives from an allocation's ranges
/// (`(bucket value, length)` pairs), exactly as [`choose_range`] assigns them.
pub fn bucket_hash_counts(ranges: &[(i32, f64)]) -> Vec<(i32, u64)> {
    let mut out: Vec<(i32, u64)> = Vec::new();
    for (low, high, bucket) in hash_intervals(ranges) {
        let count = (high - low + 1) as u64;
        match out.iter_mut().find(|(b, _)| *b == bucket) {
            Some(entry) => entry.1 += count,
            None => out.push((bucket, count)),
        }
    }
    out
}

/// How many of the 2^32 hash values get a different bucket value from `new` ranges than from
/// `old` ones (both `(bucket value, length)` pairs of one allocation, same salt). Exact: it
/// walks the same integer cutoffs that evaluation compares hashes with, so the share of units
/// that change bucket is this count over 2^32 for any set of identifiers hashing uniformly.
pub fn reassigned_hash_count(old: &[(i32, f64)], new: &[(i32, f64)]) -> u64 {
    let (old, new) = (hash_intervals(old), hash_intervals(new));
    let (mut i, mut j, mut moved) = (0, 0, 0u64);
    while i < old.len() && j < new.len() {
        let (a_low, a_high, a_bucket) = old[i];
        let (b_low, b_high, b_bucket) = new[j];
        let low = a_low.max(b_low);
        let high = a_high.min(b_high);
        if high >= low && a_bucket != b_bucket {
            moved += (high - low + 1) as u64;
        }
        if a_high <= b_high {
            i += 1;
        }
        if b_high <= a_high {
            j += 1;
        }
    }
    moved
}

/// The number of hash values: every `i32`.
pub const HASH_SPACE: u64 = 1 << 32;

/// A RANDOM test's walk (docs/proctor.md §2.6): the first range whose running sum exceeds `x`,
/// else the last.
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
    fn reassignment_is_counted_on_the_integer_cutoffs() {
        let half = [(0, 0.5), (1, 0.5)];
        assert_eq!(reassigned_hash_count(&half, &half), 0);
        // 50/50 -> 40/60 moves the 10% between the two boundaries, to the hash value.
        let moved = reassigned_hash_count(&half, &[(0, 0.4), (1, 0.6)]);
        let cuts = (cutoffs([0.5, 0.5])[0], cutoffs([0.4, 0.6])[0]);
        assert_eq!(moved, (i64::from(cuts.0) - i64::from(cuts.1)) as u64);
        assert!((moved as f64 / HASH_SPACE as f64 - 0.1).abs() < 1e-9);
        // Swapping the buckets moves everyone; a zero-length range moves no one.
        assert_eq!(reassigned_hash_count(&half, &[(1, 0.5), (0, 0.5)]), HASH_SPACE);
        assert_eq!(reassigned_hash_count(&half, &[(0, 0.5), (2, 0.0), (1, 0.5)]), 0);
        // Each hash value is counted for exactly one bucket.
        let counts = bucket_hash_counts(&[(0, 0.34), (1, 0.33), (2, 0.33)]);
        assert_eq!(counts.iter().map(|c| c.1).sum::<u64>(), HASH_SPACE);
        assert_eq!(bucket_hash_counts(&[(0, 0.5), (1, 0.0), (0, 0.5)]), vec![(0, HASH_SPACE)]);
    }

    #[test]
    fn reassignment_counts_agree_with_choose_range() {
        // Every hash near each boundary lands where choose_range puts it.
        let old = [(0, 0.25), (1, 0.25), (2, 0.5)];
        let new = [(0, 0.1), (2, 0.3), (1, 0.6)];
        let (old_cuts, new_cuts) = (cutoffs(old.iter().map(|r| r.1)), cutoffs(new.iter().map(|r| r.1)));
        let mut probes: Vec<i64> = vec![i64::from(i32::MIN), i64::from(i32::MAX)];
        for c in old_cuts.iter().chain(&new_cuts) {
            probes.extend([i64::from(*c) - 1, i64::from(*c), i64::from(*c) + 1]);
        }
        probes.sort_unstable();
        probes.dedup();
        let mut moved = 0u64;
        for pair in probes.windows(2) {
            let h = pair[0] as i32;
            // Between two probes the assignment is constant; weigh each by its width.
            if old[choose_range(&old_cuts, h)].0 != new[choose_range(&new_cuts, h)].0 {
                moved += (pair[1] - pair[0]) as u64;
            }
        }
        let last = i32::MAX;
        if old[choose_range(&old_cuts, last)].0 != new[choose_range(&new_cuts, last)].0 {
            moved += 1;
        }
        assert_eq!(reassigned_hash_count(&old, &new), moved);
    }

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
