//! The `network` query resource. ganeti-rs stores no networks yet, so
//! this query always answers with no rows; the field definitions are
//! Ganeti 3.0's, so `gnt-network list` and `list-fields` work (Ganeti's own
//! Python tools failed with "Resource type 'network' unknown").

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

/// The network fields.
pub fn network_registry() -> FieldRegistry<NoRow> {
    use FieldKind::*;
    registry(&[
        ("name", "Network", Text, "Name"),
        ("network", "Subnet", Text, "IPv4 subnet"),
        ("gateway", "Gateway", Other, "IPv4 gateway"),
        ("network6", "IPv6Subnet", Other, "IPv6 subnet"),
        ("gateway6", "IPv6Gateway", Other, "IPv6 gateway"),
        ("mac_prefix", "MacPrefix", Other, "MAC address prefix"),
        (
            "free_count",
            "FreeCount",
            Number,
            "Number of available addresses",
        ),
        (
            "reserved_count",
            "ReservedCount",
            Number,
            "Number of reserved addresses",
        ),
        ("map", "Map", Text, "Actual mapping"),
        (
            "external_reservations",
            "ExternalReservations",
            Text,
            "External reservations",
        ),
        (
            "group_list",
            "GroupList",
            Other,
            "List of nodegroups (group name, NIC mode, NIC link)",
        ),
        ("group_cnt", "NodeGroups", Number, "Number of nodegroups"),
        ("inst_list", "InstanceList", Other, "List of instances"),
        ("inst_cnt", "Instances", Number, "Number of instances"),
        ("uuid", "UUID", Text, "Network UUID"),
        (
            "serial_no",
            "SerialNo",
            Number,
            "Network object serial number, incremented on each modification",
        ),
        ("ctime", "CTime", Timestamp, "Creation timestamp"),
        ("mtime", "MTime", Timestamp, "Modification timestamp"),
        ("tags", "Tags", Other, "Tags"),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registries_are_valid() {
        assert!(network_registry().validate().is_empty());
    }
}
