//! The `filter` query resource: the job queue's filter rules.

use luxi::query::{Cell, DataNeeds, FieldDef, FieldKind, FieldRegistry};
use serde_json::json;

use crate::jobqueue::filters::FilterRule;

/// The filter rule fields (Ganeti 3.0's, every one of kind "other").
pub fn registry() -> FieldRegistry<FilterRule> {
    use FieldKind::Other;
    let c = DataNeeds::CONFIG;
    let mut r: FieldRegistry<FilterRule> = FieldRegistry::new();
    r.add(
        FieldDef::new(
            "watermark",
            "Watermark",
            Other,
            "Highest job ID used at the time when the filter was added",
        ),
        c,
        |f| Cell::normal(f.watermark),
    )
    .add(
        FieldDef::new("priority", "Priority", Other, "Filter priority"),
        c,
        |f| Cell::normal(f.priority),
    )
    .add(
        FieldDef::new(
            "predicates",
            "Predicates",
            Other,
            "List of filter predicates",
        ),
        c,
        |f| Cell::normal(f.predicates_json()),
    )
    .add(
        FieldDef::new("action", "Action", Other, "Filter action"),
        c,
        |f| Cell::normal(f.action.to_json()),
    )
    .add(
        FieldDef::new(
            "reason_trail",
            "ReasonTrail",
            Other,
            "Reason why this filter was added",
        ),
        c,
        |f| Cell::normal(json!(f.reason_trail)),
    )
    .add(FieldDef::new("uuid", "UUID", Other, "Filter ID"), c, |f| {
        Cell::normal(f.uuid.as_str())
    });
    r
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_registry_is_valid() {
        assert!(super::registry().validate().is_empty());
    }
}
