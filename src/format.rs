//! Human-readable sizes, durations and rates, and parsing of size arguments.

use std::time::Duration;

/// `1536` → `1.50 KiB`.
pub fn bytes(n: u64) -> String {
    humansize::format_size(n, humansize::BINARY)
}

/// Bytes per second over `elapsed`, e.g. `112.40 MiB/s`.
pub fn rate(bytes_done: u64, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64();
    if secs <= 0.0 {
        return "-".into();
    }
    format!("{}/s", bytes((bytes_done as f64 / secs) as u64))
}

/// A duration rounded for people: `850ms`, `12.3s`, `4m 05s`, `2h 03m`.
pub fn duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let secs = d.as_secs_f64();
    if secs < 60.0 {
        return format!("{secs:.1}s");
    }
    let whole = d.as_secs();
    if whole < 3600 {
        return format!("{}m {:02}s", whole / 60, whole % 60);
    }
    format!("{}h {:02}m", whole / 3600, (whole % 3600) / 60)
}

/// Parses `5M`, `64KiB`, `1.5 GB`, `4096`. Every unit is binary (`5M` = `5MB` =
/// `5MiB` = 5 × 1024²), as rsync and most people mean them for block and part sizes.
pub fn parse_size(text: &str) -> Result<u64, String> {
    parse_size::Config::new()
        .with_binary()
        .parse_size(text.trim())
        .map_err(|e| format!("`{text}` is not a size ({e}); use e.g. 64KiB, 5M or 1GiB"))
}

/// An integer with thousands separators: `1234567` → `1,234,567`.
/// One side of a running scan: entries and bytes so far, the rate, and the
/// listing requests in flight (when any).
pub fn scan_side(entries: u64, bytes_seen: u64, listing: u64, elapsed: Duration) -> String {
    let rate = entries as f64 / elapsed.as_secs_f64().max(0.001);
    let mut line = format!(
        "{} entries ({}), {}/s",
        count(entries),
        bytes(bytes_seen),
        count(rate as u64)
    );
    if listing > 0 {
        line.push_str(&format!(", {listing} listing requests in flight"));
    }
    line
}

pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// An mtime in nanoseconds since the epoch as RFC 3339 (UTC, to the nanosecond).
pub fn mtime(mtime_ns: i64) -> String {
    let Ok(ns) = u64::try_from(mtime_ns) else {
        return format!("{mtime_ns}ns before the epoch");
    };
    let t = std::time::UNIX_EPOCH + Duration::from_nanos(ns);
    humantime::format_rfc3339_nanos(t).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_binary_for_short_units() {
        assert_eq!(parse_size("64KiB"), Ok(64 * 1024));
        assert_eq!(parse_size("5M"), Ok(5 * 1024 * 1024));
        assert_eq!(parse_size("5 MiB"), Ok(5 * 1024 * 1024));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("1MB"), Ok(1024 * 1024));
        assert!(parse_size("five").is_err());
    }

    #[test]
    fn human_output() {
        assert_eq!(bytes(1536), "1.50 KiB");
        assert_eq!(count(1234567), "1,234,567");
        assert_eq!(count(12), "12");
        assert_eq!(duration(Duration::from_millis(850)), "850ms");
        assert_eq!(duration(Duration::from_secs(245)), "4m 05s");
        assert_eq!(
            mtime(1_500_000_000_123_456_789),
            "2017-07-14T02:40:00.123456789Z"
        );
    }
}
