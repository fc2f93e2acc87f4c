//! Names as Ganeti orders and matches them: the "nice" sort (`node2` before
//! `node10`) and short host names (`inst1` for `inst1.example.com`).

use std::cmp::Ordering;

/// One group of a nice-sort key: a run of digits or of other characters.
/// Digit runs sort before text runs at the same position, numerically.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Part {
    /// The number without leading zeros, compared by length then digits,
    /// so any length of number works.
    Num {
        len: usize,
        digits: String,
    },
    Text(String),
}

/// The sort key of [`nice_sort_key`].
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct NiceKey(Vec<Part>);

/// Ganeti's `niceSortKey`: splits a name into runs of digits and non-digits
/// and compares the digit runs as numbers, so `a1 < a2 < a10 < b`.
pub fn nice_sort_key(s: &str) -> NiceKey {
    let mut parts = Vec::new();
    let mut rest = s;
    while let Some(first) = rest.chars().next() {
        let digit = first.is_ascii_digit();
        let end = rest
            .find(|c: char| c.is_ascii_digit() != digit)
            .unwrap_or(rest.len());
        let (run, tail) = rest.split_at(end);
        parts.push(if digit {
            let digits = run.trim_start_matches('0').to_string();
            Part::Num {
                len: digits.len(),
                digits,
            }
        } else {
            Part::Text(run.to_string())
        });
        rest = tail;
    }
    NiceKey(parts)
}

/// Compares two names the nice way.
pub fn nice_cmp(a: &str, b: &str) -> Ordering {
    nice_sort_key(a).cmp(&nice_sort_key(b))
}

/// Sorts items by the nice key of their name, stably.
pub fn nice_sort_by<T>(items: &mut [T], name: impl Fn(&T) -> &str) {
    items.sort_by_cached_key(|t| nice_sort_key(name(t)));
}

/// Whether `lookup` names `canonical`: equal, or its leading DNS
/// component(s) (`"inst1"` and `"inst1.example"` name
/// `"inst1.example.com"`). Case-sensitive, as Ganeti 3.0's query daemon.
pub fn match_name_component(canonical: &str, lookup: &str) -> bool {
    canonical == lookup
        || canonical
            .strip_prefix(lookup)
            .is_some_and(|rest| rest.starts_with('.'))
}

/// The outcome of looking a (possibly short) name up among full names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NameLookup {
    /// One name equals the key.
    Exact(String),
    /// No exact match, exactly one name starts with `key.`.
    Partial(String),
    /// No exact match, several names start with `key.`.
    Ambiguous,
    /// Nothing matches.
    NotFound,
}

impl NameLookup {
    /// The full name found, if exactly one.
    pub fn name(&self) -> Option<&str> {
        match self {
            NameLookup::Exact(n) | NameLookup::Partial(n) => Some(n),
            _ => None,
        }
    }
}

/// Ganeti's `lookupName`: finds the full name `key` stands for. Ganeti's
/// messages for the failures are "`<Kind>` name `<key>` not found" and
/// "... has multiple matches".
pub fn lookup_name<'a>(names: impl IntoIterator<Item = &'a str>, key: &str) -> NameLookup {
    let mut partial: Option<&str> = None;
    let mut ambiguous = false;
    for n in names {
        if n == key {
            return NameLookup::Exact(n.to_string());
        }
        if match_name_component(n, key) {
            if partial.is_some() {
                ambiguous = true;
            }
            partial = Some(n);
        }
    }
    match partial {
        _ if ambiguous => NameLookup::Ambiguous,
        Some(n) => NameLookup::Partial(n.to_string()),
        None => NameLookup::NotFound,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_sort_orders_numbers_numerically() {
        let mut v = vec![
            "a10", "a2", "b", "a1", "a", "a02x", "10", "9", "node1.x", "node10.x",
        ];
        nice_sort_by(&mut v, |s| s);
        assert_eq!(
            v,
            ["9", "10", "a", "a1", "a2", "a02x", "a10", "b", "node1.x", "node10.x"]
        );
    }

    #[test]
    fn nice_sort_handles_numbers_longer_than_any_integer() {
        let big = "n123456789012345678901234567890123456789";
        let bigger = "n1234567890123456789012345678901234567890";
        assert_eq!(nice_cmp(big, bigger), Ordering::Less);
        assert_eq!(nice_cmp("n007", "n7"), Ordering::Equal);
    }

    #[test]
    fn short_names_match_leading_components() {
        assert!(match_name_component("inst1.example.com", "inst1"));
        assert!(match_name_component("inst1.example.com", "inst1.example"));
        assert!(match_name_component(
            "inst1.example.com",
            "inst1.example.com"
        ));
        assert!(!match_name_component("inst10.example.com", "inst1"));
        assert!(!match_name_component("inst1.example.com", "inst1.ex"));
        assert!(!match_name_component("inst1.example.com", "INST1"));
    }

    #[test]
    fn lookup_prefers_exact_then_unique_partial() {
        let names = ["web1.a.com", "web1.b.com", "web2.a.com", "web1"];
        assert_eq!(lookup_name(names, "web1"), NameLookup::Exact("web1".into()));
        assert_eq!(
            lookup_name(names, "web2"),
            NameLookup::Partial("web2.a.com".into())
        );
        assert_eq!(
            lookup_name(names[..2].iter().copied(), "web1"),
            NameLookup::Ambiguous
        );
        assert_eq!(lookup_name(names, "web3"), NameLookup::NotFound);
        assert_eq!(lookup_name(names, "web2").name(), Some("web2.a.com"));
    }
}
