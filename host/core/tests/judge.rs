//! The judge's properties over random samples: equal distributions rarely fail, clearly shifted ones
//! always do, swapping canary and baseline mirrors the verdict, and the samples' order never matters.

use cutover_core::judge::{Direction, JudgeOptions, Outcome, Verdict, judge};
use proptest::prelude::*;

/// A small seeded generator (xorshift64*), so each proptest case draws many series reproducibly.
struct Rng(u64);

impl Rng {
    fn next_f64(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }

    /// An error ratio per interval: `requests` requests each failing with probability `rate`.
    fn error_ratio(&mut self, requests: u32, rate: f64) -> f64 {
        (0..requests).filter(|_| self.next_f64() < rate).count() as f64 / requests as f64
    }
}

/// Samples with ties as well as without: some values on a coarse grid.
fn samples() -> impl Strategy<Value = Vec<f64>> {
    prop::collection::vec(prop_oneof![0.0f64..100.0, (0u32..20).prop_map(|x| x as f64)], 1..60)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Two releases with the same error rate: over 200 pairs of 30-interval series the judge fails the
    /// canary far less often than 5% of the time (at 98% confidence, one side bad, the nominal rate is
    /// 1%; 10 failures of 200 has a probability below 1e-4 at that rate).
    #[test]
    fn equal_distributions_rarely_fail(seed in 1u64.., rate in 0.0f64..0.2, requests in 20u32..300) {
        let mut rng = Rng(seed);
        let mut fails = 0;
        for _ in 0..200 {
            let canary: Vec<f64> = (0..30).map(|_| rng.error_ratio(requests, rate)).collect();
            let baseline: Vec<f64> = (0..30).map(|_| rng.error_ratio(requests, rate)).collect();
            if judge(&canary, &baseline, &JudgeOptions::default()).unwrap().outcome == Outcome::Fail {
                fails += 1;
            }
        }
        prop_assert!(fails <= 10, "{fails} false alarms of 200 at rate {rate}, {requests} requests per interval");
    }

    /// A canary shifted up by five times the baseline's whole range fails, in the bad direction only.
    #[test]
    fn shifted_distributions_fail(baseline in samples(), canary_n in 8usize..60, seed in 1u64..) {
        let lo = baseline.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = baseline.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let shift = 5.0 * (hi - lo).max(1.0);
        prop_assume!(baseline.len() >= 8);
        let mut rng = Rng(seed);
        let canary: Vec<f64> = (0..canary_n).map(|_| lo + rng.next_f64() * (hi - lo) + shift).collect();
        let up = judge(&canary, &baseline, &JudgeOptions::default()).unwrap();
        prop_assert_eq!(up.outcome, Outcome::Fail, "{:?}", up);
        prop_assert!(up.effect_size > 0.0);
        let down = JudgeOptions { direction: Direction::Decrease, ..JudgeOptions::default() };
        prop_assert_eq!(judge(&canary, &baseline, &down).unwrap().outcome, Outcome::Pass);
    }

    /// Swapping canary and baseline and the bad direction gives the same outcome and p-value, and the
    /// shift and its interval mirrored, bit for bit.
    #[test]
    fn symmetric(a in samples(), b in samples(), tolerance in 0.0f64..1.0) {
        let up = JudgeOptions { tolerance, ..JudgeOptions::default() };
        let down = JudgeOptions { direction: Direction::Decrease, ..up };
        let ab = judge(&a, &b, &up).unwrap();
        let ba = judge(&b, &a, &down).unwrap();
        prop_assert_eq!(ab.outcome, ba.outcome);
        prop_assert_eq!(ab.p_value, ba.p_value);
        prop_assert_eq!(ab.effect_size, -ba.effect_size);
        prop_assert_eq!((ab.ci_low, ab.ci_high), (-ba.ci_high, -ba.ci_low));
        prop_assert_eq!(ab.u + ba.u, (a.len() * b.len()) as f64);
        let either = JudgeOptions { direction: Direction::Either, ..up };
        prop_assert_eq!(judge(&a, &b, &either).unwrap().outcome, judge(&b, &a, &either).unwrap().outcome);
    }

    /// The samples' order is not information: reversed and rotated, the verdict is identical.
    #[test]
    fn invariant_to_order(a in samples(), b in samples(), turn in 0usize..60) {
        let options = JudgeOptions::default();
        let verdict: Verdict = judge(&a, &b, &options).unwrap();
        let mut a2 = a.clone();
        a2.reverse();
        let mut b2 = b.clone();
        let turn_b = turn % b2.len();
        b2.rotate_left(turn_b);
        prop_assert_eq!(verdict, judge(&a2, &b2, &options).unwrap());
    }
}
