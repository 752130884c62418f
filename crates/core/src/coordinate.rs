//! Vivaldi network coordinates (docs/serf-protocol.md section 11).
//!
//! Every node keeps an estimate of its own position in a virtual space (an 8-dimensional
//! Euclidean vector plus a non-Euclidean "height" and an "adjustment" offset, all in
//! seconds). Each completed direct ping carries the peer's coordinate in the ack payload;
//! [`CoordinateClient::update`] folds that coordinate and the observed round trip time into
//! our own estimate. The distance between two coordinates ([`estimate_rtt`]) is the
//! estimated round trip time between the two nodes.
//!
//! The coordinate itself is the wire struct [`serf_wire::serf::Coordinate`]; this module adds
//! the arithmetic on it as free functions. Functions taking two coordinates expect the same
//! dimensionality (check with [`is_compatible_with`]); if they differ, the shorter vector is
//! treated as padded with zeros rather than panicking. [`CoordinateClient`] rejects
//! incompatible coordinates before using them.

use std::collections::{HashMap, VecDeque};
use std::fmt::Write as _;
use std::time::Duration;

pub use serf_wire::serf::Coordinate;

/// Two positions closer than this (seconds) are considered to be on top of each other, and
/// RTTs below it are raised to it.
const ZERO_THRESHOLD: f64 = 1.0e-6;

/// Largest RTT accepted by [`CoordinateClient::update`].
const MAX_RTT: Duration = Duration::from_secs(10);

/// Tuning parameters of the Vivaldi algorithm. [`Default`] gives the values Serf uses.
#[derive(Debug, Clone, PartialEq)]
pub struct CoordinateConfig {
    /// Number of Euclidean dimensions (default 8).
    pub dimensionality: usize,
    /// Error of a fresh coordinate and upper limit of the error (default 1.5).
    pub vivaldi_error_max: f64,
    /// Maximum impact of one observation on the error estimate (default 0.25).
    pub vivaldi_ce: f64,
    /// Maximum impact of one observation on the position (default 0.25).
    pub vivaldi_cc: f64,
    /// Number of samples in the adjustment window; 0 disables the adjustment (default 20).
    pub adjustment_window_size: usize,
    /// Minimum height, in seconds (default 1.0e-5).
    pub height_min: f64,
    /// Number of RTT samples kept per peer for the median filter (default 3).
    pub latency_filter_size: usize,
    /// Gravity tuning factor pulling coordinates towards the origin (default 150).
    pub gravity_rho: f64,
}

impl Default for CoordinateConfig {
    fn default() -> Self {
        Self {
            dimensionality: 8,
            vivaldi_error_max: 1.5,
            vivaldi_ce: 0.25,
            vivaldi_cc: 0.25,
            adjustment_window_size: 20,
            height_min: 1.0e-5,
            latency_filter_size: 3,
            gravity_rho: 150.0,
        }
    }
}

/// Small deterministic pseudo-random generator (SplitMix64), used to pick a direction when
/// two coordinates sit on top of each other.
#[derive(Debug, Clone)]
pub struct CoordinateRng {
    state: u64,
}

