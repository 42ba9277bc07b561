//! The evaluation budget: what one rule evaluation, and one request's rules together, may cost.
//!
//! EL has no loops, but its string functions can make a string from strings: `fn:replace` of a
//! value with itself squares its length, and nested calls compound, so a rule of a few hundred
//! bytes can ask for gigabytes from a one-letter context value. Every evaluation therefore
//! counts its work in **steps**, about a nanosecond of CPU each: sixteen per operator, call or
//! property read, one or a few per byte or item it reads or writes (the weights below) — and
//! stops with a `budget_exceeded` error, before allocating, at the first of these limits:
//!
//! * a string a rule makes is at most [`MAX_STRING_BYTES`] long, a list it makes (`fn:split`)
//!   has at most [`MAX_COLLECTION_ITEMS`] items;
//! * one evaluation takes at most [`MAX_STEPS_PER_EVALUATION`] steps;
//! * the rules of one request (every test of one `evaluate`, or one test and its parents for
//!   `evaluate_test`) take at most [`MAX_STEPS_PER_REQUEST`] steps together, beyond the first
//!   [`FREE_STEPS_PER_EVALUATION`] of each evaluation: a cheap rule is never stopped because
//!   other tests' rules were expensive.
//!
//! A step costs about a nanosecond of CPU or less (measured on the fuzzing build, see
//! `fuzz/README.md`), and no step allocates more than a byte, so an evaluation costs at most
//! about 1 ms and 1 MB, and a request about 5 ms plus a couple of microseconds per test,
//! whatever the rules and the request say. Real rules are far below: the commonest shapes take a
//! few hundred steps, every rule of `spec/` (Proctor's own tests among them) stays within the free
//! allowance but one, which compiles a pattern taken from the request (about 20,000 steps, 2% of
//! an evaluation's); `tests/budget.rs` holds them to that.
//!
//! The error leaves only its own test unassigned (`Reason::RuleError`, whose message names the
//! limit); compile-time folding of constant subexpressions runs under the same budget and turns
//! an exhausted one into a `rule_too_costly` diagnostic instead of a crash.

use std::cell::Cell;

/// The longest string a rule may make, in bytes (UTF-8).
pub const MAX_STRING_BYTES: usize = 256 * 1024;

/// The most items a list a rule makes (`fn:split`) may have.
pub const MAX_COLLECTION_ITEMS: usize = 16 * 1024;

/// The most steps one rule evaluation may take (about a millisecond of CPU).
pub const MAX_STEPS_PER_EVALUATION: u64 = 1 << 20;

/// The most steps the rules of one request may take together (about five milliseconds).
pub const MAX_STEPS_PER_REQUEST: u64 = 5 << 20;

/// The steps of each evaluation that do not count against the request's limit.
pub const FREE_STEPS_PER_EVALUATION: u64 = 2048;

/// The error code of an exhausted budget.
pub const BUDGET_EXCEEDED: &str = "budget_exceeded";

/// An exhausted budget: what was being done and which limit stopped it (a `budget_exceeded`
/// evaluation error, `RuleError`'s `From`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BudgetExceeded(pub String);

// What operations cost, in steps, as `fuzz/calibrate` measured them on the optimised build
// (`fuzz/README.md`): each weight makes a step of that operation cost about a nanosecond or less.

/// One node of the rule: an operator, a call, a property read (about 15 ns with its operands).
pub(crate) const NODE_STEPS: u64 = 16;

/// An item of a list a rule makes, beyond its bytes: its slot and its own allocation.
pub(crate) const ITEM_STEPS: u64 = 100;

/// A byte read by a case mapping (`toUpperCase`, `containsIgnoreCase`) of text beyond ASCII:
/// about 15 ns a byte for text whose characters change length.
pub(crate) const CASE_MAPPING_STEPS_PER_BYTE: u64 = 15;

/// A byte compared ignoring case (`equalsIgnoreCase`, character by character).
pub(crate) const IGNORE_CASE_STEPS_PER_BYTE: u64 = 2;

/// A byte beyond ASCII ordered as UTF-16 (`<`, `compareTo`), cut as UTF-16 (`substring`), or
/// split on a set of delimiters (`fn:split`).
pub(crate) const UTF16_STEPS_PER_BYTE: u64 = 5;

/// An item of a list searched (`proctor:contains`, `List.contains`).
pub(crate) const CONTAINS_STEPS_PER_ITEM: u64 = 3;

/// A byte of a list or a map printed or compared deeply (`toString`, `equals`, `list == 'text'`).
pub(crate) const DEEP_STEPS_PER_BYTE: u64 = 3;

/// What a request's rules may still spend, and what the current evaluation has spent.
///
/// One budget belongs to one [`EvalEnv`](super::EvalEnv), that is one request; each
/// [`Rule::evaluate`](super::Rule::evaluate) starts a new evaluation against it.
#[derive(Debug)]
pub struct Budget {
    /// Steps taken by the current evaluation.
    evaluation: Cell<u64>,
    /// Steps the request's rules may still take.
    request_left: Cell<u64>,
}

impl Default for Budget {
    fn default() -> Budget {
        Budget::new()
    }
}

impl Budget {
    /// A fresh budget for one request.
    pub fn new() -> Budget {
        Budget { evaluation: Cell::new(0), request_left: Cell::new(MAX_STEPS_PER_REQUEST) }
    }

