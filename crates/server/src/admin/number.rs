//! Numbers as ZooKeeper prints them in four-letter words and admin commands.
//!
//! * [`java_double`]: Java's `Double.toString` — `0.0`, `3.7333`, `1.0E7`, `5.0E-4`.
//! * [`zk_avg`]: ZooKeeper's averages (`ServerStats.getAvgLatency`, the `avg_*` values
//!   of its `AvgMinMaxCounter` summaries): the mean rounded half-up to 4 decimals, so
//!   `stat` prints `Latency min/avg/max: 0/3.7333/28`, not `3.7333333333333334`.
//!
//! Owns only these conversions; pure functions.

/// Java's `Double.toString(v)`: the shortest digits that read back as `v`; plain
/// notation with at least one fraction digit for 10^-3 <= |v| < 10^7, otherwise
/// `d.dddE<exp>`; `NaN`, `Infinity`, `-Infinity`.
pub fn java_double(v: f64) -> String {
    if v.is_nan() {
        return "NaN".to_owned();
    }
    if v.is_infinite() {
        return if v > 0.0 { "Infinity" } else { "-Infinity" }.to_owned();
    }
    let a = v.abs();
    if a == 0.0 || (1e-3..1e7).contains(&a) {
        // Rust's Debug form is the shortest round-trip form, plain in this range.
        let s = format!("{v:?}");
        return if s.contains('.') { s } else { format!("{s}.0") };
    }
    // Rust's `{:e}` gives the shortest digits too: `5e-4`, `1.2345e7`.
    let s = format!("{v:e}");
    let (mantissa, exp) = s.split_once('e').unwrap_or((s.as_str(), "0"));
    if mantissa.contains('.') {
        format!("{mantissa}E{exp}")
    } else {
        format!("{mantissa}.0E{exp}")
    }
}

/// `BigDecimal(v).setScale(4, RoundingMode.HALF_UP).doubleValue()`: `v` rounded to 4
/// decimals, halves away from zero, decided on `v`'s exact binary value.
pub fn round_half_up_4(v: f64) -> f64 {
    // From 2^50 on a double has at most 2 fraction digits: nothing to round.
    if !v.is_finite() || v.abs() >= 1e15 {
        return v;
    }
    // 1100 digits print any f64 exactly (at most 1074 fraction digits).
    let exact = format!("{:.1100}", v.abs());
    let (int_part, frac) = exact.split_once('.').unwrap_or((exact.as_str(), ""));
    let int: u64 = int_part.parse().unwrap_or(0);
    let digit = |i: usize| u64::from(frac.as_bytes().get(i).map_or(0, |b| b - b'0'));
    let frac4 = (0..4).fold(0u64, |acc, i| acc * 10 + digit(i));
    let scaled = int * 10_000 + frac4 + u64::from(digit(4) >= 5);
    let rounded: f64 = format!("{}.{:04}", scaled / 10_000, scaled % 10_000)
        .parse()
        .unwrap_or(v.abs());
    if v.is_sign_negative() {
        -rounded
    } else {
        rounded
    }
}

/// ZooKeeper's average of `count` values summing to `sum`: 0.0 when there are none,
/// else the mean rounded half-up to 4 decimals.
pub fn zk_avg(sum: f64, count: u64) -> f64 {
    if count == 0 {
        0.0
    } else {
        round_half_up_4(sum / count as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_double_matches_double_to_string() {
        for (v, want) in [
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (1.0, "1.0"),
            (1.5, "1.5"),
            (3.7333, "3.7333"),
            (0.1333, "0.1333"),
            (0.001, "0.001"),
            (0.0005, "5.0E-4"),
            (0.00012345, "1.2345E-4"),
            (9_999_999.0, "9999999.0"),
            (10_000_000.0, "1.0E7"),
            (12_345_678.9, "1.23456789E7"),
            (-2.5, "-2.5"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "Infinity"),
            (f64::NEG_INFINITY, "-Infinity"),
        ] {
            assert_eq!(java_double(v), want, "{v:e}");
        }
    }

    #[test]
    fn averages_are_rounded_half_up_to_four_decimals() {
        // Values seen from ZooKeeper 3.8's stat and mntr.
        assert_eq!(zk_avg(56.0, 15), 3.7333);
        assert_eq!(zk_avg(1.0, 15), 0.0667);
        assert_eq!(zk_avg(17.0, 15), 1.1333);
        assert_eq!(zk_avg(6.0, 7), 0.8571);
        assert_eq!(zk_avg(41.0, 8), 5.125);
        assert_eq!(zk_avg(2.0, 15), 0.1333);
        assert_eq!(zk_avg(0.0, 0), 0.0);
        assert_eq!(zk_avg(29.0, 1), 29.0);
        // Exact halves go up; a value just under a half stays down.
        assert_eq!(round_half_up_4(0.00005), 0.0001);
        assert_eq!(
            round_half_up_4(1.23445),
            1.2345,
            "1.23445 is 1.234450000…047 in binary"
        );
        assert_eq!(
            round_half_up_4(0.33335),
            0.3333,
            "0.33335 is 0.333349999…797 in binary"
        );
        assert_eq!(round_half_up_4(0.5), 0.5);
        assert_eq!(round_half_up_4(-0.66666), -0.6667);
        assert_eq!(round_half_up_4(2.0e15), 2.0e15);
        assert_eq!(java_double(zk_avg(56.0, 15)), "3.7333");
    }
}
