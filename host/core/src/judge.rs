//! The statistical judge: is a canary worse than its baseline, judged from two series of samples?
//!
//! One implementation for every strategy, whatever its language: the runtime exposes it to components,
//! the built-in canary calls it, the benchmarks measure it. It follows Kayenta's Mann–Whitney classifier
//! (Spinnaker's canary judge) rather than a fixed threshold, because a fixed threshold ("error ratio
//! below 1%") is either too loose for a service that normally has none or too tight for one that always
//! has some; comparing the canary with a baseline serving the same traffic at the same time cancels what
//! both share.
//!
//! How a [`Verdict`] is reached:
//!
//! 1. Samples that are not finite numbers (NaN from `0/0` when an interval had no requests, ±∞) are
//!    dropped and counted ([`Verdict::dropped`]), as Kayenta's default `nanStrategy` removes them. No
//!    sample left on either side is [`JudgeError::NoData`], never a pass.
//! 2. The Mann–Whitney U test (Wilcoxon rank-sum) compares the two samples: mid-ranks for ties, the
//!    normal approximation with the tie-corrected variance and a continuity correction of ½ — what
//!    `scipy.stats.mannwhitneyu(canary, baseline, method="asymptotic")` computes, whose two-sided
//!    p-value is [`Verdict::p_value`].
//! 3. The effect size is the Hodges–Lehmann estimate of the shift, canary minus baseline: the median of
//!    every pairwise difference `canary[i] - baseline[j]`, in the metric's own unit (an error ratio
//!    0.05 above the baseline's is an effect of 0.05). Its confidence interval at
//!    [`JudgeOptions::confidence`] is read off the sorted differences (the distribution-free interval
//!    of Hollander and Wolfe, with the tie-corrected normal approximation for its rank).
//! 4. The outcome, for the direction that is bad ([`Direction`]):
//!    - [`Outcome::Fail`]: the difference is significant (two-sided p below `1 - confidence`, the
//!      shift on the bad side), the whole confidence interval lies beyond a tolerance band of
//!      ±`tolerance` × |estimate| (Kayenta's band, 0.25 by default), and the estimate exceeds
//!      [`JudgeOptions::min_effect`];
//!    - [`Outcome::Marginal`]: significant on the bad side, but within the band or below
//!      `min_effect` — a real difference, smaller than the one the options call a failure;
//!    - [`Outcome::Pass`]: otherwise (including a canary significantly *better*).
//!
//! Defaults are Kayenta's: 98% confidence, a tolerance of 0.25, "increase is bad" (error ratios,
//! latencies), no minimum effect.

use serde::{Deserialize, Serialize};

/// The most samples one side may hold: the Hodges–Lehmann estimate sorts every pairwise difference,
/// so `MAX_SAMPLES²` of them (4 million, 32 MB) bounds the judge's memory whatever a strategy sends.
/// Thirty minutes of one-second samples fit.
pub const MAX_SAMPLES: usize = 2_000;

/// Which way a change of the metric is bad.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// A higher canary is bad: error ratios, latencies (the default).
    #[default]
    Increase,
    /// A lower canary is bad: throughput, success ratios, cache hit ratios.
    Decrease,
    /// Any significant difference is bad.
    Either,
}

/// How the judge decides; [`JudgeOptions::default`] is Kayenta's.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JudgeOptions {
    /// Confidence of the test and of the effect's interval, in (0.5, 1): 0.98 by default (Kayenta's),
    /// so an equal canary is called significantly different about 2% of the time.
    pub confidence: f64,
    /// Which way is bad; [`Direction::Increase`] by default.
    pub direction: Direction,
    /// The tolerance band, as a fraction of the estimated shift: to fail, the whole confidence
    /// interval must lie beyond `tolerance × |estimate|`. 0.25 by default (Kayenta's); 0 fails on
    /// any significant shift whose interval excludes zero.
    pub tolerance: f64,
    /// The smallest shift (in the metric's unit, ≥ 0) that may fail: a significant shift below it is
    /// [`Outcome::Marginal`]. 0 by default; e.g. 0.001 for an error ratio lets a canary 0.1 points
    /// worse through as marginal.
    pub min_effect: f64,
}

