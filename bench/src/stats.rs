//! Latency histograms (HdrHistogram, microseconds) and their percentile summaries.

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// The largest latency recorded as itself, in microseconds (10 minutes); larger ones are
/// clamped to it.
const MAX_US: u64 = 600_000_000;

/// A latency histogram in microseconds, three significant digits.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_US, 3).expect("the bounds are valid constants")
}

/// Records one latency, clamped to the histogram's range.
pub fn record(histogram: &mut Histogram<u64>, micros: u64) {
    histogram.saturating_record(micros.clamp(1, MAX_US));
}

/// Every recorded value of a histogram with its count, as `(µs, count)` in ascending order (each
/// value the highest of its bucket, three significant digits): what a report carries so that the
/// histograms of several benchmark processes can be merged into one distribution.
pub fn recorded(histogram: &Histogram<u64>) -> Vec<(u64, u64)> {
    histogram
        .iter_recorded()
        .map(|v| (v.value_iterated_to(), v.count_at_value()))
        .collect()
}

/// Percentiles of a histogram, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// How many values were recorded.
    pub count: u64,
    /// Mean.
    pub mean: f64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Largest value.
    pub max: f64,
}

impl Summary {
    /// Summarises a microsecond histogram in milliseconds.
    pub fn of(histogram: &Histogram<u64>) -> Self {
        if histogram.is_empty() {
            return Self::default();
        }
        let ms = |micros: u64| micros as f64 / 1000.0;
        Self {
            count: histogram.len(),
            mean: histogram.mean() / 1000.0,
            p50: ms(histogram.value_at_quantile(0.50)),
            p90: ms(histogram.value_at_quantile(0.90)),
            p99: ms(histogram.value_at_quantile(0.99)),
            p999: ms(histogram.value_at_quantile(0.999)),
            max: ms(histogram.max()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_a_uniform_spread() {
        let mut h = histogram();
        for micros in 1..=10_000 {
            record(&mut h, micros);
        }
        let s = Summary::of(&h);
        assert_eq!(s.count, 10_000);
        let close = |a: f64, b: f64| (a - b).abs() <= b * 0.002;
        assert!(close(s.p50, 5.0), "{s:?}");
        assert!(close(s.p90, 9.0), "{s:?}");
        assert!(close(s.p99, 9.9), "{s:?}");
        assert!(close(s.p999, 9.99), "{s:?}");
        assert!(close(s.max, 10.0), "{s:?}");
        assert!(close(s.mean, 5.0005), "{s:?}");
    }

    #[test]
    fn recorded_values_keep_every_count() {
        assert!(recorded(&histogram()).is_empty());
        let mut h = histogram();
        for micros in [5, 5, 1000, 123_456] {
            record(&mut h, micros);
        }
        let values = recorded(&h);
        assert_eq!(values.iter().map(|&(_, n)| n).sum::<u64>(), 4);
        assert_eq!(values[0], (5, 2));
        assert_eq!(values[1], (1000, 1));
        // Three significant digits: 123,456 µs falls in a bucket of width 64 at that size.
        assert!((123_456..123_456 + 64).contains(&values[2].0), "{values:?}");
    }

    #[test]
    fn empty_and_out_of_range_values() {
        assert_eq!(Summary::of(&histogram()), Summary::default());
        let mut h = histogram();
        record(&mut h, 0);
        record(&mut h, u64::MAX);
        assert_eq!(h.len(), 2);
        assert_eq!(h.min(), 1);
        assert!(h.max() >= MAX_US);
    }
}
