//! The `os` query resource: OS definitions as the nodes report them.

use luxi::query::{Cell, DataNeeds, FieldDef, FieldKind, FieldRegistry};

use crate::lu::os::OsRow;

/// The OS fields (Ganeti's names and titles).
pub fn registry() -> FieldRegistry<OsRow> {
    use FieldKind::*;
    let mut r: FieldRegistry<OsRow> = FieldRegistry::new();
    for (name, title, kind, doc) in [
        ("name", "Name", Text, "Operating system name"),
        (
            "valid",
            "Valid",
            Bool,
            "Whether operating system definition is valid",
        ),
        (
            "hidden",
            "Hidden",
            Bool,
            "Whether operating system is hidden",
        ),
        (
            "blacklisted",
            "Blacklisted",
            Bool,
            "Whether operating system is blacklisted",
        ),
        ("variants", "Variants", Other, "Operating system variants"),
        (
            "api_versions",
            "ApiVersions",
            Other,
            "Operating system API versions",
        ),
        (
            "parameters",
            "Parameters",
            Other,
            "Operating system parameters",
        ),
        ("node_status", "NodeStatus", Other, "Status from node"),
        (
            "os_hvp",
            "OsHypervisorParams",
            Other,
            "Operating system specific hypervisor parameters",
        ),
        (
            "osparams",
            "OsParameters",
            Other,
            "Operating system specific parameters",
        ),
        ("trusted", "Trusted", Bool, "Whether this OS is trusted"),
    ] {
        r.add(
            FieldDef::new(name, title, kind, doc),
            DataNeeds::LIVE,
            move |row: &OsRow| {
                row.values
                    .get(name)
                    .cloned()
                    .map_or_else(Cell::unavail, Cell::normal)
            },
        );
    }
    r
}