impl Default for JudgeOptions {
    fn default() -> Self {
        JudgeOptions { confidence: 0.98, direction: Direction::Increase, tolerance: 0.25, min_effect: 0.0 }
    }
}

/// The judge's decision for one metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// No significant difference on the bad side.
    Pass,
    /// Significantly worse, but by less than the options call a failure.
    Marginal,
    /// Significantly and materially worse: stop the canary.
    Fail,
}

/// What the judge decided, and the numbers it decided from (journaled and shown as they are).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// The decision.
    pub outcome: Outcome,
    /// The two-sided p-value of the Mann–Whitney U test (normal approximation, tie and continuity
    /// corrected): the chance of a difference at least this large between two equal distributions.
    pub p_value: f64,
    /// The Hodges–Lehmann estimate of the shift, canary minus baseline, in the metric's unit.
    pub effect_size: f64,
    /// The lower end of the shift's confidence interval.
    pub ci_low: f64,
    /// The upper end of the shift's confidence interval.
    pub ci_high: f64,
    /// The canary's U statistic: how many (canary, baseline) pairs the canary wins, ties counting ½.
    pub u: f64,
    /// Canary samples used (finite ones).
    pub canary_samples: usize,
    /// Baseline samples used (finite ones).
    pub baseline_samples: usize,
    /// Samples dropped from either side because they were not finite numbers.
    pub dropped: usize,
    /// One sentence saying why, for people reading a deploy's output or journal.
    pub reason: String,
}

/// Why the judge could not decide.
#[derive(Debug, Clone, PartialEq, thiserror::Error, Serialize, Deserialize)]
pub enum JudgeError {
    /// A side has no finite sample: nothing to compare, which is never a pass.
    #[error(
        "no data to judge: {canary} canary and {baseline} baseline samples are finite numbers (both need at least one)"
    )]
    NoData {
        /// Finite canary samples.
        canary: usize,
        /// Finite baseline samples.
        baseline: usize,
    },
    /// A side holds more than [`MAX_SAMPLES`] samples.
    #[error("too many {side} samples: {len}, at most {max} (use a coarser step for the range query)")]
    TooManySamples {
        /// `canary` or `baseline`.
        side: String,
        /// How many it held.
        len: usize,
        /// [`MAX_SAMPLES`].
        max: usize,
    },
    /// An option is out of its range.
    #[error("judge option `{name}` = {value}: expected {expected}")]
    BadOption {
        /// The option's name, as in [`JudgeOptions`].
        name: String,
        /// The value given.
        value: f64,
        /// What it may be.
        expected: String,
    },
}