impl CoordinateRng {
    /// A generator with the given seed.
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform float in `[0, 1)`.
    pub fn next_f64(&mut self) -> f64 {
        // 53 random mantissa bits.
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

/// A fresh coordinate: the origin, with maximum error, no adjustment and minimum height.
pub fn new_coordinate(cfg: &CoordinateConfig) -> Coordinate {
    Coordinate {
        vec: vec![0.0; cfg.dimensionality],
        error: cfg.vivaldi_error_max,
        adjustment: 0.0,
        height: cfg.height_min,
    }
}

/// True if no component is NaN or infinite.
pub fn is_valid(c: &Coordinate) -> bool {
    c.vec.iter().all(|v| v.is_finite())
        && c.error.is_finite()
        && c.adjustment.is_finite()
        && c.height.is_finite()
}

/// True if both coordinates have the same dimensionality.
pub fn is_compatible_with(a: &Coordinate, b: &Coordinate) -> bool {
    a.vec.len() == b.vec.len()
}

/// Component `i` of `v`, zero beyond its end.
fn component(v: &[f64], i: usize) -> f64 {
    v.get(i).copied().unwrap_or(0.0)
}

/// `a - b`, with the length of `a` (missing components of `b` count as zero).
fn diff(a: &[f64], b: &[f64]) -> Vec<f64> {
    a.iter()
        .enumerate()
        .map(|(i, x)| x - component(b, i))
        .collect()
}

/// Euclidean length of `v`.
fn magnitude(v: &[f64]) -> f64 {
    v.iter().fold(0.0, |acc, x| acc + x * x).sqrt()
}

/// `v * factor`.
fn scaled(v: &[f64], factor: f64) -> Vec<f64> {
    v.iter().map(|x| x * factor).collect()
}

/// Unit vector pointing from `to` towards `from`, and the distance between them. When they
/// coincide, a random unit vector and a distance of 0 (falling back to the first axis if
/// the random draw is degenerate too).
fn unit_vector_at(from: &[f64], to: &[f64], rng: &mut CoordinateRng) -> (Vec<f64>, f64) {
    let d = diff(from, to);
    let mag = magnitude(&d);
    if mag > ZERO_THRESHOLD {
        return (scaled(&d, 1.0 / mag), mag);
    }
    let random: Vec<f64> = d.iter().map(|_| rng.next_f64() - 0.5).collect();
    let rmag = magnitude(&random);
    if rmag > ZERO_THRESHOLD {
        return (scaled(&random, 1.0 / rmag), 0.0);
    }
    let mut axis = vec![0.0; d.len()];
    if let Some(first) = axis.first_mut() {
        *first = 1.0;
    }
    (axis, 0.0)
}

/// Maximum that propagates NaN (unlike [`f64::max`]).
fn nan_max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.max(b)
    }
}

/// Distance between the coordinates in seconds, without the adjustment terms:
/// `|a.vec - b.vec| + a.height + b.height`.
pub fn raw_distance(a: &Coordinate, b: &Coordinate) -> f64 {
    let d = if a.vec.len() >= b.vec.len() {
        diff(&a.vec, &b.vec)
    } else {
        diff(&b.vec, &a.vec)
    };
    magnitude(&d) + a.height + b.height
}

/// Distance in seconds including adjustments when the adjusted value is positive, else the
/// raw distance; quantised to whole nanoseconds like a Go `time.Duration` (the value the
/// update rules work with). May be negative for nonsensical (negative height) input.
fn distance_seconds(a: &Coordinate, b: &Coordinate) -> f64 {
    let raw = raw_distance(a, b);
    let adjusted = raw + a.adjustment + b.adjustment;
    let dist = if adjusted > 0.0 { adjusted } else { raw };
    // Truncate to integral nanoseconds (saturating), then back to seconds as
    // whole seconds plus the nanosecond remainder.
    let nanos = (dist * 1.0e9) as i64;
    let secs = nanos / 1_000_000_000;
    let rem = nanos % 1_000_000_000;
    secs as f64 + rem as f64 / 1.0e9
}

/// Estimated RTT between two coordinates: the raw distance plus both adjustments if that sum
/// is positive, else the raw distance. Truncated to nanoseconds; negative results (only
/// possible with invalid heights) give zero.
pub fn distance_to(a: &Coordinate, b: &Coordinate) -> Duration {
    let raw = raw_distance(a, b);
    let adjusted = raw + a.adjustment + b.adjustment;
    let dist = if adjusted > 0.0 { adjusted } else { raw };
    // `as` saturates: negatives and NaN become 0.
    Duration::from_nanos((dist * 1.0e9) as u64)
}

/// The RTT estimate between two nodes from their coordinates (what `serf rtt` prints).
pub fn estimate_rtt(a: &Coordinate, b: &Coordinate) -> Duration {
    distance_to(a, b)
}

/// Moves `c` by `force` seconds along the direction from `other` to `c` (a positive force
/// pushes away from `other`, a negative one pulls towards it) and returns the result. When
/// the two positions coincide a random direction from `rng` is used. The height grows or
/// shrinks proportionally, never below `cfg.height_min`.
pub fn apply_force(
    cfg: &CoordinateConfig,
    c: &Coordinate,
    force: f64,
    other: &Coordinate,
    rng: &mut CoordinateRng,
) -> Coordinate {
    let (unit, mag) = unit_vector_at(&c.vec, &other.vec, rng);
    let mut ret = c.clone();
    for (v, u) in ret.vec.iter_mut().zip(unit.iter()) {
        *v += u * force;
    }
    if mag > ZERO_THRESHOLD {
        ret.height = (ret.height + other.height) * force / mag + ret.height;
        ret.height = nan_max(ret.height, cfg.height_min);
    }
    ret
}

