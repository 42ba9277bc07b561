//! W4 in a fresh process: `w4_load write PATH` writes the 10,000-test matrix; `w4_load load PATH`
//! compiles it and prints the time taken and the resident memory before and after.

use std::time::Instant;

#[path = "../benches/workloads.rs"]
mod workloads;

fn rss_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field).and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok()))
        .unwrap_or(0)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    match (args.get(1).map(String::as_str), args.get(2)) {
        (Some("write"), Some(path)) => std::fs::write(path, workloads::matrix(10_000))?,
        (Some("load"), Some(path)) => {
            let before = rss_kib("VmRSS:");
            let start = Instant::now();
            let text = std::fs::read_to_string(path)?;
            let compiled = avsb_core::CompiledMatrix::compile_json(&text, &workloads::schema())?;
            drop(text);
            let elapsed = start.elapsed();
            println!(
                "tests={} dropped={} load_ms={:.1} rss_before_mib={:.1} rss_after_mib={:.1} peak_rss_mib={:.1}",
                compiled.matrix.len(),
                compiled.dropped_tests().len(),
                elapsed.as_secs_f64() * 1e3,
                before as f64 / 1024.0,
                rss_kib("VmRSS:") as f64 / 1024.0,
                rss_kib("VmHWM:") as f64 / 1024.0,
            );
        }
        _ => return Err("usage: w4_load write PATH | w4_load load PATH".into()),
    }
    Ok(())
}