/// Judges `canary` against `baseline` (see the module's documentation for how).
pub fn judge(canary: &[f64], baseline: &[f64], options: &JudgeOptions) -> Result<Verdict, JudgeError> {
    validate(options)?;
    for (side, samples) in [("canary", canary), ("baseline", baseline)] {
        if samples.len() > MAX_SAMPLES {
            return Err(JudgeError::TooManySamples {
                side: side.into(),
                len: samples.len(),
                max: MAX_SAMPLES,
            });
        }
    }
    let finite = |xs: &[f64]| -> Vec<f64> { xs.iter().copied().filter(|x| x.is_finite()).collect() };
    let (c, b) = (finite(canary), finite(baseline));
    let dropped = canary.len() - c.len() + baseline.len() - b.len();
    if c.is_empty() || b.is_empty() {
        return Err(JudgeError::NoData { canary: c.len(), baseline: b.len() });
    }
    let test = mann_whitney(&c, &b);
    let alpha = 1.0 - options.confidence;
    let (effect, ci_low, ci_high) = hodges_lehmann(&c, &b, normal_quantile(1.0 - alpha / 2.0), test.sigma);
    let significant = test.p_two_sided < alpha;
    let band = options.tolerance * effect.abs();
    // Which side the canary's ranks lean to; U above its mean means the canary tends to be higher.
    let higher = test.u > test.mean;
    let lower = test.u < test.mean;
    let (bad_up, bad_down) = match options.direction {
        Direction::Increase => (true, false),
        Direction::Decrease => (false, true),
        Direction::Either => (true, true),
    };
    let worse = significant && ((bad_up && higher) || (bad_down && lower));
    let beyond_band = (higher && ci_low > band) || (lower && ci_high < -band);
    let material = effect.abs() > options.min_effect;
    let confidence = sig(options.confidence * 100.0);
    let (effect_text, ci_low_text, ci_high_text, band_text) =
        (sig(effect), sig(ci_low), sig(ci_high), sig(band));
    let (outcome, reason) = if !worse {
        let why = if significant {
            format!("the canary differs (p = {:.3}) on the side that is not bad", test.p_two_sided)
        } else {
            format!("no significant difference at {confidence}% confidence (p = {:.3})", test.p_two_sided)
        };
        (Outcome::Pass, why)
    } else if beyond_band && material {
        let why = format!(
            "the canary is worse at {confidence}% confidence (p = {:.3}): shift {effect_text} (interval {ci_low_text} to \
             {ci_high_text}) beyond the tolerance band ±{band_text} and above the minimum effect {}",
            test.p_two_sided,
            sig(options.min_effect)
        );
        (Outcome::Fail, why)
    } else {
        let why = if beyond_band {
            format!(
                "the canary is worse (p = {:.3}) by {effect_text}, not more than the minimum effect {}",
                test.p_two_sided,
                sig(options.min_effect)
            )
        } else {
            format!(
                "the canary is worse (p = {:.3}) by {effect_text}, but its interval {ci_low_text} to {ci_high_text} \
                 reaches into the tolerance band ±{band_text}",
                test.p_two_sided
            )
        };
        (Outcome::Marginal, why)
    };
    Ok(Verdict {
        outcome,
        p_value: test.p_two_sided,
        effect_size: effect,
        ci_low,
        ci_high,
        u: test.u,
        canary_samples: c.len(),
        baseline_samples: b.len(),
        dropped,
        reason,
    })
}

/// The Mann–Whitney U test's numbers for one pair of samples.
struct MannWhitney {
    /// The first sample's U.
    u: f64,
    /// U's mean under the null hypothesis, `n1·n2/2`.
    mean: f64,
    /// U's tie-corrected standard deviation under the null hypothesis (0 when every value is equal).
    sigma: f64,
    /// The two-sided p-value, continuity corrected.
    p_two_sided: f64,
}

/// The U test of `x` against `y`, as scipy's `mannwhitneyu(x, y, method="asymptotic")`.
///
/// Every rank sum is a multiple of ½ far below 2⁵³, so the arithmetic is exact: swapping or
/// reordering the samples gives bit-identical results, which the judge's symmetry relies on.
fn mann_whitney(x: &[f64], y: &[f64]) -> MannWhitney {
    let (n1, n2) = (x.len() as f64, y.len() as f64);
    let mut all: Vec<(f64, bool)> =
        x.iter().map(|&v| (v, true)).chain(y.iter().map(|&v| (v, false))).collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0));
    let n = all.len();
    let (mut rank_sum_x, mut ties) = (0.0, 0.0);
    let mut i = 0;
    while i < n {
        let mut j = i;
        while j + 1 < n && all[j + 1].0 == all[i].0 {
            j += 1;
        }
        // Positions i..=j (ranks i+1..=j+1) share their mid-rank.
        let mid_rank = (i + j + 2) as f64 / 2.0;
        let t = (j - i + 1) as f64;
        ties += t * t * t - t;
        rank_sum_x += mid_rank * all[i..=j].iter().filter(|(_, in_x)| *in_x).count() as f64;
        i = j + 1;
    }
    let u = rank_sum_x - n1 * (n1 + 1.0) / 2.0;
    let mean = n1 * n2 / 2.0;
    let total = n1 + n2;
    let variance = n1 * n2 / 12.0 * ((total + 1.0) - ties / (total * (total - 1.0)));
    let sigma = if variance > 0.0 { variance.sqrt() } else { 0.0 };
    let p_two_sided = if sigma == 0.0 {
        1.0
    } else {
        let z = ((u - mean).abs() - 0.5) / sigma;
        (2.0 * normal_sf(z)).min(1.0)
    };
    MannWhitney { u, mean, sigma, p_two_sided }
}

