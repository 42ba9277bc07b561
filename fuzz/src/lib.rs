//! The fuzz targets ([`targets`]) and what the libFuzzer binaries measure them with: a counting
//! allocator, so that each step's peak memory is known.

pub mod targets;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The system allocator, counting live bytes and their peak.
pub struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
static BASE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded to the system allocator unchanged; only counters are kept.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
        PEAK.fetch_max(live, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > layout.size() {
            let live = LIVE.fetch_add(new_size - layout.size(), Ordering::Relaxed) + new_size - layout.size();
            PEAK.fetch_max(live, Ordering::Relaxed);
        } else {
            LIVE.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
        }
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

fn reset() {
    let live = LIVE.load(Ordering::Relaxed);
    BASE.store(live, Ordering::Relaxed);
    PEAK.store(live, Ordering::Relaxed);
}

fn peak() -> Option<usize> {
    Some(PEAK.load(Ordering::Relaxed).saturating_sub(BASE.load(Ordering::Relaxed)))
}

/// The probe of the fuzzing binaries: the counting allocator, and time bounds as they are.
pub const PROBE: targets::Probe = targets::Probe { reset, peak, slow: 1.0 };

/// Runs the named target on one input.
pub fn run(name: &str, data: &[u8]) {
    static WARM: std::sync::Once = std::sync::Once::new();
    WARM.call_once(targets::warm_up);
    if let Some((_, target)) = targets::TARGETS.iter().find(|(n, _)| *n == name) {
        target(data, &PROBE);
    }
}
