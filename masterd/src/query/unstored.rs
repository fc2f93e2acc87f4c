//! The `filter` query resource. ganeti-rs stores no job filter rules yet,
//! so this query always answers with no rows; the field definitions are
//! Ganeti 3.0's, so `gnt-filter list` and `list-fields` work (Ganeti's own
//! Python tools failed with "Resource type 'filter' unknown").

use luxi::query::{Cell, DataNeeds, FieldDef, FieldFlags, FieldKind, FieldRegistry};

/// A row of a resource that has no objects: it cannot be built.
pub enum NoRow {}

fn never(r: &NoRow) -> Cell {
    match *r {}
}

/// Declares `(name, title, kind, doc)` fields, every one from the config.
fn registry(fields: &[(&str, &str, FieldKind, &str)]) -> FieldRegistry<NoRow> {
    let mut r = FieldRegistry::new();
    for &(name, title, kind, doc) in fields {
        let flags = if kind == FieldKind::Timestamp {
            FieldFlags::Timestamp
        } else {
            FieldFlags::Normal
        };
        r.add_flagged(
            FieldDef::new(name, title, kind, doc),
            DataNeeds::CONFIG,
            flags,
            never,
        );
    }
    r
}

/// The job filter rule fields.
pub fn filter_registry() -> FieldRegistry<NoRow> {
    use FieldKind::*;
    registry(&[
        ("uuid", "UUID", Text, "Network UUID"),
        ("watermark", "Watermark", Number, "Watermark"),
        ("priority", "Priority", Number, "Priority"),
        ("predicates", "Predicates", Other, "Predicates"),
        ("action", "Action", Other, "Action"),
        ("reason_trail", "ReasonTrail", Other, "Reason trail"),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registries_are_valid() {
        assert!(filter_registry().validate().is_empty());
    }
}