/// The Hodges–Lehmann shift of `x` from `y` and its confidence interval: the median of every
/// difference `x[i] - y[j]`, and the differences of rank `k` from either end, `k` being the U
/// statistic's lower critical value `n1·n2/2 - z·σ` (`z` the normal quantile of the interval's
/// upper tail, `σ` U's tie-corrected standard deviation).
fn hodges_lehmann(x: &[f64], y: &[f64], z: f64, sigma: f64) -> (f64, f64, f64) {
    let mut d: Vec<f64> = Vec::with_capacity(x.len() * y.len());
    for &a in x {
        d.extend(y.iter().map(|&b| a - b));
    }
    d.sort_by(f64::total_cmp);
    let m = d.len();
    let median = if m % 2 == 1 { d[m / 2] } else { (d[m / 2 - 1] + d[m / 2]) / 2.0 };
    let k = ((m as f64 / 2.0 - z * sigma).floor().max(0.0) as usize).min((m - 1) / 2);
    (median, d[k], d[m - 1 - k])
}

/// The standard normal distribution's upper tail, `P(Z > z)`.
fn normal_sf(z: f64) -> f64 {
    0.5 * libm::erfc(z / std::f64::consts::SQRT_2)
}

/// The standard normal quantile for `p` in (0, 1): Acklam's rational approximation (relative error
/// below 1.2e-9) refined by one Halley step against `erfc`, which brings it to full precision.
fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969683028665376e1,
        2.209460984245205e2,
        -2.759285104469687e2,
        1.38357751867269e2,
        -3.066479806614716e1,
        2.506628277459239,
    ];
    const B: [f64; 5] = [
        -5.447609879822406e1,
        1.615858368580409e2,
        -1.556989798598866e2,
        6.680131188771972e1,
        -1.328068155288572e1,
    ];
    const C: [f64; 6] = [
        -7.784894002430293e-3,
        -3.223964580411365e-1,
        -2.400758277161838,
        -2.549732539343734,
        4.374664141464968,
        2.938163982698783,
    ];
    const D: [f64; 4] = [7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416];
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    let x = if p < 0.02425 {
        tail((-2.0 * p.ln()).sqrt())
    } else if p > 1.0 - 0.02425 {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    };
    // Halley: e is the CDF's error at x, u the Newton step.
    let e = 0.5 * libm::erfc(-x / std::f64::consts::SQRT_2) - p;
    let u = e * (2.0 * std::f64::consts::PI).sqrt() * (x * x / 2.0).exp();
    x - u / (1.0 + x * u / 2.0)
}

fn validate(options: &JudgeOptions) -> Result<(), JudgeError> {
    let bad = |name: &str, value: f64, expected: &str| {
        Err(JudgeError::BadOption { name: name.into(), value, expected: expected.into() })
    };
    if !(options.confidence > 0.5 && options.confidence < 1.0) {
        return bad("confidence", options.confidence, "a number between 0.5 and 1, exclusive (e.g. 0.98)");
    }
    if !(options.tolerance.is_finite() && options.tolerance >= 0.0) {
        return bad("tolerance", options.tolerance, "a finite number ≥ 0 (e.g. 0.25)");
    }
    if !(options.min_effect.is_finite() && options.min_effect >= 0.0) {
        return bad("min_effect", options.min_effect, "a finite number ≥ 0, in the metric's unit");
    }
    Ok(())
}

