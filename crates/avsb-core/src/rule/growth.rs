//! A static bound on the strings a rule makes, checked when the rule compiles.
//!
//! Every subexpression gets an upper bound on the length of its text (for a `String[]`, the bytes
//! and items it holds) as a polynomial in `n`, the length of the longest context value whose
//! length the schema does not bound (Strings, user agents, variables of a permissive schema):
//! `c0 + c1·n + c2·n²`. A variable of another type has a known longest text (an `Integer` 11
//! bytes, a `Double` 24), which goes into `c0`: that is the context's worst case where the schema
//! tells it. Constants have their own length.
//!
//! String functions compose the bounds: `fn:replace(s, b, a)` is at most `|s|·(1 + |a|/|b|)`,
//! `fn:join(fn:split(s, d), sep)` at most `|s|·(1 + |sep|)`, a case mapping `3·|s|`. A function
//! applied to its own results multiplies: the factor compounds with every level of nesting (a
//! geometric growth in the nesting depth), or the power of `n` doubles. A rule is refused
//! (`rule_too_costly`, with the rule and the place) when some subexpression's bound
//!
//! * has a power of `n` above 2 (`fn:replace(x, 'a', fn:replace(x, 'a', x))` is cubic),
//! * multiplies `n` by more than [`MAX_GROWTH_FACTOR`] (ten `fn:replace(…, 'a', 'aa')` deep),
//! * or passes the longest string a rule may make, [`MAX_STRING_BYTES`], already for
//!   one-character context values.
//!
//! What passes may still meet a long context value at evaluation, where the budget stops it
//! (`budget_exceeded` for that test alone).

use super::budget::MAX_STRING_BYTES;
use super::env::RuleDiagnostic;

/// The most a rule may multiply the length of a context value in a string it makes.
pub const MAX_GROWTH_FACTOR: f64 = 4096.0;

/// The code of a rule refused because of what it would cost.
pub const TOO_COSTLY: &str = "rule_too_costly";

/// An upper bound on a text's length: `c[0] + c[1]·n + c[2]·n²` (see the module).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Growth {
    c: [f64; 3],
}

/// A product with a power of `n` above 2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AboveQuadratic;

impl Growth {
    /// A text of at most `bytes` bytes whatever the request.
    pub(crate) fn bytes(bytes: f64) -> Growth {
        Growth { c: [bytes, 0.0, 0.0] }
    }

    /// A context value of unbounded length: `n`.
    pub(crate) const UNBOUNDED: Growth = Growth { c: [0.0, 1.0, 0.0] };

    /// The bound of a number's text (`-2.2250738585072014E-308`).
    pub(crate) const NUMBER: Growth = Growth { c: [24.0, 0.0, 0.0] };

    /// The bound of a boolean's (or a null's, or a `MaybeBool`'s) text.
    pub(crate) const WORD: Growth = Growth { c: [7.0, 0.0, 0.0] };

    pub(crate) fn plus(self, other: Growth) -> Growth {
        Growth { c: [self.c[0] + other.c[0], self.c[1] + other.c[1], self.c[2] + other.c[2]] }
    }

    pub(crate) fn scale(self, k: f64) -> Growth {
        Growth { c: self.c.map(|c| c * k) }
    }

    /// The larger of two bounds, term by term (the branches of `?:`).
    pub(crate) fn max(self, other: Growth) -> Growth {
        Growth { c: [self.c[0].max(other.c[0]), self.c[1].max(other.c[1]), self.c[2].max(other.c[2])] }
    }

    pub(crate) fn times(self, other: Growth) -> Result<Growth, AboveQuadratic> {
        let (a, b) = (self.c, other.c);
        let above = a[1] * b[2] + a[2] * b[1] + a[2] * b[2];
        if above > 0.0 {
            return Err(AboveQuadratic);
        }
        Ok(Growth { c: [a[0] * b[0], a[0] * b[1] + a[1] * b[0], a[0] * b[2] + a[1] * b[1] + a[2] * b[0]] })
    }

