//! Hierarchical "info" output, as Ganeti's `PrintGenericInfo`: a YAML-like
//! tree of ordered key/value lists, dictionaries (sorted keys), lists and
//! strings.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::pyfmt::py_str;

/// One node of an info tree.
#[derive(Debug, Clone, PartialEq)]
pub enum Info {
    /// A scalar, printed as is.
    Str(String),
    /// Ordered `(key, value, alignment group)` entries; keys of one group
    /// are padded to the same width.
    Ordered(Vec<(String, Info, Option<u32>)>),
    /// A dictionary, printed with sorted keys.
    Dict(BTreeMap<String, Info>),
    /// A list, one `- item` per entry.
    List(Vec<Info>),
    /// A tuple of scalars, printed inline as `[a, b, c]`.
    Inline(Vec<String>),
}

impl Info {
    pub fn s(v: impl Into<String>) -> Info {
        Info::Str(v.into())
    }

    /// A JSON value as Python's `str()` renders it.
    pub fn py(v: &Value) -> Info {
        Info::Str(py_str(v))
    }

    /// Ordered entries without alignment.
    pub fn ordered(entries: Vec<(&str, Info)>) -> Info {
        Info::Ordered(
            entries
                .into_iter()
                .map(|(k, v)| (k.to_string(), v, None))
                .collect(),
        )
    }

    /// A JSON value as a tree: objects become dictionaries, arrays lists.
    pub fn from_json(v: &Value) -> Info {
        match v {
            Value::Object(m) => Info::Dict(
                m.iter()
                    .map(|(k, v)| (k.clone(), Info::from_json(v)))
                    .collect(),
            ),
            Value::Array(a) => Info::List(a.iter().map(Info::from_json).collect()),
            other => Info::py(other),
        }
    }
}

const INDENT: &str = "  ";

fn serialize(buf: &mut String, data: &Info, level: usize, afterkey: bool) {
    match data {
        Info::Dict(m) => {
            if m.is_empty() {
                buf.push('\n');
                return;
            }
            let mut doindent = afterkey;
            if afterkey {
                buf.push('\n');
            }
            for (k, v) in m {
                if doindent {
                    buf.push_str(&INDENT.repeat(level));
                }
                doindent = true;
                buf.push_str(k);
                buf.push_str(": ");
                serialize(buf, v, level + 1, true);
            }
        }
        Info::Ordered(entries) if !entries.is_empty() => {
            let mut doindent = afterkey;
            if afterkey {
                buf.push('\n');
            }
            let mut widths: BTreeMap<u32, usize> = BTreeMap::new();
            for (k, _, g) in entries {
                if let Some(g) = g {
                    let w = widths.entry(*g).or_insert(0);
                    *w = (*w).max(k.chars().count());
                }
            }
            for (k, v, g) in entries {
                if doindent {
                    buf.push_str(&INDENT.repeat(level));
                }
                doindent = true;
                buf.push_str(k);
                buf.push_str(": ");
                if let Some(g) = g {
                    let w = widths.get(g).copied().unwrap_or(0);
                    buf.push_str(&" ".repeat(w.saturating_sub(k.chars().count())));
                }
                serialize(buf, v, level + 1, true);
            }
        }
        Info::Inline(items) => {
            buf.push_str(&format!("[{}]\n", items.join(", ")));
        }
        Info::Ordered(_) => buf.push('\n'),
        Info::List(items) => {
            if items.is_empty() {
                buf.push('\n');
                return;
            }
            let mut doindent = afterkey;
            if afterkey {
                buf.push('\n');
            }
            for item in items {
                if doindent {
                    buf.push_str(&INDENT.repeat(level));
                }
                doindent = true;
                buf.push('-');
                buf.push_str(&INDENT[1..]);
                serialize(buf, item, level + 1, false);
            }
        }
        Info::Str(s) => {
            buf.push_str(s);
            buf.push('\n');
        }
    }
}

/// Renders an info tree; the result has no trailing newline.
pub fn format_generic_info(data: &Info) -> String {
    let mut buf = String::new();
    serialize(&mut buf, data, 0, false);
    buf.trim_end_matches('\n').to_string()
}

/// Ganeti's `FormatParamsDictInfo`: each effective parameter, shown as the
/// instance's own value or `default (value)`.
pub fn format_params_dict_info(own: &Value, actual: &Value) -> Info {
    let mut out = BTreeMap::new();
    if let Some(actual) = actual.as_object() {
        for (k, data) in actual {
            let own_v = own.get(k);
            match data {
                Value::Object(m) if !m.is_empty() => {
                    let empty = Value::Object(Default::default());
                    out.insert(
                        k.clone(),
                        format_params_dict_info(own_v.unwrap_or(&empty), data),
                    );
                }
                _ => {
                    let text = match own_v {
                        Some(v) => py_str(v),
                        None => format!("default ({})", py_str(data)),
                    };
                    out.insert(k.clone(), Info::Str(text));
                }
            }
        }
    }
    Info::Dict(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn renders_nested_ordered_lists_like_ganeti() {
        let data = Info::List(vec![Info::ordered(vec![
            ("Instance name", Info::s("inst1")),
            (
                "Nodes",
                Info::List(vec![
                    Info::ordered(vec![
                        ("primary", Info::s("n1")),
                        ("group", Info::s("default")),
                    ]),
                    Info::ordered(vec![("secondaries", Info::s(""))]),
                ]),
            ),
            ("Tags", Info::List(vec![])),
        ])]);
        assert_eq!(
            format_generic_info(&data),
            "- Instance name: inst1\n  Nodes: \n    - primary: n1\n      group: default\n    - secondaries: \n  Tags: "
        );
    }

    #[test]
    fn aligns_keys_of_one_group_and_sorts_dicts() {
        let data = Info::Ordered(vec![
            ("Job ID".into(), Info::s("5"), None),
            ("Received".into(), Info::s("x"), Some(1)),
            ("Processing end".into(), Info::s("y"), Some(1)),
            (
                "params".into(),
                Info::from_json(&json!({"b": 1, "a": [1, 2]})),
                None,
            ),
        ]);
        assert_eq!(
            format_generic_info(&data),
            "Job ID: 5\nReceived:       x\nProcessing end: y\nparams: \n  a: \n    - 1\n    - 2\n  b: 1"
        );
    }

    #[test]
    fn params_show_own_values_and_defaults() {
        let info = format_params_dict_info(&json!({"a": 1}), &json!({"a": 1, "b": "x"}));
        assert_eq!(format_generic_info(&info), "a: 1\nb: default (x)");
    }
}
