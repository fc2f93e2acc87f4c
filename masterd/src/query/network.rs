//! The `network` query resource (Ganeti's `Query/Network.hs` fields).

use luxi::query::{Cell, DataNeeds, FieldDef, FieldFlags, FieldKind, FieldRegistry};
use objects::network::AddressPool;
use objects::Network;
use serde_json::{json, Value};

use crate::config::ConfigData;

/// One network, with its pool read once.
pub struct NetworkRow<'a> {
    pub cfg: &'a ConfigData,
    pub net: &'a Network,
    /// `None` when the stored bitmaps do not fit the subnet.
    pub pool: Option<AddressPool>,
}

impl<'a> NetworkRow<'a> {
    pub fn new(cfg: &'a ConfigData, net: &'a Network) -> Self {
        NetworkRow {
            cfg,
            net,
            pool: AddressPool::of(net).ok(),
        }
    }

    /// `(group, mode, link, vlan)` of each group the network is connected
    /// to, `-` for a missing value (Ganeti's `getGroupConnections`).
    fn group_connections(&self) -> Vec<Value> {
        let mut groups: Vec<_> = self
            .cfg
            .groups
            .values()
            .filter_map(|g| g.networks.get(&self.net.uuid).map(|p| (g, p)))
            .collect();
        groups.sort_by(|a, b| a.0.uuid.cmp(&b.0.uuid));
        groups
            .into_iter()
            .map(|(g, p)| {
                let text = |k: &str| {
                    p.get(k)
                        .and_then(Value::as_str)
                        .map_or("-".to_string(), str::to_string)
                };
                json!([g.name, text("mode"), text("link"), text("vlan")])
            })
            .collect()
    }

    /// Names of the instances with a NIC in the network, in UUID order.
    fn instances(&self) -> Vec<&'a str> {
        self.cfg
            .instances
            .values()
            .filter(|i| {
                i.nics
                    .iter()
                    .any(|n| n.network.as_deref() == Some(self.net.uuid.as_str()))
            })
            .map(|i| i.name.as_str())
            .collect()
    }
}

fn pool_cell(r: &NetworkRow<'_>, f: impl Fn(&AddressPool) -> Value) -> Cell {
    match &r.pool {
        Some(p) => Cell::normal(f(p)),
        None => Cell::unavail(),
    }
}

/// The network fields.
pub fn registry<'a>() -> FieldRegistry<NetworkRow<'a>> {
    use FieldKind::*;
    let c = DataNeeds::CONFIG;
    let mut r: FieldRegistry<NetworkRow<'a>> = FieldRegistry::new();
    r.add(FieldDef::new("name", "Network", Text, "Name"), c, |r| {
        Cell::normal(r.net.name.as_str())
    })
    .add(
        FieldDef::new("network", "Subnet", Text, "IPv4 subnet"),
        c,
        |r| Cell::normal(r.net.network.as_str()),
    )
    .add(
        FieldDef::new("gateway", "Gateway", Other, "IPv4 gateway"),
        c,
        |r| Cell::normal_or_unavail(r.net.gateway.clone()),
    )
    .add(
        FieldDef::new("network6", "IPv6Subnet", Other, "IPv6 subnet"),
        c,
        |r| Cell::normal_or_unavail(r.net.network6.clone()),
    )
    .add(
        FieldDef::new("gateway6", "IPv6Gateway", Other, "IPv6 gateway"),
        c,
        |r| Cell::normal_or_unavail(r.net.gateway6.clone()),
    )
    .add(
        FieldDef::new("mac_prefix", "MacPrefix", Other, "MAC address prefix"),
        c,
        |r| Cell::normal_or_unavail(r.net.mac_prefix.clone()),
    )
    .add(
        FieldDef::new(
            "free_count",
            "FreeCount",
            Number,
            "Number of available addresses",
        ),
        c,
        |r| pool_cell(r, |p| json!(p.free_count())),
    )
    .add(
        FieldDef::new(
            "reserved_count",
            "ReservedCount",
            Number,
            "Number of reserved addresses",
        ),
        c,
        |r| pool_cell(r, |p| json!(p.reserved_count())),
    )
    .add(
        FieldDef::new("map", "Map", Text, "Actual mapping"),
        c,
        |r| pool_cell(r, |p| json!(p.map())),
    )
    .add(
        FieldDef::new(
            "external_reservations",
            "ExternalReservations",
            Text,
            "External reservations",
        ),
        c,
        |r| {
            pool_cell(r, |p| {
                let ips: Vec<String> = p
                    .external_reservations()
                    .iter()
                    .map(|a| a.to_string())
                    .collect();
                json!(ips.join(", "))
            })
        },
    )
    .add(
        FieldDef::new(
            "group_list",
            "GroupList",
            Other,
            "List of nodegroups (group name, NIC mode, NIC link)",
        ),
        c,
        |r| Cell::normal(Value::Array(r.group_connections())),
    )
    .add(
        FieldDef::new("group_cnt", "NodeGroups", Number, "Number of nodegroups"),
        c,
        |r| Cell::normal(r.group_connections().len()),
    )
    .add(
        FieldDef::new("inst_list", "InstanceList", Other, "List of instances"),
        c,
        |r| Cell::normal(json!(r.instances())),
    )
    .add(
        FieldDef::new("inst_cnt", "Instances", Number, "Number of instances"),
        c,
        |r| Cell::normal(r.instances().len()),
    )
    .add(
        FieldDef::new("uuid", "UUID", Text, "Network UUID"),
        c,
        |r| Cell::normal(r.net.uuid.as_str()),
    )
    .add(
        FieldDef::new(
            "serial_no",
            "SerialNo",
            Number,
            "Network object serial number, incremented on each modification",
        ),
        c,
        |r| Cell::normal(r.net.serial_no),
    )
    .add_flagged(
        FieldDef::new("ctime", "CTime", Timestamp, "Creation timestamp"),
        c,
        FieldFlags::Timestamp,
        |r| Cell::normal(r.net.ctime),
    )
    .add_flagged(
        FieldDef::new("mtime", "MTime", Timestamp, "Modification timestamp"),
        c,
        FieldFlags::Timestamp,
        |r| Cell::normal(r.net.mtime),
    )
    .add(FieldDef::new("tags", "Tags", Other, "Tags"), c, |r| {
        Cell::normal(json!(r.net.tags))
    });
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_registry_is_valid() {
        assert!(registry().validate().is_empty());
    }
}
