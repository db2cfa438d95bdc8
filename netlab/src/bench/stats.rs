//! Summaries of raw samples: median/min/max per datapath, and ratios between
//! datapaths taken round by round (the rounds are interleaved, so a ratio
//! within one round compares runs that saw the same machine state).

use serde::Serialize;

/// Median of the values (mean of the two middle ones for an even count).
/// `None` for no values. NaNs sort last and are not expected.
pub fn median(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    Some(if sorted.len() % 2 == 1 {
        sorted[mid]
    } else {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    })
}

/// Median, spread and count of one datapath's samples for one figure.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Summary {
    pub median: f64,
    pub min: f64,
    pub max: f64,
    pub n: usize,
}

impl Summary {
    pub fn of(values: &[f64]) -> Option<Summary> {
        let median = median(values)?;
        let min = values.iter().copied().fold(f64::INFINITY, f64::min);
        let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        Some(Summary {
            median,
            min,
            max,
            n: values.len(),
        })
    }
}

/// `numerator / denominator` per round, over the rounds where both have a
/// sample and the denominator is not zero.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RatioSummary {
    /// `(round, ratio)` pairs.
    pub per_round: Vec<RoundRatio>,
    /// Median of `per_round`; `None` when no round had both samples.
    pub median: Option<f64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct RoundRatio {
    pub round: u32,
    pub ratio: f64,
}

/// Ratios of two datapaths' samples round by round. Inputs are `(round,
/// value)`; a round missing on either side is left out.
pub fn round_ratios(numerator: &[(u32, f64)], denominator: &[(u32, f64)]) -> RatioSummary {
    let per_round: Vec<RoundRatio> = numerator
        .iter()
        .filter_map(|&(round, num)| {
            let (_, den) = denominator.iter().find(|(r, _)| *r == round)?;
            (*den != 0.0).then(|| RoundRatio {
                round,
                ratio: num / den,
            })
        })
        .collect();
    let ratios: Vec<f64> = per_round.iter().map(|r| r.ratio).collect();
    RatioSummary {
        median: median(&ratios),
        per_round,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_odd_even_empty() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[7.0]), Some(7.0));
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[10.0, -1.0]), Some(4.5));
    }

    #[test]
    fn summary_spread() {
        let s = Summary::of(&[5.0, 1.0, 9.0, 3.0]).unwrap();
        assert_eq!(
            s,
            Summary {
                median: 4.0,
                min: 1.0,
                max: 9.0,
                n: 4
            }
        );
        assert_eq!(Summary::of(&[]), None);
    }

    #[test]
    fn ratios_pair_rounds_and_skip_missing() {
        let ebpf = [(1, 10.0), (2, 12.0), (3, 9.0), (4, 1.0)];
        let kernel = [(1, 5.0), (2, 4.0), (3, 9.0), (5, 1.0)];
        let r = round_ratios(&ebpf, &kernel);
        let got: Vec<(u32, f64)> = r.per_round.iter().map(|x| (x.round, x.ratio)).collect();
        assert_eq!(got, vec![(1, 2.0), (2, 3.0), (3, 1.0)]);
        assert_eq!(r.median, Some(2.0));
        // Median of ratios, not ratio of medians.
        let a = [(1, 1.0), (2, 100.0)];
        let b = [(1, 2.0), (2, 25.0)];
        assert_eq!(round_ratios(&a, &b).median, Some((0.5 + 4.0) / 2.0));
    }

    #[test]
    fn ratios_ignore_zero_denominator_and_empty() {
        let r = round_ratios(&[(1, 3.0)], &[(1, 0.0)]);
        assert!(r.per_round.is_empty());
        assert_eq!(r.median, None);
        assert_eq!(round_ratios(&[], &[(1, 1.0)]).median, None);
    }
}
