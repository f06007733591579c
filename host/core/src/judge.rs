//! The statistical judge: canary samples against baseline samples, as Kayenta's Mann–Whitney classifier
//! does it. A fixed threshold ("error ratio below 1%") either fires on noise or misses a real regression
//! depending on traffic; a rank test asks instead whether the canary's values are drawn from a worse
//! distribution than the baseline's, and the Hodges–Lehmann estimate says by how much.
//!
//! The test is two-sided Mann–Whitney U with the normal approximation, corrected for ties and for
//! continuity (what Apache Commons Math, and so Kayenta, computes). The effect size is the
//! Hodges–Lehmann estimate of the shift: the median of every difference `canary[i] - baseline[j]`, in
//! the metric's own unit (a shift of 0.02 on an error ratio is two percentage points).
//!
//! Defaults ([`JudgeOptions::default`]): 98% confidence (Kayenta's), harm is an *increase* (error
//! ratios, latency), and no tolerance: any significant increase fails.

use serde::{Deserialize, Serialize};

/// The most values a side may hold: the effect size looks at every pair, so the work is the product
/// of the two lengths (2 000 × 2 000 pairs take a few milliseconds).
pub const MAX_JUDGE_VALUES: usize = 2_000;

/// Which way a metric gets worse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Harm {
    /// Higher is worse (error ratios, latency).
    Increase,
    /// Lower is worse (throughput, success ratios).
    Decrease,
    /// A significant shift either way is harm.
    Either,
}

/// How to judge one metric.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct JudgeOptions {
    /// Confidence in (0, 1): a difference is significant when the p-value is below `1 - confidence`.
    pub confidence: f64,
    /// Which way of shifting is harm; a significant shift the other way passes.
    pub harm: Harm,
    /// The shift (in the metric's unit) tolerated: a significant harmful shift no larger than this is
    /// `marginal`, not `fail`.
    pub tolerance: f64,
}

impl Default for JudgeOptions {
    fn default() -> Self {
        Self { confidence: 0.98, harm: Harm::Increase, tolerance: 0.0 }
    }
}

/// The judge's decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// No significant harmful difference.
    Pass,
    /// A significant harmful difference within the tolerance.
    Marginal,
    /// A significant harmful difference beyond the tolerance.
    Fail,
}

/// A decision with the numbers behind it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Judgment {
    /// Pass, marginal or fail.
    pub verdict: Verdict,
    /// The two-sided p-value of the Mann–Whitney U test.
    pub p_value: f64,
    /// The Hodges–Lehmann estimate of canary minus baseline, in the metric's unit.
    pub effect_size: f64,
}

/// Judge `canary` against `baseline`. `Err` says which input is unusable (empty, too long, not finite,
/// options out of range).
pub fn judge(canary: &[f64], baseline: &[f64], options: &JudgeOptions) -> Result<Judgment, String> {
    for (name, side) in [("canary", canary), ("baseline", baseline)] {
        if side.is_empty() {
            return Err(format!("the {name} samples are empty; the judge needs at least one value each"));
        }
        if side.len() > MAX_JUDGE_VALUES {
            return Err(format!("{} {name} values; the judge takes at most {MAX_JUDGE_VALUES}", side.len()));
        }
        if let Some(v) = side.iter().find(|v| !v.is_finite()) {
            return Err(format!("the {name} samples hold {v}; every value must be a finite number"));
        }
    }
    if !(options.confidence > 0.0 && options.confidence < 1.0) {
        return Err(format!("confidence {} is outside (0, 1)", options.confidence));
    }
    if !(options.tolerance.is_finite() && options.tolerance >= 0.0) {
        return Err(format!("tolerance {} must be a finite number >= 0", options.tolerance));
    }
    let p_value = mann_whitney_p(canary, baseline);
    let effect_size = hodges_lehmann(canary, baseline);
    let harmful = match options.harm {
        Harm::Increase => effect_size > 0.0,
        Harm::Decrease => effect_size < 0.0,
        Harm::Either => effect_size != 0.0,
    };
    let verdict = if p_value >= 1.0 - options.confidence || !harmful {
        Verdict::Pass
    } else if effect_size.abs() <= options.tolerance {
        Verdict::Marginal
    } else {
        Verdict::Fail
    };
    Ok(Judgment { verdict, p_value, effect_size })
}

/// Two-sided p-value of the Mann–Whitney U test (normal approximation, tie and continuity corrected).
pub fn mann_whitney_p(x: &[f64], y: &[f64]) -> f64 {
    let (n1, n2) = (x.len() as f64, y.len() as f64);
    let mut all: Vec<(f64, bool)> =
        x.iter().map(|v| (*v, true)).chain(y.iter().map(|v| (*v, false))).collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0));
    // Average ranks over ties; collect the tie correction on the way.
    let (mut rank_sum_x, mut ties, mut i) = (0.0, 0.0, 0);
    while i < all.len() {
        let mut j = i;
        while j + 1 < all.len() && all[j + 1].0 == all[i].0 {
            j += 1;
        }
        let rank = (i + j) as f64 / 2.0 + 1.0;
        let t = (j - i + 1) as f64;
        ties += t * t * t - t;
        rank_sum_x += rank * all[i..=j].iter().filter(|(_, from_x)| *from_x).count() as f64;
        i = j + 1;
    }
    let u = rank_sum_x - n1 * (n1 + 1.0) / 2.0;
    let n = n1 + n2;
    let mean = n1 * n2 / 2.0;
    let var = n1 * n2 / 12.0 * ((n + 1.0) - ties / (n * (n - 1.0)).max(1.0));
    if var <= 0.0 {
        return 1.0; // every value equal: no evidence of any difference
    }
    let z = ((u - mean).abs() - 0.5).max(0.0) / var.sqrt();
    erfc(z / std::f64::consts::SQRT_2).min(1.0)
}