    /// The bound for one-character context values.
    fn at_one(self) -> f64 {
        self.c.iter().sum()
    }

    /// The largest factor on a power of `n`: how many times a context value's length (or its
    /// square) the text can reach.
    fn factor(self) -> f64 {
        self.c[1].max(self.c[2])
    }

    /// How the bound grows with `n`, for messages.
    fn describe(self) -> String {
        let mut terms = Vec::new();
        for (power, c) in self.c.iter().enumerate().rev() {
            if *c > 0.0 {
                let c = if *c >= 1e15 { format!("{c:.3e}") } else { format!("{}", c.ceil() as u64) };
                terms.push(match power {
                    0 => c,
                    1 => format!("{c}·n"),
                    _ => format!("{c}·n²"),
                });
            }
        }
        if terms.is_empty() {
            "0".to_string()
        } else {
            terms.join(" + ")
        }
    }
}

/// Refuses a subexpression whose bound breaks one of the module's rules. `what` names it
/// (`fn:replace`), `span` is where it is.
pub(crate) fn check(growth: Growth, what: &str, span: (usize, usize)) -> Result<(), RuleDiagnostic> {
    let refuse = |message: String| Err(RuleDiagnostic { code: TOO_COSTLY, message, span: Some(span) });
    if growth.at_one() > MAX_STRING_BYTES as f64 {
        return refuse(format!(
            "{what} can make a string of up to {} bytes even from one-character context values (string functions \
             nested on their own results multiply the length at each level); a string a rule makes may have at most \
             {MAX_STRING_BYTES} bytes",
            growth.describe(),
        ));
    }
    if growth.factor() > MAX_GROWTH_FACTOR {
        return refuse(format!(
            "{what} can make a string of up to {} bytes from context values of n bytes: a factor above \
             {MAX_GROWTH_FACTOR} (string functions nested on their own results multiply the length at each level of \
             nesting)",
            growth.describe(),
        ));
    }
    Ok(())
}

/// The refusal of a subexpression whose bound has a power of `n` above 2.
pub(crate) fn above_quadratic(what: &str, span: (usize, usize)) -> RuleDiagnostic {
    RuleDiagnostic {
        code: TOO_COSTLY,
        message: format!(
            "{what} can make a string whose length grows with the cube or a higher power of a context value's length \
             (a string function applied to its own results: the power doubles at each level of nesting); a rule may \
             make strings at most quadratic in its context values"
        ),
        span: Some(span),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn products_keep_the_powers_up_to_two() {
        let n = Growth::UNBOUNDED;
        let square = n.times(n.plus(Growth::bytes(1.0))).unwrap();
        assert_eq!(square.c, [0.0, 1.0, 1.0]);
        assert_eq!(square.times(n), Err(AboveQuadratic));
        assert_eq!(Growth::bytes(3.0).times(square).unwrap().c, [0.0, 3.0, 3.0]);
    }

    #[test]
    fn the_checks_name_the_limit() {
        assert!(check(Growth::UNBOUNDED.scale(4000.0), "f", (0, 1)).is_ok());
        let d = check(Growth::UNBOUNDED.scale(5000.0), "fn:replace", (3, 9)).unwrap_err();
        assert_eq!((d.code, d.span), (TOO_COSTLY, Some((3, 9))));
        assert!(d.message.contains("fn:replace") && d.message.contains("4096"), "{}", d.message);
        let d = check(Growth::bytes(1e7), "fn:join", (0, 1)).unwrap_err();
        assert!(d.message.contains(&MAX_STRING_BYTES.to_string()), "{}", d.message);
        // One quadratic step passes (nesting it is what cannot).
        assert!(check(Growth::UNBOUNDED.times(Growth::UNBOUNDED).unwrap(), "f", (0, 1)).is_ok());
    }
}