/// `x` to four significant digits, trailing zeros dropped: a reason is read by people, and a shift of
/// `0.037000000000000005` says less than `0.037`.
fn sig(x: f64) -> String {
    if x == 0.0 || !x.is_finite() {
        return format!("{x}");
    }
    let decimals = (3 - x.abs().log10().floor() as i32).clamp(0, 15) as usize;
    let s = format!("{x:.decimals$}");
    if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_string() } else { s }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn reasons_print_four_significant_digits() {
        assert_eq!(sig(0.037000000000000005), "0.037");
        assert_eq!(sig(-0.00123456), "-0.001235");
        assert_eq!(sig(98.00000000000001), "98");
        assert_eq!(sig(1234.5678), "1235");
        assert_eq!(sig(0.0), "0");
    }

    /// scipy's own example (the `scipy.stats.mannwhitneyu` documentation, "males" and "females"):
    /// U1 = 17, and `mannwhitneyu(males, females, method="asymptotic")` prints p = 0.11134688653314041.
    #[test]
    fn scipy_documentation_example() {
        let mw = mann_whitney(&[19.0, 22.0, 16.0, 29.0, 24.0], &[20.0, 11.0, 17.0, 12.0]);
        assert_eq!(mw.u, 17.0);
        assert!(close(mw.p_two_sided, 0.11134688653314041, 1e-12), "{}", mw.p_two_sided);
        // And the other way round: U2 = n1·n2 - U1, the same two-sided p.
        let mw = mann_whitney(&[20.0, 11.0, 17.0, 12.0], &[19.0, 22.0, 16.0, 29.0, 24.0]);
        assert_eq!(mw.u, 3.0);
        assert!(close(mw.p_two_sided, 0.11134688653314041, 1e-12));
    }

    /// R's `wilcox.test(c(1,2,3), c(4,5,6), exact=FALSE)` (continuity corrected by default):
    /// W = 0, p-value = 0.08086 (0.0808556 to seven places).
    #[test]
    fn separated_samples_match_r() {
        let mw = mann_whitney(&[1.0, 2.0, 3.0], &[4.0, 5.0, 6.0]);
        assert_eq!(mw.u, 0.0);
        assert!(close(mw.p_two_sided, 0.0808556, 1e-6), "{}", mw.p_two_sided);
    }

    /// Ties, worked by hand with scipy's formula: [1,2,2] vs [2,3,4] has U = 1 (the 2s share rank 3),
    /// tie term Σ(t³-t) = 24, variance 9/12·(7 - 24/30) = 4.65, z = (|1 - 4.5| - 0.5)/√4.65, and
    /// p = 2·(1 - Φ(z)) = 0.1641597.
    #[test]
    fn ties_use_mid_ranks_and_the_corrected_variance() {
        let mw = mann_whitney(&[1.0, 2.0, 2.0], &[2.0, 3.0, 4.0]);
        assert_eq!(mw.u, 1.0);
        assert!(close(mw.sigma * mw.sigma, 4.65, 1e-12));
        assert!(close(mw.p_two_sided, 0.1641597, 1e-6), "{}", mw.p_two_sided);
    }

    /// The quantiles every confidence level uses, against the published table (to 1e-9).
    #[test]
    fn normal_quantiles() {
        for (p, z) in
            [(0.5, 0.0), (0.975, 1.959963984540054), (0.99, 2.326347874040841), (0.995, 2.575829303548901)]
        {
            assert!(close(normal_quantile(p), z, 1e-9), "{p}: {}", normal_quantile(p));
            assert!(close(normal_quantile(1.0 - p), -z, 1e-9));
        }
    }

    /// The Hodges–Lehmann shift is the median of the pairwise differences: here {1-0, 1-1, 3-0, 3-1}
    /// = {1, 0, 3, 2}, median 1.5.
    #[test]
    fn hodges_lehmann_is_the_median_difference() {
        let (est, lo, hi) = hodges_lehmann(&[1.0, 3.0], &[0.0, 1.0], 1.96, 1.0);
        assert_eq!(est, 1.5);
        assert!(lo <= est && est <= hi);
    }

    #[test]
    fn a_clearly_worse_canary_fails_and_a_better_one_passes() {
        let baseline: Vec<f64> = (0..30).map(|i| 0.01 + (i % 5) as f64 * 0.001).collect();
        let canary: Vec<f64> = baseline.iter().map(|x| x + 0.05).collect();
        let v = judge(&canary, &baseline, &JudgeOptions::default()).unwrap();
        assert_eq!(v.outcome, Outcome::Fail, "{v:?}");
        assert!(close(v.effect_size, 0.05, 1e-9), "{v:?}");
        assert!(v.p_value < 1e-6);
        let v = judge(&baseline, &canary, &JudgeOptions::default()).unwrap();
        assert_eq!(v.outcome, Outcome::Pass, "{v:?}");
        let either = JudgeOptions { direction: Direction::Either, ..JudgeOptions::default() };
        assert_eq!(judge(&baseline, &canary, &either).unwrap().outcome, Outcome::Fail);
    }

    #[test]
    fn a_small_significant_shift_below_min_effect_is_marginal() {
        let baseline: Vec<f64> = (0..30).map(|i| (i % 5) as f64 * 0.001).collect();
        let canary: Vec<f64> = baseline.iter().map(|x| x + 0.01).collect();
        let options = JudgeOptions { min_effect: 0.02, ..JudgeOptions::default() };
        let v = judge(&canary, &baseline, &options).unwrap();
        assert_eq!(v.outcome, Outcome::Marginal, "{v:?}");
    }

    #[test]
    fn identical_or_constant_samples_pass_with_p_one() {
        let v = judge(&[0.0; 10], &[0.0; 12], &JudgeOptions::default()).unwrap();
        assert_eq!((v.outcome, v.p_value, v.effect_size), (Outcome::Pass, 1.0, 0.0));
    }

    #[test]
    fn non_finite_samples_are_dropped_and_no_data_is_an_error() {
        let v = judge(&[1.0, f64::NAN, 2.0], &[1.0, f64::INFINITY, 2.0], &JudgeOptions::default()).unwrap();
        assert_eq!((v.dropped, v.canary_samples, v.baseline_samples), (2, 2, 2));
        let e = judge(&[f64::NAN], &[1.0], &JudgeOptions::default()).unwrap_err();
        assert_eq!(e, JudgeError::NoData { canary: 0, baseline: 1 });
        assert!(e.to_string().contains("0 canary and 1 baseline"), "{e}");
    }

    #[test]
    fn bad_options_and_oversized_input_are_refused_with_the_reason() {
        let e =
            judge(&[1.0], &[1.0], &JudgeOptions { confidence: 1.0, ..JudgeOptions::default() }).unwrap_err();
        assert!(e.to_string().contains("`confidence` = 1: expected a number between 0.5 and 1"), "{e}");
        let e = judge(&[1.0], &[1.0], &JudgeOptions { tolerance: f64::NAN, ..JudgeOptions::default() })
            .unwrap_err();
        assert!(e.to_string().contains("`tolerance`"), "{e}");
        let e =
            judge(&[1.0], &[1.0], &JudgeOptions { min_effect: -1.0, ..JudgeOptions::default() }).unwrap_err();
        assert!(e.to_string().contains("`min_effect`"), "{e}");
        let big = vec![0.0; MAX_SAMPLES + 1];
        let e = judge(&[1.0], &big, &JudgeOptions::default()).unwrap_err();
        assert!(
            matches!(e, JudgeError::TooManySamples { ref side, len, .. } if side == "baseline" && len == MAX_SAMPLES + 1)
        );
    }

    #[test]
    fn options_read_from_toml_like_input_with_defaults() {
        let o: JudgeOptions = serde_json::from_str(r#"{"direction": "either", "min_effect": 0.01}"#).unwrap();
        assert_eq!(
            o,
            JudgeOptions { direction: Direction::Either, min_effect: 0.01, ..JudgeOptions::default() }
        );
        assert!(serde_json::from_str::<JudgeOptions>(r#"{"confidance": 0.9}"#).is_err());
    }
}
