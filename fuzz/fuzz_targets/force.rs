//! libFuzzer entry point of the `force` target (`avsb_fuzz::targets::force`).
#![no_main]

#[global_allocator]
static ALLOCATOR: avsb_fuzz::Counting = avsb_fuzz::Counting;

libfuzzer_sys::fuzz_target!(|data: &[u8]| avsb_fuzz::run("force", data));
