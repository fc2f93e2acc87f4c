//! hail's allocations respect the instance policy and exclusion tags.

// An integration test: a failed unwrap or expect is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use htools::alloc::{best_group_alloc, inst_matches_policy, AllocOptions};
use htools::gen::{generate, GenSpec};
use htools::model::{Disk, Instance};
use htools::types::{DiskTemplate, InstanceStatus, TemplateExt, NO_SECONDARY};
use htools::{backend::text, loader};
use proptest::prelude::*;

fn instance(mem: i64, dsk: i64, vcpus: i64, tags: Vec<String>, dt: DiskTemplate) -> Instance {
    Instance::new(
        "new",
        mem,
        dsk,
        vec![Disk {
            size: dsk,
            spindles: None,
        }],
        vcpus,
        InstanceStatus::Running,
        tags,
        true,
        NO_SECONDARY,
        NO_SECONDARY,
        dt,
        1,
        false,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn allocations_respect_policy_and_exclusion_tags(
        seed in 1u64..5000,
        mem in 64i64..40_000,
        dsk in 512i64..200_000,
        vcpus in 1i64..12,
        svc in 0u8..5,
        drbd in any::<bool>(),
    ) {
        let spec = GenSpec {
            nodes: 6,
            instances: 40,
            seed,
            node_mem: 64 * 1024,
            exclusion_tags: true,
            drbd_percent: 70,
            ..Default::default()
        };
        let mut c = text::parse(&generate(&spec)).expect("parse");
        loader::merge(&mut c, &Default::default()).expect("merge");
        let dt = if drbd { DiskTemplate::Drbd } else { DiskTemplate::Plain };
        let mut inst = instance(mem, dsk, vcpus, vec![format!("service:svc{svc}")], dt);
        loader::set_instance_tags(&mut c, &mut inst);
        prop_assert_eq!(inst.excl_tags.len(), 1);
        let count = dt.required_nodes();
        if let Ok((_, sol, _)) = best_group_alloc(&c, None, &inst, count, &AllocOptions::default()) {
            let (nodes, _) = sol.best.expect("a chosen group has a solution");
            let p = &c.nodes[nodes[0]];
            prop_assert!(inst_matches_policy(&inst, &p.ipolicy, p.s.excl_storage).is_ok());
            let tag = inst.excl_tags[0];
            prop_assert!(!p.ptags.contains_key(&tag), "primary already has an instance tagged {}", c.tag_names[tag as usize]);
            prop_assert!(!p.s.offline);
            if drbd {
                prop_assert_eq!(nodes.len(), 2);
                prop_assert_ne!(nodes[0], nodes[1]);
            }
        }
    }
}

#[test]
fn oversized_instance_is_refused_with_reasons() {
    let spec = GenSpec {
        nodes: 4,
        instances: 10,
        seed: 3,
        ..Default::default()
    };
    let mut c = text::parse(&generate(&spec)).expect("parse");
    loader::merge(&mut c, &Default::default()).expect("merge");
    // larger than the policy's maximum memory (32768)
    let inst = instance(40_000, 1024, 1, vec![], DiskTemplate::Plain);
    let err =
        best_group_alloc(&c, None, &inst, 1, &AllocOptions::default()).expect_err("must not fit");
    assert!(err.contains("FailMem"), "{err}");
}
