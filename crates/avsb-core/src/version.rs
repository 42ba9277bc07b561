//! `ReleaseVersion` from indeedeng/util (`com.indeed.util.core.ReleaseVersion`), what
//! `proctor:version` returns.
//!
//! A version is packed into a long (`major << 48 | minor << 32 | patch << 16 | build`) with a
//! match precision. A wildcard version (`1.2.x`) compares only the parts it names, so
//! `1.2.0.1` and `1.2.x` compare equal, and Java's `equals` is `compareTo == 0`.

use std::cmp::Ordering;
use std::fmt;

/// How many parts of a version take part in comparisons (`1.x` is `Major`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MatchPrecision {
    /// `1.x`
    Major,
    /// `1.2.x`
    Minor,
    /// `1.2.3.x`
    Patch,
    /// `1.2.3.4`
    Build,
}

impl MatchPrecision {
    fn parts(self) -> usize {
        match self {
            MatchPrecision::Major => 1,
            MatchPrecision::Minor => 2,
            MatchPrecision::Patch => 3,
            MatchPrecision::Build => 4,
        }
    }

    fn mask(self) -> i64 {
        match self {
            MatchPrecision::Major => 0x7FFF_0000_0000_0000,
            MatchPrecision::Minor => 0x7FFF_FFFF_0000_0000,
            MatchPrecision::Patch => 0x7FFF_FFFF_FFFF_0000,
            MatchPrecision::Build => 0x7FFF_FFFF_FFFF_FFFF,
        }
    }

    fn for_parts(parts: usize) -> MatchPrecision {
        match parts {
            0 | 1 => MatchPrecision::Major,
            2 => MatchPrecision::Minor,
            3 => MatchPrecision::Patch,
            _ => MatchPrecision::Build,
        }
    }
}

/// A release version packed into a long, with a match precision.
///
/// Rust's `PartialEq` is structural; Java's `equals` (which EL's `==` uses) is
/// [`ReleaseVersion::java_equals`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ReleaseVersion {
    packed: i64,
    precision: MatchPrecision,
}

/// Why `ReleaseVersion.fromString` rejected a string.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct VersionParseError(pub String);

const MAX_MAJOR: i32 = 32767;
const MAX_OTHER: i32 = 65535;

impl ReleaseVersion {
    /// A fully qualified version; `None` if a part is out of range.
    pub fn new(major: i32, minor: i32, patch: i32, build: i32) -> Option<ReleaseVersion> {
        let ok = (0..=MAX_MAJOR).contains(&major)
            && [minor, patch, build].iter().all(|p| (0..=MAX_OTHER).contains(p));
        ok.then(|| ReleaseVersion::pack([major, minor, patch, build], MatchPrecision::Build))
    }

    fn pack(parts: [i32; 4], precision: MatchPrecision) -> ReleaseVersion {
        let [a, b, c, d] = parts.map(i64::from);
        ReleaseVersion { packed: (a << 48) | (b << 32) | (c << 16) | d, precision }
    }

    /// `ReleaseVersion.fromString`: four numeric parts, or fewer ending in the wildcard `x`.
    ///
    /// Like Java's `String.split("\\.")`, trailing empty parts are dropped, and parts after the
    /// fourth are ignored.
    pub fn parse(text: &str) -> Result<ReleaseVersion, VersionParseError> {
        // Java's split drops trailing empty strings, which are exactly the trailing dots.
        let trimmed = text.trim_end_matches('.');
        let (numbers, precision) = match trimmed.rsplit_once('.') {
            Some((rest, "x")) => {
                (rest, MatchPrecision::for_parts(rest.split('.').count().min(4)))
            }
            None if trimmed == "x" => {
                return Err(VersionParseError(format!("Invalid version string: {text}")));
            }
            _ if trimmed.is_empty() || trimmed.split('.').count() < 4 => {
                return Err(VersionParseError(format!(
                    "ReleaseVersion string must have 4 numbers or end in x: {text}"
                )));
            }
            _ => (trimmed, MatchPrecision::Build),
        };
        let mut values = [0i32; 4];
        for (i, part) in numbers.split('.').take(4).enumerate() {
            let n = crate::java::parse_int(part)
                .map_err(|_| VersionParseError(format!("For input string: \"{part}\"")))?;
            let max = if i == 0 { MAX_MAJOR } else { MAX_OTHER };
            if !(0..=max).contains(&n) {
                let what = ["major version", "minor version", "patch version", "build number"][i];
                return Err(VersionParseError(format!("invalid {what} {n}")));
            }
            values[i] = n;
        }
        Ok(ReleaseVersion::pack(values, precision))
    }

