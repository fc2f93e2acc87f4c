//! The local time zone, as Ganeti's CLI uses it (Python's `time.localtime`):
//! `TZ` (a zone name, a file, or a POSIX rule such as `CET-1CEST,M3.5.0,M10.5.0/3`)
//! or `/etc/localtime`, read from the system's TZif files. Anything that
//! cannot be read means UTC.

use std::sync::OnceLock;

/// A POSIX TZ rule: standard offset, and optionally DST with its dates.
#[derive(Debug, Clone, PartialEq)]
pub struct PosixRule {
    /// Seconds east of UTC outside DST.
    pub std_offset: i64,
    pub dst: Option<DstRule>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DstRule {
    /// Seconds east of UTC during DST.
    pub offset: i64,
    pub start: RuleDate,
    pub end: RuleDate,
}

/// A transition date of a POSIX rule and its local time of day (seconds).
#[derive(Debug, Clone, PartialEq)]
pub enum RuleDate {
    /// `Mm.w.d`: day `d` (0 = Sunday) of week `w` (5 = last) of month `m`.
    MonthWeekDay {
        month: u32,
        week: u32,
        day: u32,
        time: i64,
    },
    /// `Jn`: day of year 1..=365, February 29 never counted.
    Julian1 { day: u32, time: i64 },
    /// `n`: day of year 0..=365, February 29 counted.
    Julian0 { day: u32, time: i64 },
}

/// A time zone: transitions (UTC second, offset) and the rule after them.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Zone {
    transitions: Vec<(i64, i64)>,
    /// Offset before the first transition.
    initial: i64,
    rule: Option<PosixRule>,
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

/// Days since 1970-01-01 of a civil date.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn year_of(secs: i64) -> i64 {
    let days = secs.div_euclid(86_400);
    // Inverse of days_from_civil, year only.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    yoe + era * 400 + i64::from(month <= 2)
}

impl RuleDate {
    /// Local seconds since the epoch of this date in `year`.
    fn local_secs(&self, year: i64) -> i64 {
        match *self {
            RuleDate::MonthWeekDay {
                month,
                week,
                day,
                time,
            } => {
                let first = days_from_civil(year, month, 1);
                let wday_first = (first + 4).rem_euclid(7) as u32;
                let mut mday = 1 + (day + 7 - wday_first) % 7 + (week - 1) * 7;
                let mdays = match month {
                    2 if is_leap(year) => 29,
                    2 => 28,
                    4 | 6 | 9 | 11 => 30,
                    _ => 31,
                };
                while mday > mdays {
                    mday -= 7;
                }
                days_from_civil(year, month, mday) * 86_400 + time
            }
            RuleDate::Julian1 { day, time } => {
                let mut d = i64::from(day) - 1;
                if is_leap(year) && day >= 60 {
                    d += 1;
                }
                (days_from_civil(year, 1, 1) + d) * 86_400 + time
            }
            RuleDate::Julian0 { day, time } => {
                (days_from_civil(year, 1, 1) + i64::from(day)) * 86_400 + time
            }
        }
    }
}

impl PosixRule {
    /// Offset (seconds east of UTC) at UTC time `t`.
    pub fn offset_at(&self, t: i64) -> i64 {
        let Some(dst) = &self.dst else {
            return self.std_offset;
        };
        let year = year_of(t + self.std_offset);
        // Start is given in standard time, end in DST.
        let start = dst.start.local_secs(year) - self.std_offset;
        let end = dst.end.local_secs(year) - dst.offset;
        let in_dst = if start < end {
            t >= start && t < end
        } else {
            t >= start || t < end
        };
        if in_dst {
            dst.offset
        } else {
            self.std_offset
        }
    }

    /// Parses a POSIX TZ string; `None` if it is not one we understand.
    pub fn parse(s: &str) -> Option<PosixRule> {
        let mut p = RuleParser { s, pos: 0 };
        p.name()?;
        let std_offset = -p.offset()?;
        if p.done() {
            return Some(PosixRule {
                std_offset,
                dst: None,
            });
        }
        p.name()?;
        let dst_offset = if p.peek() == Some(',') {
            std_offset + 3600
        } else {
            -p.offset()?
        };
        if !p.eat(',') {
            return None;
        }
        let start = p.date()?;
        if !p.eat(',') {
            return None;
        }
        let end = p.date()?;
        if !p.done() {
            return None;
        }
        Some(PosixRule {
            std_offset,
            dst: Some(DstRule {
                offset: dst_offset,
                start,
                end,
            }),
        })
    }
}

struct RuleParser<'a> {
    s: &'a str,
    pos: usize,
}