    /// The steps the current (or last) evaluation took.
    pub fn evaluation_steps(&self) -> u64 {
        self.evaluation.get()
    }

    /// The steps the request's rules may still take.
    pub fn request_steps_left(&self) -> u64 {
        self.request_left.get()
    }

    /// Starts one rule evaluation.
    pub(crate) fn start_evaluation(&self) {
        self.evaluation.set(0);
    }

    /// Takes `steps` steps, or fails when either limit would be passed.
    #[inline]
    pub(crate) fn take(&self, steps: u64) -> Result<(), BudgetExceeded> {
        let before = self.evaluation.get();
        let used = before.saturating_add(steps);
        // The part of these steps past the evaluation's free allowance.
        let drawn = used.saturating_sub(FREE_STEPS_PER_EVALUATION) - before.saturating_sub(FREE_STEPS_PER_EVALUATION);
        let left = self.request_left.get();
        if used <= MAX_STEPS_PER_EVALUATION && drawn <= left {
            self.evaluation.set(used);
            self.request_left.set(left - drawn);
            return Ok(());
        }
        // What was taken stays taken: a rule that ran out does not hand the rest to others.
        self.evaluation.set(used);
        self.request_left.set(left.saturating_sub(drawn));
        if used > MAX_STEPS_PER_EVALUATION {
            Err(exceeded(format!(
                "the rule needs more than {MAX_STEPS_PER_EVALUATION} steps (about a nanosecond each: operators, \
                 calls, bytes and items read or written), the limit of one evaluation"
            )))
        } else {
            Err(exceeded(format!(
                "the rules of this request need more than {MAX_STEPS_PER_REQUEST} steps together, the limit of one \
                 request; this rule was stopped"
            )))
        }
    }

    /// Takes the steps of making a string of `bytes` bytes, after checking its length.
    #[inline]
    pub(crate) fn make_string(&self, what: &str, bytes: usize) -> Result<(), BudgetExceeded> {
        check_string(what, bytes)?;
        self.take(bytes as u64)
    }

    /// Takes the steps of making a list of `items` items holding `bytes` bytes.
    pub(crate) fn make_list(&self, what: &str, items: usize, bytes: usize) -> Result<(), BudgetExceeded> {
        if items > MAX_COLLECTION_ITEMS {
            return Err(exceeded(format!(
                "{what} would make a list of {items} items; a list a rule makes may have at most {MAX_COLLECTION_ITEMS}"
            )));
        }
        self.take((items as u64).saturating_mul(ITEM_STEPS).saturating_add(bytes as u64))
    }
}

/// Fails when a string of `bytes` bytes is longer than a rule may make.
pub(crate) fn check_string(what: &str, bytes: usize) -> Result<(), BudgetExceeded> {
    if bytes > MAX_STRING_BYTES {
        return Err(exceeded(format!(
            "{what} would make a string of {bytes} bytes; a string a rule makes may have at most {MAX_STRING_BYTES}"
        )));
    }
    Ok(())
}

pub(crate) fn exceeded(detail: String) -> BudgetExceeded {
    BudgetExceeded(format!("evaluation budget exceeded: {detail}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_evaluation_stops_at_its_limit_and_the_next_starts_afresh() {
        let budget = Budget::new();
        budget.start_evaluation();
        assert!(budget.take(MAX_STEPS_PER_EVALUATION).is_ok());
        let e = budget.take(1).unwrap_err();
        assert!(e.0.contains(&MAX_STEPS_PER_EVALUATION.to_string()), "{}", e.0);
        budget.start_evaluation();
        assert!(budget.take(10).is_ok());
        assert_eq!(budget.evaluation_steps(), 10);
    }

    #[test]
    fn a_request_stops_at_its_limit_across_evaluations_but_not_cheap_ones() {
        let budget = Budget::new();
        let mut evaluations = 0;
        let e = loop {
            budget.start_evaluation();
            if let Err(e) = budget.take(MAX_STEPS_PER_EVALUATION) {
                break e;
            }
            evaluations += 1;
        };
        assert_eq!(evaluations, MAX_STEPS_PER_REQUEST / (MAX_STEPS_PER_EVALUATION - FREE_STEPS_PER_EVALUATION));
        assert!(e.0.contains(&MAX_STEPS_PER_REQUEST.to_string()), "{}", e.0);
        budget.start_evaluation();
        assert!(budget.take(FREE_STEPS_PER_EVALUATION).is_ok(), "a cheap evaluation still runs");
        assert!(budget.take(1).is_err());
    }

    #[test]
    fn strings_and_lists_are_checked_before_they_are_made() {
        let budget = Budget::new();
        budget.start_evaluation();
        let e = budget.make_string("fn:replace", MAX_STRING_BYTES + 1).unwrap_err();
        assert!(e.0.contains("fn:replace") && e.0.contains(&MAX_STRING_BYTES.to_string()), "{}", e.0);
        assert_eq!(budget.evaluation_steps(), 0, "nothing is taken for a string that is refused");
        let e = budget.make_list("fn:split", MAX_COLLECTION_ITEMS + 1, 0).unwrap_err();
        assert!(e.0.contains(&MAX_COLLECTION_ITEMS.to_string()), "{}", e.0);
        assert!(budget.make_string("fn:replace", MAX_STRING_BYTES).is_ok());
    }
}
