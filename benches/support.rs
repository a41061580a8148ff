//! A minimal timing harness: runs a closure in batches and reports the median time per call.

use std::hint::black_box;
use std::time::Instant;

/// Times `f` and prints `name: N ns/op` (median of 15 batches, after a warm-up batch).
pub fn bench<T>(name: &str, mut f: impl FnMut() -> T) {
    let batch = calibrate(&mut f);
    let mut per_op: Vec<f64> = (0..16)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..batch {
                black_box(f());
            }
            start.elapsed().as_nanos() as f64 / batch as f64
        })
        .skip(1)
        .collect();
    per_op.sort_by(f64::total_cmp);
    println!("{name:<48} {:>10.1} ns/op", per_op[per_op.len() / 2]);
}

/// A batch size that takes about 20 ms.
fn calibrate<T>(f: &mut impl FnMut() -> T) -> u64 {
    let mut batch = 1u64;
    loop {
        let start = Instant::now();
        for _ in 0..batch {
            black_box(f());
        }
        if start.elapsed().as_millis() >= 20 || batch >= 1 << 30 {
            return batch;
        }
        batch *= 2;
    }
}
