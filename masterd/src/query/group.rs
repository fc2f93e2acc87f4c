//! The `group` query resource.

use luxi::query::{Cell, DataNeeds, FieldDef, FieldKind, FieldRegistry};
use objects::NodeGroup;
use serde_json::json;

use super::common_fields;
use crate::config::ConfigData;

/// One node group with its members.
pub struct GroupRow<'a> {
    pub cfg: &'a ConfigData,
    pub group: &'a NodeGroup,
    pub nodes: Vec<&'a str>,
    pub instances: Vec<&'a str>,
}

/// The group fields.
pub fn registry<'a>() -> FieldRegistry<GroupRow<'a>> {
    use FieldKind::*;
    let c = DataNeeds::CONFIG;
    let mut r: FieldRegistry<GroupRow<'a>> = FieldRegistry::new();
    r.add(FieldDef::new("name", "Group", Text, "Group name"), c, |r| {
        Cell::normal(r.group.name.as_str())
    })
    .add(
        FieldDef::new(
            "alloc_policy",
            "AllocPolicy",
            Text,
            "Allocation policy for group",
        ),
        c,
        |r| Cell::normal(r.group.alloc_policy.as_str()),
    )
    .add(
        FieldDef::new("node_cnt", "Nodes", Number, "Number of nodes"),
        c,
        |r| Cell::normal(r.nodes.len()),
    )
    .add(
        FieldDef::new("node_list", "NodeList", Other, "List of nodes"),
        c,
        |r| Cell::normal(json!(r.nodes)),
    )
    .add(
        FieldDef::new(
            "pinst_cnt",
            "Instances",
            Number,
            "Number of primary instances",
        ),
        c,
        |r| Cell::normal(r.instances.len()),
    )
    .add(
        FieldDef::new(
            "pinst_list",
            "InstanceList",
            Other,
            "List of primary instances",
        ),
        c,
        |r| Cell::normal(json!(r.instances)),
    )
    .add(
        FieldDef::new("ndparams", "NDParams", Other, "Node parameters"),
        c,
        |r| {
            Cell::normal(json!(objects::params::fill(
                &r.cfg.cluster.ndparams,
                &r.group.ndparams
            )))
        },
    )
    .add(
        FieldDef::new(
            "custom_ndparams",
            "CustomNDParams",
            Other,
            "Custom node parameters",
        ),
        c,
        |r| Cell::normal(json!(r.group.ndparams)),
    )
    .add(
        FieldDef::new(
            "ipolicy",
            "InstancePolicy",
            Other,
            "Instance policy limitations (merged)",
        ),
        c,
        |r| {
            Cell::normal(json!(objects::params::fill(
                &r.cfg.cluster.ipolicy,
                &r.group.ipolicy
            )))
        },
    )
    .add(
        FieldDef::new(
            "custom_ipolicy",
            "CustomInstancePolicy",
            Other,
            "Custom instance policy limitations",
        ),
        c,
        |r| Cell::normal(json!(r.group.ipolicy)),
    )
    .add(
        FieldDef::new(
            "diskparams",
            "DiskParameters",
            Other,
            "Disk parameters (merged)",
        ),
        c,
        |r| {
            let cluster = objects::params::fill_diskparams(
                &objects::params::default_diskparams(),
                &r.cfg.cluster.diskparams,
            );
            Cell::normal(json!(objects::params::fill_diskparams(
                &cluster,
                &r.group.diskparams
            )))
        },
    )
    .add(
        FieldDef::new(
            "custom_diskparams",
            "CustomDiskParameters",
            Other,
            "Custom disk parameters",
        ),
        c,
        |r| Cell::normal(json!(r.group.diskparams)),
    );
    common_fields(&mut r, |r: &GroupRow<'a>| super::Common {
        uuid: &r.group.uuid,
        serial_no: r.group.serial_no,
        ctime: r.group.ctime,
        mtime: r.group.mtime,
        tags: &r.group.tags,
    });
    r
}