/// Counters of a [`CoordinateClient`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CoordinateStats {
    /// Times the local coordinate was reset because an update made it invalid
    /// (`coordinate_resets`).
    pub resets: u64,
}

/// The coordinate estimate of one node, updated from observed RTTs to peers.
#[derive(Debug, Clone)]
pub struct CoordinateClient {
    cfg: CoordinateConfig,
    coord: Coordinate,
    origin: Coordinate,
    adjustment_index: usize,
    adjustment_samples: Vec<f64>,
    latency_samples: HashMap<String, VecDeque<f64>>,
    stats: CoordinateStats,
    rng: CoordinateRng,
}

impl CoordinateClient {
    /// A client at the origin. `seed` drives the random direction picked when two
    /// coordinates coincide. A `dimensionality` or `latency_filter_size` of 0 is raised to 1.
    pub fn new(mut cfg: CoordinateConfig, seed: u64) -> Self {
        cfg.dimensionality = cfg.dimensionality.max(1);
        cfg.latency_filter_size = cfg.latency_filter_size.max(1);
        Self {
            coord: new_coordinate(&cfg),
            origin: new_coordinate(&cfg),
            adjustment_index: 0,
            adjustment_samples: vec![0.0; cfg.adjustment_window_size],
            latency_samples: HashMap::new(),
            stats: CoordinateStats::default(),
            rng: CoordinateRng::new(seed),
            cfg,
        }
    }

    /// The configuration in use.
    pub fn config(&self) -> &CoordinateConfig {
        &self.cfg
    }

    /// A copy of our current coordinate.
    pub fn get_coordinate(&self) -> Coordinate {
        self.coord.clone()
    }

    /// Forces our coordinate to a known state (it must be compatible and valid).
    pub fn set_coordinate(&mut self, c: Coordinate) -> Result<(), String> {
        self.check(&c)?;
        self.coord = c;
        Ok(())
    }

    /// Drops the RTT samples kept for `node`.
    pub fn forget_node(&mut self, node: &str) {
        self.latency_samples.remove(node);
    }

    /// Counters (currently the number of resets).
    pub fn stats(&self) -> CoordinateStats {
        self.stats
    }

    /// Estimated RTT from our coordinate to `other`.
    pub fn distance_to(&self, other: &Coordinate) -> Duration {
        distance_to(&self.coord, other)
    }

    fn check(&self, c: &Coordinate) -> Result<(), String> {
        if !is_compatible_with(&self.coord, c) {
            return Err("dimensions aren't compatible".to_string());
        }
        if !is_valid(c) {
            return Err("coordinate is invalid".to_string());
        }
        Ok(())
    }

    /// Folds one observation — peer `node` at coordinate `other`, measured round trip time
    /// `rtt` — into our coordinate and returns the new coordinate. Rejects an incompatible or
    /// invalid `other` and an RTT above 10 s (with Go Serf's error strings); a zero RTT is
    /// accepted.
    pub fn update(
        &mut self,
        node: &str,
        other: &Coordinate,
        rtt: Duration,
    ) -> Result<Coordinate, String> {
        self.check(other)?;
        if rtt > MAX_RTT {
            // Go's message, trailing space included.
            return Err(format!(
                "round trip time not in valid range, duration {} is not a positive value less than {} ",
                go_duration_string(rtt),
                go_duration_string(MAX_RTT)
            ));
        }
        let rtt_seconds = self.latency_filter(node, rtt.as_secs_f64());
        self.update_vivaldi(other, rtt_seconds);
        self.update_adjustment(other, rtt_seconds);
        self.update_gravity();
        if !is_valid(&self.coord) {
            self.stats.resets += 1;
            self.coord = new_coordinate(&self.cfg);
        }
        Ok(self.coord.clone())
    }

