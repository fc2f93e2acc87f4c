//! Sizes in MiB, as Ganeti parses (`512M`, `1.5G`, `2t`) and prints them
//! (`h` human-readable, `m`, `g`, `t`).

use std::fmt;

/// A size that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnitError {
    #[error("Invalid format")]
    InvalidFormat,
    #[error("Unknown unit: {0}")]
    UnknownUnit(String),
}

/// Parses `NUMBER[.NUMBER] [UNIT]` into MiB, rounded up to a multiple of 4,
/// as Ganeti's `ParseUnit`. Without a unit the number is in MiB.
pub fn parse_unit(input: &str) -> Result<u64, UnitError> {
    // ^([.\d]+)\s*([a-zA-Z]+)?$
    let num_end = input
        .char_indices()
        .find(|(_, c)| !c.is_ascii_digit() && *c != '.')
        .map(|(i, _)| i)
        .unwrap_or(input.len());
    let (num, rest) = input.split_at(num_end);
    let unit = rest.trim_start();
    if num.is_empty() || !unit.chars().all(|c| c.is_ascii_alphabetic()) {
        return Err(UnitError::InvalidFormat);
    }
    let value: f64 = num.parse().map_err(|_| UnitError::InvalidFormat)?;
    let factor = match unit.to_ascii_lowercase().as_str() {
        "" | "m" | "mb" | "mib" => 1.0,
        "g" | "gb" | "gib" => 1024.0,
        "t" | "tb" | "tib" => 1024.0 * 1024.0,
        _ => return Err(UnitError::UnknownUnit(unit.to_string())),
    };
    let value = (value * factor).ceil();
    if !value.is_finite() || value > (u64::MAX / 2) as f64 {
        return Err(UnitError::InvalidFormat);
    }
    let mut v = value as u64;
    let rem = v % 4;
    if rem > 0 {
        v += 4 - rem;
    }
    Ok(v)
}

/// The unit used to print sizes (`--units`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Unit {
    /// Human-readable: M below 1 GiB, G below 1 TiB, T above.
    H,
    M,
    G,
    T,
}

impl fmt::Display for Unit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Unit::H => "h",
            Unit::M => "m",
            Unit::G => "g",
            Unit::T => "t",
        })
    }
}

/// The unit used when none was asked for: human-readable on a table,
/// MiB when a separator is given (Ganeti's rule).
pub fn default_unit(separator: Option<&str>) -> Unit {
    match separator {
        Some(s) if !s.is_empty() => Unit::M,
        _ => Unit::H,
    }
}

/// Formats a size in MiB like Ganeti's `FormatUnit`.
pub fn format_unit(mib: f64, unit: Unit) -> String {
    let human = unit == Unit::H;
    if unit == Unit::M || (human && mib < 1024.0) {
        let s = format!("{:.0}", mib);
        if human {
            format!("{s}M")
        } else {
            s
        }
    } else if unit == Unit::G || (human && mib < 1024.0 * 1024.0) {
        let s = format!("{:.1}", mib / 1024.0);
        if human {
            format!("{s}G")
        } else {
            s
        }
    } else {
        let s = format!("{:.1}", mib / 1024.0 / 1024.0);
        if human {
            format!("{s}T")
        } else {
            s
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sizes_with_units() {
        assert_eq!(parse_unit("512"), Ok(512));
        assert_eq!(parse_unit("512M"), Ok(512));
        assert_eq!(parse_unit("1G"), Ok(1024));
        assert_eq!(parse_unit("1g"), Ok(1024));
        assert_eq!(parse_unit("1.5G"), Ok(1536));
        assert_eq!(parse_unit("2T"), Ok(2 * 1024 * 1024));
        assert_eq!(parse_unit("1 GiB"), Ok(1024));
        assert_eq!(parse_unit("10mb"), Ok(12));
    }

    #[test]
    fn rounds_up_to_multiple_of_four() {
        assert_eq!(parse_unit("1"), Ok(4));
        assert_eq!(parse_unit("0.5"), Ok(4));
        assert_eq!(parse_unit("1025"), Ok(1028));
        assert_eq!(parse_unit("0"), Ok(0));
    }

    #[test]
    fn rejects_bad_sizes() {
        assert_eq!(parse_unit("abc"), Err(UnitError::InvalidFormat));
        assert_eq!(parse_unit(""), Err(UnitError::InvalidFormat));
        assert_eq!(parse_unit("1..2G"), Err(UnitError::InvalidFormat));
        assert_eq!(parse_unit(" 1G"), Err(UnitError::InvalidFormat));
        assert_eq!(parse_unit("-1G"), Err(UnitError::InvalidFormat));
        assert_eq!(parse_unit("1X"), Err(UnitError::UnknownUnit("X".into())));
    }

    #[test]
    fn formats_like_ganeti() {
        assert_eq!(format_unit(512.0, Unit::H), "512M");
        assert_eq!(format_unit(1024.0, Unit::H), "1.0G");
        assert_eq!(format_unit(1536.0, Unit::H), "1.5G");
        assert_eq!(format_unit(3.0 * 1024.0 * 1024.0, Unit::H), "3.0T");
        assert_eq!(format_unit(1536.0, Unit::M), "1536");
        assert_eq!(format_unit(1536.0, Unit::G), "1.5");
        assert_eq!(format_unit(1048576.0, Unit::T), "1.0");
    }

    #[test]
    fn default_unit_depends_on_separator() {
        assert_eq!(default_unit(None), Unit::H);
        assert_eq!(default_unit(Some(":")), Unit::M);
        assert_eq!(default_unit(Some("")), Unit::H);
    }
}
