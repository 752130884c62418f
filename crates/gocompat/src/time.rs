//! Time as Go prints it: the `log` package's `YYYY/MM/DD HH:MM:SS` prefix and
//! `time.Time.String()`, both in UTC, from one civil-date conversion.

/// A UTC civil date and time of day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Civil {
    /// Year.
    pub year: i64,
    /// Month, 1-12.
    pub month: u32,
    /// Day of the month, 1-31.
    pub day: u32,
    /// Hour, 0-23.
    pub hour: u32,
    /// Minute, 0-59.
    pub minute: u32,
    /// Second, 0-59.
    pub second: u32,
}

/// Converts seconds since the Unix epoch to a UTC civil date and time of day.
pub fn civil_utc(secs: i64) -> Civil {
    let days = secs.div_euclid(86400);
    let rem = secs.rem_euclid(86400);
    // Civil date from days since the epoch (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    // All of these are small and non-negative by construction.
    let small = |v: i64| u32::try_from(v).unwrap_or(0);
    Civil {
        year: y,
        month: small(m),
        day: small(d),
        hour: small(rem / 3600),
        minute: small((rem / 60) % 60),
        second: small(rem % 60),
    }
}

/// Go's `log` timestamp for `secs` since the Unix epoch: `YYYY/MM/DD HH:MM:SS` (UTC).
pub fn log_timestamp(secs: i64) -> String {
    let c = civil_utc(secs);
    format!(
        "{:04}/{:02}/{:02} {:02}:{:02}:{:02}",
        c.year, c.month, c.day, c.hour, c.minute, c.second
    )
}

/// Go's `time.Time.String()` for a UTC time without a monotonic reading:
/// `2006-01-02 15:04:05.999999999 +0000 UTC`.
pub fn time_string(unix_ns: i64) -> String {
    let secs = unix_ns.div_euclid(1_000_000_000);
    let frac = unix_ns.rem_euclid(1_000_000_000);
    let c = civil_utc(secs);
    let mut s = format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        c.year, c.month, c.day, c.hour, c.minute, c.second
    );
    if frac != 0 {
        let digits = format!("{frac:09}");
        s.push('.');
        s.push_str(digits.trim_end_matches('0'));
    }
    s.push_str(" +0000 UTC");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_795_393_620 * 1_000_000_000;

    #[test]
    fn go_time_strings() {
        assert_eq!(time_string(0), "1970-01-01 00:00:00 +0000 UTC");
        assert_eq!(time_string(T0), "2026-11-23 00:27:00 +0000 UTC");
        assert_eq!(
            time_string(T0 + 9_944_820_021),
            "2026-11-23 00:27:09.944820021 +0000 UTC"
        );
        assert_eq!(
            time_string(T0 + 120_000),
            "2026-11-23 00:27:00.00012 +0000 UTC"
        );
        // 2024-02-29 12:00:00 UTC (leap day).
        assert_eq!(
            time_string(1_709_208_000 * 1_000_000_000),
            "2024-02-29 12:00:00 +0000 UTC"
        );
    }

    #[test]
    fn log_timestamps() {
        assert_eq!(log_timestamp(0), "1970/01/01 00:00:00");
        assert_eq!(log_timestamp(1_709_208_000), "2024/02/29 12:00:00");
    }
}