impl RuleParser<'_> {
    fn peek(&self) -> Option<char> {
        self.s[self.pos..].chars().next()
    }
    fn done(&self) -> bool {
        self.pos >= self.s.len()
    }
    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.pos += c.len_utf8();
            true
        } else {
            false
        }
    }
    fn name(&mut self) -> Option<()> {
        if self.eat('<') {
            let end = self.s[self.pos..].find('>')?;
            self.pos += end + 1;
            return Some(());
        }
        let n = self.s[self.pos..]
            .chars()
            .take_while(|c| c.is_ascii_alphabetic())
            .count();
        if n < 3 {
            return None;
        }
        self.pos += n;
        Some(())
    }
    fn number(&mut self) -> Option<i64> {
        let n = self.s[self.pos..]
            .chars()
            .take_while(|c| c.is_ascii_digit())
            .count();
        if n == 0 {
            return None;
        }
        let v = self.s[self.pos..self.pos + n].parse().ok()?;
        self.pos += n;
        Some(v)
    }
    /// `[+-]hh[:mm[:ss]]` in seconds, sign as written (west positive).
    fn offset(&mut self) -> Option<i64> {
        let sign = if self.eat('-') {
            -1
        } else {
            self.eat('+');
            1
        };
        let mut v = self.number()? * 3600;
        if self.eat(':') {
            v += self.number()? * 60;
            if self.eat(':') {
                v += self.number()?;
            }
        }
        Some(sign * v)
    }
    fn date(&mut self) -> Option<RuleDate> {
        let date = if self.eat('M') {
            let month = self.number()? as u32;
            self.eat('.').then_some(())?;
            let week = self.number()? as u32;
            self.eat('.').then_some(())?;
            let day = self.number()? as u32;
            if !(1..=12).contains(&month) || !(1..=5).contains(&week) || day > 6 {
                return None;
            }
            RuleDate::MonthWeekDay {
                month,
                week,
                day,
                time: 7200,
            }
        } else if self.eat('J') {
            RuleDate::Julian1 {
                day: self.number()? as u32,
                time: 7200,
            }
        } else {
            RuleDate::Julian0 {
                day: self.number()? as u32,
                time: 7200,
            }
        };
        if self.eat('/') {
            let t = self.offset()?;
            return Some(match date {
                RuleDate::MonthWeekDay {
                    month, week, day, ..
                } => RuleDate::MonthWeekDay {
                    month,
                    week,
                    day,
                    time: t,
                },
                RuleDate::Julian1 { day, .. } => RuleDate::Julian1 { day, time: t },
                RuleDate::Julian0 { day, .. } => RuleDate::Julian0 { day, time: t },
            });
        }
        Some(date)
    }
}

fn be_u32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

impl Zone {
    pub fn utc() -> Zone {
        Zone::default()
    }

    /// A zone given by a POSIX rule only.
    pub fn from_rule(rule: PosixRule) -> Zone {
        Zone {
            rule: Some(rule),
            ..Zone::default()
        }
    }

    /// Parses a TZif file (versions 1 to 4).
    pub fn from_tzif(data: &[u8]) -> Option<Zone> {
        if data.get(..4)? != b"TZif" {
            return None;
        }
        let version = *data.get(4)?;
        let counts = |at: usize| -> Option<[usize; 6]> {
            let mut c = [0usize; 6];
            for (i, v) in c.iter_mut().enumerate() {
                *v = be_u32(data, at + 20 + 4 * i)? as usize;
            }
            Some(c)
        };
        let [isut, isstd, leap, time, typ, chars] = counts(0)?;
        let v1_len = time * 5 + typ * 6 + chars + leap * 8 + isstd + isut;
        let (base, tsize, [_, _, leap, time, typ, chars]) = if version >= b'2' {
            let second = 44 + v1_len;
            (second + 44, 8usize, counts(second)?)
        } else {
            (44usize, 4usize, [isut, isstd, leap, time, typ, chars])
        };
        // Real zones have a few hundred transitions and a dozen types;
        // refuse anything absurd rather than allocate for it.
        if time > 100_000 || typ > 256 || typ == 0 || chars > 4096 || leap > 10_000 {
            return None;
        }
        let times_at = base;
        let idx_at = times_at + time * tsize;
        let types_at = idx_at + time;
        let mut types = Vec::with_capacity(typ);
        for i in 0..typ {
            let at = types_at + i * 6;
            let off = i32::from_be_bytes(data.get(at..at + 4)?.try_into().ok()?);
            let isdst = *data.get(at + 4)? != 0;
            types.push((i64::from(off), isdst));
        }
        let mut transitions = Vec::with_capacity(time);
        for i in 0..time {
            let at = times_at + i * tsize;
            let t = if tsize == 8 {
                i64::from_be_bytes(data.get(at..at + 8)?.try_into().ok()?)
            } else {
                i64::from(i32::from_be_bytes(data.get(at..at + 4)?.try_into().ok()?))
            };
            let ti = *data.get(idx_at + i)? as usize;
            transitions.push((t, types.get(ti)?.0));
        }
        let initial = types
            .iter()
            .find(|(_, dst)| !dst)
            .or(types.first())
            .map(|(o, _)| *o)
            .unwrap_or(0);
        let end = types_at + typ * 6 + chars + leap * (tsize + 4) + isstd + isut;
        let rule = if version >= b'2' {
            data.get(end..)
                .and_then(|f| std::str::from_utf8(f).ok())
                .map(|f| f.trim_matches('\n'))
                .filter(|f| !f.is_empty())
                .and_then(PosixRule::parse)
        } else {
            None
        };
        Some(Zone {
            transitions,
            initial,
            rule,
        })
    }