    /// Records a sample for `node` and returns the median of its last few samples.
    fn latency_filter(&mut self, node: &str, rtt_seconds: f64) -> f64 {
        let samples = self.latency_samples.entry(node.to_string()).or_default();
        samples.push_back(rtt_seconds);
        while samples.len() > self.cfg.latency_filter_size {
            samples.pop_front();
        }
        let mut sorted: Vec<f64> = samples.iter().copied().collect();
        sorted.sort_by(f64::total_cmp);
        sorted.get(sorted.len() / 2).copied().unwrap_or(rtt_seconds)
    }

    /// The Vivaldi step: update the error estimate and move towards or away from `other`.
    fn update_vivaldi(&mut self, other: &Coordinate, rtt_seconds: f64) {
        let dist = distance_seconds(&self.coord, other);
        let rtt = if rtt_seconds < ZERO_THRESHOLD {
            ZERO_THRESHOLD
        } else {
            rtt_seconds
        };
        let wrongness = (dist - rtt).abs() / rtt;
        let mut total_error = self.coord.error + other.error;
        if total_error < ZERO_THRESHOLD {
            total_error = ZERO_THRESHOLD;
        }
        let weight = self.coord.error / total_error;
        let ce = self.cfg.vivaldi_ce * weight;
        self.coord.error = ce * wrongness + self.coord.error * (1.0 - ce);
        if self.coord.error > self.cfg.vivaldi_error_max {
            self.coord.error = self.cfg.vivaldi_error_max;
        }
        let force = self.cfg.vivaldi_cc * weight * (rtt - dist);
        self.coord = apply_force(&self.cfg, &self.coord, force, other, &mut self.rng);
    }

    /// Updates the adjustment term from a sliding window of `rtt - raw distance` samples.
    fn update_adjustment(&mut self, other: &Coordinate, rtt_seconds: f64) {
        let window = self.adjustment_samples.len();
        if window == 0 {
            return;
        }
        let sample = rtt_seconds - raw_distance(&self.coord, other);
        if let Some(slot) = self.adjustment_samples.get_mut(self.adjustment_index) {
            *slot = sample;
        }
        self.adjustment_index = (self.adjustment_index + 1) % window;
        let sum = self.adjustment_samples.iter().fold(0.0, |acc, s| acc + s);
        self.coord.adjustment = sum / (2.0 * window as f64);
    }

    /// Pulls the coordinate slightly towards the origin to counter drift.
    fn update_gravity(&mut self) {
        let dist = distance_seconds(&self.origin, &self.coord);
        let ratio = dist / self.cfg.gravity_rho;
        let force = -(ratio * ratio);
        self.coord = apply_force(&self.cfg, &self.coord, force, &self.origin, &mut self.rng);
    }
}

/// Formats a duration like Go's `time.Duration.String` ("0s", "1.5ms", "11s", "1h0m0s").
fn go_duration_string(d: Duration) -> String {
    /// `n / 10^prec` with the remainder as trimmed decimal fraction.
    fn with_fraction(n: u128, prec: u32) -> String {
        let unit = 10u128.pow(prec);
        let (int, frac) = (n / unit, n % unit);
        if frac == 0 {
            return int.to_string();
        }
        let digits = format!("{frac:0width$}", width = prec as usize);
        format!("{int}.{}", digits.trim_end_matches('0'))
    }
    let n = d.as_nanos();
    if n == 0 {
        return "0s".to_string();
    }
    if n < 1_000 {
        return format!("{n}ns");
    }
    if n < 1_000_000 {
        return format!("{}\u{b5}s", with_fraction(n, 3));
    }
    if n < 1_000_000_000 {
        return format!("{}ms", with_fraction(n, 6));
    }
    let total_secs = n / 1_000_000_000;
    let total_mins = total_secs / 60;
    let hours = total_mins / 60;
    let mut out = String::new();
    if hours > 0 {
        let _ = write!(out, "{hours}h");
    }
    if total_mins > 0 {
        let _ = write!(out, "{}m", total_mins % 60);
    }
    let secs_and_frac = with_fraction((total_secs % 60) * 1_000_000_000 + n % 1_000_000_000, 9);
    let _ = write!(out, "{secs_and_frac}s");
    out
}

#[cfg(test)]
mod tests;
