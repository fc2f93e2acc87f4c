//! Timestamps as Ganeti's CLI prints them, in the local time zone.

use serde_json::Value;

use crate::tz::Zone;

/// A broken-down UTC time.
struct Civil {
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    min: u32,
    sec: u32,
    weekday: u32, // 0 = Sunday
}

fn civil(secs: i64) -> Civil {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    Civil {
        year,
        month,
        day,
        hour: (rem / 3600) as u32,
        min: ((rem % 3600) / 60) as u32,
        sec: (rem % 60) as u32,
        weekday: (days + 4).rem_euclid(7) as u32,
    }
}

/// Timestamps beyond ±3000 years are clamped (they only come from bad data).
const MAX_SECS: f64 = 1e11;

fn in_zone(zone: &Zone, secs: f64) -> Civil {
    let t = secs.clamp(-MAX_SECS, MAX_SECS).floor() as i64;
    civil(t + zone.offset_at(t))
}

/// `%Y-%m-%d %H:%M:%S` local time, as Ganeti's `FormatTime` without
/// microseconds.
pub fn format_time(secs: f64) -> String {
    format_time_in(crate::tz::local(), secs)
}

/// `%Y-%m-%d %H:%M:%S` in `zone`.
pub fn format_time_in(zone: &Zone, secs: f64) -> String {
    let c = in_zone(zone, secs);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        c.year, c.month, c.day, c.hour, c.min, c.sec
    )
}

/// A time field value: seconds (number) or "N/A" for anything else.
pub fn format_time_value(v: &Value) -> String {
    match v.as_f64() {
        Some(s) => format_time(s),
        None => "N/A".into(),
    }
}

/// A `[sec, usec]` timestamp as `%Y-%m-%d %H:%M:%S.uuuuuu`; "?" if the
/// value has another shape (Ganeti's `FormatTimestamp`).
pub fn format_timestamp(v: &Value) -> String {
    format_timestamp_in(crate::tz::local(), v)
}

/// [`format_timestamp`] in `zone`.
pub fn format_timestamp_in(zone: &Zone, v: &Value) -> String {
    match timestamp_parts(v) {
        Some((sec, usec)) => format!("{}.{:06}", format_time_in(zone, sec as f64), usec),
        None => "?".into(),
    }
}

/// Splits a `[sec, usec]` timestamp.
pub fn timestamp_parts(v: &Value) -> Option<(i64, i64)> {
    match v.as_array().map(Vec::as_slice) {
        Some([s, u]) => Some((s.as_i64()?, u.as_i64()?)),
        _ => None,
    }
}

/// `time.ctime()` (local time): `Sun Nov 22 19:48:25 2026`.
pub fn ctime(secs: f64) -> String {
    ctime_in(crate::tz::local(), secs)
}

/// `time.ctime()` in `zone`.
pub fn ctime_in(zone: &Zone, secs: f64) -> String {
    const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let c = in_zone(zone, secs);
    format!(
        "{} {} {:>2} {:02}:{:02}:{:02} {}",
        DAYS[c.weekday as usize],
        MONTHS[(c.month - 1) as usize],
        c.day,
        c.hour,
        c.min,
        c.sec,
        c.year
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn formats_utc_times() {
        let utc = Zone::utc();
        assert_eq!(format_time_in(&utc, 0.0), "1970-01-01 00:00:00");
        assert_eq!(format_time_in(&utc, 1_795_376_905.0), "2026-11-22 19:48:25");
        assert_eq!(format_time_in(&utc, 951_782_400.0), "2000-02-29 00:00:00");
    }

    #[test]
    fn formats_times_in_a_zone() {
        let paris =
            Zone::from_rule(crate::tz::PosixRule::parse("CET-1CEST,M3.5.0,M10.5.0/3").unwrap());
        assert_eq!(
            format_time_in(&paris, 1_795_376_905.0),
            "2026-11-22 20:48:25"
        );
        assert_eq!(
            format_time_in(&paris, 1_782_864_000.0),
            "2026-07-01 02:00:00"
        );
        assert_eq!(
            ctime_in(&paris, 1_795_376_905.0),
            "Sun Nov 22 20:48:25 2026"
        );
    }

    #[test]
    fn formats_timestamps_with_microseconds() {
        let utc = Zone::utc();
        assert_eq!(
            format_timestamp_in(&utc, &json!([1_795_376_905, 42])),
            "2026-11-22 19:48:25.000042"
        );
        assert_eq!(format_timestamp(&json!(null)), "?");
    }

    #[test]
    fn absurd_times_do_not_panic() {
        let paris =
            Zone::from_rule(crate::tz::PosixRule::parse("CET-1CEST,M3.5.0,M10.5.0/3").unwrap());
        for t in [f64::MAX, f64::MIN, f64::NAN, 1e300, -1e300] {
            let _ = format_time_in(&paris, t);
            let _ = ctime_in(&paris, t);
        }
        assert_eq!(format_time_value(&json!("x")), "N/A");
    }

    #[test]
    fn ctime_pads_the_day() {
        let utc = Zone::utc();
        assert_eq!(ctime_in(&utc, 1_795_376_905.0), "Sun Nov 22 19:48:25 2026");
        assert_eq!(ctime_in(&utc, 0.0), "Thu Jan  1 00:00:00 1970");
    }
}
