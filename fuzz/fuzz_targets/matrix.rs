//! libFuzzer entry point of the `matrix` target (`avsb_fuzz::targets::matrix`).
#![no_main]

#[global_allocator]
static ALLOCATOR: avsb_fuzz::Counting = avsb_fuzz::Counting;

libfuzzer_sys::fuzz_target!(|data: &[u8]| avsb_fuzz::run("matrix", data));