/// The Hodges–Lehmann estimate of the shift `x - y`: the median of all pairwise differences.
pub fn hodges_lehmann(x: &[f64], y: &[f64]) -> f64 {
    let mut d: Vec<f64> = x.iter().flat_map(|a| y.iter().map(move |b| a - b)).collect();
    if d.is_empty() {
        return 0.0;
    }
    let mid = d.len() / 2;
    let (_, upper, _) = d.select_nth_unstable_by(mid, f64::total_cmp);
    let upper = *upper;
    if d.len() % 2 == 1 {
        return upper;
    }
    let lower = d[..mid].iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (lower + upper) / 2.0
}

/// The complementary error function (Numerical Recipes' Chebyshev fit, fractional error below 1.2e-7:
/// far finer than any confidence a judge is given).
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let r = t
        * (-z * z - 1.265_512_23
            + t * (1.000_023_68
                + t * (0.374_091_96
                    + t * (0.096_784_18
                        + t * (-0.186_288_06
                            + t * (0.278_868_07
                                + t * (-1.135_203_98
                                    + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77)))))))))
            .exp();
    if x >= 0.0 { r } else { 2.0 - r }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p_value_matches_a_reference() {
        // R: wilcox.test(1:5, 6:10, exact = FALSE, correct = TRUE) gives W = 0, p-value = 0.01219.
        let p = mann_whitney_p(&[1.0, 2.0, 3.0, 4.0, 5.0], &[6.0, 7.0, 8.0, 9.0, 10.0]);
        assert!((p - 0.012_19).abs() < 1e-4, "{p}");
        // With ties, by hand: ranks 1.5 1.5 4 4 4 7 7 7 9.5 9.5, U = 18 - 15 = 3, tie term 60,
        // var = 25/12 * (11 - 60/90) = 21.53, z = (9.5 - 0.5) / 4.640 = 1.940, p = 0.0524.
        let p = mann_whitney_p(&[1.0, 1.0, 2.0, 2.0, 3.0], &[2.0, 3.0, 3.0, 4.0, 4.0]);
        assert!((p - 0.0524).abs() < 1e-3, "{p}");
    }

    #[test]
    fn equal_samples_pass_and_a_shift_fails() {
        let base: Vec<f64> = (0..50).map(|i| 0.01 + (i % 7) as f64 * 0.001).collect();
        let same = judge(&base, &base, &JudgeOptions::default()).unwrap();
        assert_eq!(same.verdict, Verdict::Pass);
        assert!(same.effect_size.abs() < 1e-12 && same.p_value > 0.9, "{same:?}");

        let worse: Vec<f64> = base.iter().map(|v| v + 0.05).collect();
        let j = judge(&worse, &base, &JudgeOptions::default()).unwrap();
        assert_eq!(j.verdict, Verdict::Fail, "{j:?}");
        assert!((j.effect_size - 0.05).abs() < 1e-9 && j.p_value < 0.02, "{j:?}");

        let tolerant = JudgeOptions { tolerance: 0.1, ..JudgeOptions::default() };
        assert_eq!(judge(&worse, &base, &tolerant).unwrap().verdict, Verdict::Marginal);
        // Better is not harm.
        assert_eq!(judge(&base, &worse, &JudgeOptions::default()).unwrap().verdict, Verdict::Pass);
        let either = JudgeOptions { harm: Harm::Either, ..JudgeOptions::default() };
        assert_eq!(judge(&base, &worse, &either).unwrap().verdict, Verdict::Fail);
    }

    #[test]
    fn unusable_input_is_named() {
        let o = JudgeOptions::default();
        assert!(judge(&[], &[1.0], &o).unwrap_err().contains("canary samples are empty"));
        assert!(judge(&[1.0], &[f64::NAN], &o).unwrap_err().contains("baseline samples hold NaN"));
        let bad = JudgeOptions { confidence: 1.0, ..o };
        assert!(judge(&[1.0], &[1.0], &bad).unwrap_err().contains("confidence"));
        let long = vec![1.0; MAX_JUDGE_VALUES + 1];
        assert!(judge(&long, &[1.0], &o).unwrap_err().contains("at most"));
    }

    #[test]
    fn hodges_lehmann_is_the_median_difference() {
        assert_eq!(hodges_lehmann(&[3.0], &[1.0, 2.0]), 1.5);
        assert_eq!(hodges_lehmann(&[5.0, 6.0, 7.0], &[1.0]), 5.0);
    }
}
