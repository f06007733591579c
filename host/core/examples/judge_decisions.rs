//! The judge's decisions on synthetic error-ratio series: how often an equal canary is failed (false
//! alarms) and how often a canary with 1%, 2% or 5% added errors is caught, over 100 seeded runs each.
//! BENCHMARKS.md's "Issue 19 — the judge" is this program's output:
//!
//!     cargo run --release -p cutover-core --example judge_decisions
//!
//! The series: one sample per interval, the share of that interval's requests that failed, each
//! request failing independently (a binomial count over the interval's requests divided by them). The
//! baseline fails 0.5% of its requests; the canary the same plus the added errors.

use cutover_core::judge::{JudgeOptions, Outcome, judge};

/// A small seeded generator (xorshift64*): the runs are the same on every machine.
struct Rng(u64);

impl Rng {
    fn next_f64(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }

    fn series(&mut self, intervals: usize, requests: u32, rate: f64) -> Vec<f64> {
        (0..intervals)
            .map(|_| (0..requests).filter(|_| self.next_f64() < rate).count() as f64 / requests as f64)
            .collect()
    }
}

const RUNS: usize = 100;
const BASE_RATE: f64 = 0.005;

fn main() {
    let options = JudgeOptions::default();
    println!("judge defaults: {options:?}; baseline error rate {BASE_RATE}; {RUNS} seeded runs per row");
    println!();
    println!("| series (per side) | canary's added errors | pass | marginal | fail |");
    println!("|---|---|---|---|---|");
    for (intervals, requests) in [(10, 50), (30, 100), (60, 200)] {
        for added in [0.0, 0.01, 0.02, 0.05] {
            let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ ((intervals as u64) << 32) ^ (added * 1e4) as u64);
            let (mut pass, mut marginal, mut fail) = (0, 0, 0);
            for _ in 0..RUNS {
                let baseline = rng.series(intervals, requests, BASE_RATE);
                let canary = rng.series(intervals, requests, BASE_RATE + added);
                match judge(&canary, &baseline, &options).expect("finite series").outcome {
                    Outcome::Pass => pass += 1,
                    Outcome::Marginal => marginal += 1,
                    Outcome::Fail => fail += 1,
                }
            }
            let added =
                if added == 0.0 { "none (equal)".to_string() } else { format!("+{}%", added * 100.0) };
            println!(
                "| {intervals} intervals × {requests} requests | {added} | {pass} | {marginal} | {fail} |"
            );
        }
    }
}