    /// The match precision.
    pub fn precision(&self) -> MatchPrecision {
        self.precision
    }

    /// The packed long.
    pub fn packed(&self) -> i64 {
        self.packed
    }

    /// `compareTo`: both sides masked to the lower of the two precisions.
    pub fn java_compare(&self, other: &ReleaseVersion) -> Ordering {
        let precision = MatchPrecision::for_parts(self.precision.parts().min(other.precision.parts()));
        let mask = precision.mask();
        (self.packed & mask).cmp(&(other.packed & mask))
    }

    /// Java's `equals`, which is `compareTo(other) == 0`.
    pub fn java_equals(&self, other: &ReleaseVersion) -> bool {
        self.java_compare(other) == Ordering::Equal
    }
}

impl fmt::Display for ReleaseVersion {
    /// Java's `toString`: `1.2.3.4`, or `1.2.x` for a wildcard.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let major = (self.packed >> 48) & 0x7FFF;
        let minor = (self.packed >> 32) & 0xFFFF;
        let patch = (self.packed >> 16) & 0xFFFF;
        let build = self.packed & 0xFFFF;
        match self.precision {
            MatchPrecision::Major => write!(f, "{major}.x"),
            MatchPrecision::Minor => write!(f, "{major}.{minor}.x"),
            MatchPrecision::Patch => write!(f, "{major}.{minor}.{patch}.x"),
            MatchPrecision::Build => write!(f, "{major}.{minor}.{patch}.{build}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> ReleaseVersion {
        ReleaseVersion::parse(s).unwrap()
    }

    #[test]
    fn parses_strictly() {
        assert_eq!(v("1.2.3.4").to_string(), "1.2.3.4");
        assert_eq!(v("1.2.x").to_string(), "1.2.x");
        assert_eq!(v("1.x").to_string(), "1.x");
        assert_eq!(v("1.2.3.x").to_string(), "1.2.3.x");
        assert_eq!(v("1.2.3.4.5").to_string(), "1.2.3.4");
        assert_eq!(v("1.2.3.4.x").to_string(), "1.2.3.4");
        assert_eq!(v("1.2.3.4.").to_string(), "1.2.3.4");
        assert_eq!(v("+1.2.3.4").to_string(), "1.2.3.4");
        assert_eq!(v("32767.65535.65535.65535").to_string(), "32767.65535.65535.65535");
        for bad in ["", "x", "1", "1.2", "1.2.3", "1.2.3.a", "1..2.3", "32768.0.0.0", "1.65536.0.0", "-1.0.0.0", "1.X", " 1.2.3.4", "..."] {
            assert!(ReleaseVersion::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn compares_with_wildcards() {
        assert_eq!(v("1.2.0.1").java_compare(&v("1.2.x")), Ordering::Equal);
        assert_eq!(v("1.0.0.0").java_compare(&v("1.1.x")), Ordering::Less);
        assert_eq!(v("1.0.x").java_compare(&v("1.0.0.x")), Ordering::Equal);
        assert!(v("1.2.0.1").java_equals(&v("1.2.x")));
        assert_ne!(v("1.2.0.1"), v("1.2.x"));
        assert_eq!(v("2.0.0.0").java_compare(&v("10.0.0.0")), Ordering::Less);
    }
}