    /// Offset (seconds east of UTC) at UTC time `t`.
    pub fn offset_at(&self, t: i64) -> i64 {
        match self.transitions.partition_point(|(tt, _)| *tt <= t) {
            0 => {
                if self.transitions.is_empty() {
                    if let Some(r) = &self.rule {
                        return r.offset_at(t);
                    }
                }
                self.initial
            }
            n if n == self.transitions.len() => match &self.rule {
                Some(r) => r.offset_at(t),
                None => self.transitions[n - 1].1,
            },
            n => self.transitions[n - 1].1,
        }
    }

    /// The zone the environment selects.
    pub fn from_env() -> Zone {
        let tz = std::env::var("TZ").ok();
        let spec = tz.as_deref().map(|s| s.strip_prefix(':').unwrap_or(s));
        let file = match spec {
            None => Some("/etc/localtime".to_string()),
            Some("") | Some("UTC") | Some("UTC0") | Some("GMT") => return Zone::utc(),
            Some(s) if s.starts_with('/') => Some(s.to_string()),
            Some(s) if !s.contains("..") => Some(format!("/usr/share/zoneinfo/{s}")),
            Some(_) => None,
        };
        if let Some(zone) = file
            .and_then(|f| std::fs::read(f).ok())
            .and_then(|d| Zone::from_tzif(&d))
        {
            return zone;
        }
        match spec.and_then(PosixRule::parse) {
            Some(rule) => Zone {
                rule: Some(rule),
                ..Zone::default()
            },
            None => Zone::utc(),
        }
    }
}

/// The local zone, read once.
pub fn local() -> &'static Zone {
    static ZONE: OnceLock<Zone> = OnceLock::new();
    ZONE.get_or_init(Zone::from_env)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn posix_rule_switches_at_the_right_utc_times() {
        let r = PosixRule::parse("CET-1CEST,M3.5.0,M10.5.0/3").unwrap();
        // 2026-03-29 00:59:59 UTC is still CET; 01:00:00 UTC is CEST.
        assert_eq!(r.offset_at(1_774_745_999), 3600);
        assert_eq!(r.offset_at(1_774_746_000), 7200);
        // 2026-10-25 00:59:59 UTC is CEST; 01:00:00 UTC is CET again.
        assert_eq!(r.offset_at(1_792_889_999), 7200);
        assert_eq!(r.offset_at(1_792_890_000), 3600);
    }

    #[test]
    fn posix_rule_without_dst_and_southern_hemisphere() {
        assert_eq!(PosixRule::parse("JST-9").unwrap().offset_at(0), 9 * 3600);
        assert_eq!(PosixRule::parse("<-03>3").unwrap().offset_at(0), -3 * 3600);
        let nz = PosixRule::parse("NZST-12NZDT,M9.5.0,M4.1.0/3").unwrap();
        // January is summer (DST) in New Zealand, July is not.
        assert_eq!(nz.offset_at(1_767_225_600), 13 * 3600);
        assert_eq!(nz.offset_at(1_782_864_000), 12 * 3600);
        assert!(PosixRule::parse("nonsense").is_none());
    }

    fn tzif_v2(transitions: &[(i64, u8)], types: &[(i32, u8)], footer: &str) -> Vec<u8> {
        let header = |tsize_block: bool| {
            let mut h = b"TZif2".to_vec();
            h.extend([0u8; 15]);
            let t = if tsize_block { transitions.len() } else { 0 };
            let ty = if tsize_block { types.len() } else { 1 };
            for c in [0, 0, 0, t, ty, if tsize_block { 4 } else { 1 }] {
                h.extend((c as u32).to_be_bytes());
            }
            h
        };
        // A minimal v1 block (one type, one char), then the v2 block.
        let mut d = header(false);
        d.extend([0, 0, 0, 0, 0, 0, 0]);
        d.extend(header(true));
        for (t, _) in transitions {
            d.extend(t.to_be_bytes());
        }
        for (_, i) in transitions {
            d.push(*i);
        }
        for (off, dst) in types {
            d.extend(off.to_be_bytes());
            d.push(*dst);
            d.push(0);
        }
        d.extend(b"ABC\0");
        d.push(b'\n');
        d.extend(footer.as_bytes());
        d.push(b'\n');
        d
    }

    #[test]
    fn tzif_transitions_then_footer_rule() {
        let data = tzif_v2(&[(1000, 1), (2000, 0)], &[(3600, 0), (7200, 1)], "JST-9");
        let z = Zone::from_tzif(&data).unwrap();
        assert_eq!(z.offset_at(0), 3600);
        assert_eq!(z.offset_at(1500), 7200);
        // After the last transition, the footer rule applies.
        assert_eq!(z.offset_at(5000), 9 * 3600);
        assert!(Zone::from_tzif(b"nope").is_none());
    }
}
