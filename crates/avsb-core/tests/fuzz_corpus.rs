//! Replays the fuzzers' saved corpora (`fuzz/corpus/<target>/`, found by `scripts/fuzz` and its
//! regressions) through the very target functions libFuzzer runs (`fuzz/src/targets.rs`), on the
//! stable toolchain, as part of `cargo test -p avsb-core`: every input must run without a panic,
//! within the targets' time bounds (scaled for an unoptimised build) and, where this process can
//! measure it (its peak resident memory, reset through `/proc/self/clear_refs`), within their
//! memory bounds.

#[allow(dead_code)]
#[path = "../../../fuzz/src/targets.rs"]
mod targets;

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

static BASE_KB: AtomicUsize = AtomicUsize::new(0);

/// A `/proc/self/status` field in kilobytes.
fn status_kb(field: &str) -> Option<usize> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line[field.len()..].trim().trim_end_matches("kB").trim().parse().ok()
}

/// Resets the peak resident set size to the current one (Linux: `echo 5 > clear_refs`).
fn reset() {
    if std::fs::write("/proc/self/clear_refs", "5").is_ok() {
        BASE_KB.store(status_kb("VmRSS:").unwrap_or(usize::MAX), Ordering::Relaxed);
    } else {
        BASE_KB.store(usize::MAX, Ordering::Relaxed);
    }
}

fn peak() -> Option<usize> {
    let base = BASE_KB.load(Ordering::Relaxed);
    if base == usize::MAX {
        return None;
    }
    Some(status_kb("VmHWM:")?.saturating_sub(base) * 1024)
}

/// The unoptimised build is slower than the fuzzing build, and the tests of the other binaries
/// share the machine.
const PROBE: targets::Probe = targets::Probe { reset, peak, slow: 40.0 };

/// One test for all targets, so that no other test of this binary shares the process's memory
/// measurement.
#[test]
fn every_saved_fuzz_input_runs_within_its_bounds() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus");
    targets::warm_up();
    let mut total = 0;
    for (name, target) in targets::TARGETS {
        let files = targets::corpus_files(&root.join(name));
        assert!(!files.is_empty(), "fuzz/corpus/{name} is empty: run scripts/fuzz {name} and scripts/fuzz save {name}");
        for (file, data) in &files {
            let outcome = std::panic::catch_unwind(|| target(data, &PROBE));
            assert!(outcome.is_ok(), "fuzz/corpus/{name}/{file} failed (see the panic above)");
        }
        println!("fuzz/corpus/{name}: {} inputs", files.len());
        total += files.len();
    }
    println!("{total} saved fuzz inputs replayed");
}
