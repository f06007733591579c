//! The seeded draws: machine ids and uniform numbers that are pure functions of the seed and what
//! they are the draw *of*.
//!
//! Nothing here keeps state: the n-th draw for a key is the same whatever was drawn before it, which is
//! what makes a run independent of the order a strategy does things in (and of concurrency), and what
//! lets [`crate::model`] read the same numbers back for a lower bound. `splitmix` mixes, `fnv` hashes
//! a key; neither is cryptographic, and neither needs to be.

/// A Fly-like 14-hex-digit machine id, stable for a seed, app and index.
pub(crate) fn machine_id(seed: u64, app: &str, index: u64) -> String {
    let h = splitmix(seed ^ fnv(app) ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    format!("{:014x}", h & 0x00ff_ffff_ffff_ffff)
}

/// What keys the draws of API call `what` on `subject` (a machine id, or the app for calls on no
/// machine).
pub(crate) fn api_key(subject: &str, what: &str) -> String {
    format!("{subject}/{what}")
}

/// A uniform draw in [0, 1) from (seed, key, n): the same inputs always give the same number.
pub(crate) fn unit(seed: u64, key: &str, n: u64) -> f64 {
    let h = splitmix(seed ^ fnv(key) ^ splitmix(n));
    (h >> 11) as f64 / (1u64 << 53) as f64
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}
