//! Tables as Ganeti's `FormatTable` prints them: columns separated by one
//! space and padded to their widest cell (numbers right-aligned, the last
//! column unpadded unless right-aligned), or joined by a separator.

/// One column: its title and alignment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub title: String,
    pub align_right: bool,
}

impl Column {
    pub fn new(title: impl Into<String>, align_right: bool) -> Self {
        Column {
            title: title.into(),
            align_right,
        }
    }
}

fn width(s: &str) -> usize {
    s.chars().count()
}

fn pad(s: &str, w: usize, right: bool) -> String {
    let n = w.saturating_sub(width(s));
    if right {
        format!("{}{}", " ".repeat(n), s)
    } else {
        format!("{}{}", s, " ".repeat(n))
    }
}

/// Formats already-rendered cells into lines.
pub fn format_table(
    rows: &[Vec<String>],
    columns: &[Column],
    header: bool,
    separator: Option<&str>,
) -> Vec<String> {
    let titles: Vec<String> = if header {
        columns.iter().map(|c| c.title.clone()).collect()
    } else {
        Vec::new()
    };
    // The header (if any), then the rows, without copying them.
    let data = || header.then_some(&titles).into_iter().chain(rows);

    if let Some(sep) = separator {
        return data().map(|row| row.join(sep)).collect();
    }

    let mut widths = vec![0usize; columns.len()];
    for row in data() {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(width(cell));
        }
    }
    if let (Some(last), Some(w)) = (columns.last(), widths.last_mut()) {
        if !last.align_right {
            *w = 0;
        }
    }
    data()
        .map(|row| {
            let mut line = String::with_capacity(widths.iter().sum::<usize>() + widths.len());
            for (i, (cell, (col, w))) in row.iter().zip(columns.iter().zip(&widths)).enumerate() {
                if i > 0 {
                    line.push(' ');
                }
                let fill = w.saturating_sub(width(cell));
                if col.align_right {
                    line.extend(std::iter::repeat_n(' ', fill));
                    line.push_str(cell);
                } else {
                    line.push_str(cell);
                    line.extend(std::iter::repeat_n(' ', fill));
                }
            }
            line
        })
        .collect()
}

/// Ganeti's older `GenerateTable`, used by a few commands: cells are given
/// as values; `numeric` columns are right-aligned, `unit` columns hold MiB
/// and are formatted with `unit`. Unlike [`format_table`], the header line
/// keeps the padding of the last column.
pub fn generate_table(
    headers: Option<&[(&str, &str)]>,
    fields: &[String],
    separator: Option<&str>,
    data: &[Vec<serde_json::Value>],
    numeric: &[&str],
    unit_fields: &[&str],
    unit: Option<crate::units::Unit>,
) -> Vec<String> {
    use crate::pyfmt::py_str;
    use serde_json::Value;
    let unit = unit.unwrap_or_else(|| crate::units::default_unit(separator));
    let rows: Vec<Vec<String>> = data
        .iter()
        .map(|row| {
            fields
                .iter()
                .enumerate()
                .map(|(i, f)| {
                    let v = row.get(i).unwrap_or(&Value::Null);
                    if unit_fields.contains(&f.as_str()) {
                        let n = match v {
                            Value::Number(n) => n.as_f64().map(f64::trunc),
                            Value::Bool(b) => Some(f64::from(u8::from(*b))),
                            Value::String(s) => s.trim().parse::<i64>().ok().map(|n| n as f64),
                            _ => None,
                        };
                        if let Some(n) = n {
                            return crate::units::format_unit(n, unit);
                        }
                    }
                    py_str(v)
                })
                .collect()
        })
        .collect();
    let titles: Vec<String> = fields
        .iter()
        .map(|f| {
            headers
                .and_then(|h| h.iter().find(|(k, _)| k == f))
                .map(|(_, t)| t.to_string())
                .unwrap_or_else(|| f.clone())
        })
        .collect();
    if let Some(sep) = separator {
        let mut out = Vec::new();
        if headers.is_some() {
            out.push(titles.join(sep));
        }
        out.extend(rows.iter().map(|r| r.join(sep)));
        return out;
    }
    let right: Vec<bool> = fields
        .iter()
        .map(|f| numeric.contains(&f.as_str()))
        .collect();
    let mut widths = vec![0usize; fields.len()];
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(width(cell));
        }
    }
    let line = |cells: &[String], widths: &[usize]| {
        cells
            .iter()
            .zip(widths.iter().zip(&right))
            .map(|(c, (w, r))| pad(c, *w, *r))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut out = Vec::new();
    if headers.is_some() {
        for (w, t) in widths.iter_mut().zip(&titles) {
            *w = (*w).max(width(t));
        }
        out.push(line(&titles, &widths));
    }
    if let (Some(w), Some(false)) = (widths.last_mut(), right.last()) {
        *w = 0;
    }
    out.extend(rows.iter().map(|r| line(r, &widths)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cols() -> Vec<Column> {
        vec![
            Column::new("Name", false),
            Column::new("Memory", true),
            Column::new("OS", false),
        ]
    }

    fn rows() -> Vec<Vec<String>> {
        vec![
            vec!["inst1.example.com".into(), "1.0G".into(), "debian".into()],
            vec!["i2".into(), "512M".into(), "noop".into()],
        ]
    }

    #[test]
    fn pads_columns_and_right_aligns_numbers() {
        let lines = format_table(&rows(), &cols(), true, None);
        assert_eq!(
            lines,
            vec![
                "Name              Memory OS",
                "inst1.example.com   1.0G debian",
                "i2                  512M noop",
            ]
        );
    }

    #[test]
    fn separator_joins_cells_without_padding() {
        let lines = format_table(&rows(), &cols(), true, Some(":"));
        assert_eq!(
            lines,
            vec![
                "Name:Memory:OS",
                "inst1.example.com:1.0G:debian",
                "i2:512M:noop"
            ]
        );
    }

    #[test]
    fn no_headers_drops_the_title_row_and_its_width() {
        let lines = format_table(&rows()[1..], &cols(), false, None);
        assert_eq!(lines, vec!["i2 512M noop"]);
    }

    #[test]
    fn generate_table_formats_units_and_pads_the_header() {
        use serde_json::json;
        let fields: Vec<String> = ["node", "size", "name"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let data = vec![
            vec![json!("node1"), json!(2048), json!("lv-long-name")],
            vec![json!("n2"), json!("512"), json!("x")],
        ];
        let lines = generate_table(
            Some(&[("node", "Node"), ("size", "Size")]),
            &fields,
            None,
            &data,
            &["size"],
            &["size"],
            None,
        );
        assert_eq!(
            lines,
            vec![
                "Node  Size name        ",
                "node1 2.0G lv-long-name",
                "n2    512M x"
            ]
        );
        let lines = generate_table(None, &fields, Some(":"), &data, &["size"], &["size"], None);
        assert_eq!(lines, vec!["node1:2048:lv-long-name", "n2:512:x"]);
    }

    #[test]
    fn right_aligned_last_column_is_padded() {
        let c = vec![Column::new("Name", false), Column::new("Count", true)];
        let r = vec![vec!["a".into(), "7".into()]];
        assert_eq!(
            format_table(&r, &c, true, None),
            vec!["Name Count", "a        7"]
        );
    }
}
