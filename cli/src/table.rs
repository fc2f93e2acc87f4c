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
    let mut data: Vec<Vec<String>> = Vec::with_capacity(rows.len() + 1);
    if header {
        data.push(columns.iter().map(|c| c.title.clone()).collect());
    }
    data.extend(rows.iter().cloned());

    if let Some(sep) = separator {
        return data.iter().map(|row| row.join(sep)).collect();
    }

    let mut widths = vec![0usize; columns.len()];
    for row in &data {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(width(cell));
        }
    }
    if let (Some(last), Some(w)) = (columns.last(), widths.last_mut()) {
        if !last.align_right {
            *w = 0;
        }
    }
    data.iter()
        .map(|row| {
            row.iter()
                .zip(columns.iter().zip(&widths))
                .map(|(cell, (col, w))| pad(cell, *w, col.align_right))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
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
    fn right_aligned_last_column_is_padded() {
        let c = vec![Column::new("Name", false), Column::new("Count", true)];
        let r = vec![vec!["a".into(), "7".into()]];
        assert_eq!(
            format_table(&r, &c, true, None),
            vec!["Name Count", "a        7"]
        );
    }
}
