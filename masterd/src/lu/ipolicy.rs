//! The instance policy: the bounds an instance's specs must keep within
//! (Ganeti's `ComputeIPolicySpecViolation`), for the group it goes to.

use objects::params::{fill, get_u64, ParamDict};
use objects::NodeGroup;
use serde_json::Value;

use crate::config::ConfigData;

/// What an instance asks for, as the policy sees it.
#[derive(Debug, Clone, Default)]
pub struct Spec {
    pub memory: Option<u64>,
    pub cpus: Option<u64>,
    pub nics: usize,
    pub spindle_use: Option<u64>,
    pub disk_sizes: Vec<u64>,
    pub template: String,
}

/// The policy of `group`: the cluster's with the group's own keys laid over
/// it (Ganeti's `SimpleFillIPolicy`: a key the group sets replaces the
/// cluster's whole).
pub fn group_policy(cfg: &ConfigData, group: &NodeGroup) -> ParamDict {
    fill(&cfg.cluster.ipolicy, &group.ipolicy)
}

fn num(v: &Value) -> Option<u64> {
    v.as_u64().or_else(|| v.as_f64().map(|f| f as u64))
}

/// Everything `spec` breaks in `policy`, in Ganeti's words and order: the
/// disk templates first, then the specs against the bounds pair they break
/// least.
pub fn violations(policy: &ParamDict, spec: &Spec) -> Vec<String> {
    let allowed: Vec<String> = policy
        .get("disk-templates")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let mut out = Vec::new();
    let disk_count = spec.disk_sizes.len() as u64;
    let mut tests: Vec<(&str, String, Option<u64>)> = vec![
        ("memory-size", String::new(), spec.memory),
        ("cpu-count", String::new(), spec.cpus),
        ("nic-count", String::new(), Some(spec.nics as u64)),
        ("spindle-use", String::new(), spec.spindle_use),
    ];
    tests.extend(
        spec.disk_sizes
            .iter()
            .enumerate()
            .map(|(i, s)| ("disk-size", i.to_string(), Some(*s))),
    );
    if disk_count != 0 {
        tests.push(("disk-count", String::new(), Some(disk_count)));
    } else if !allowed.iter().any(|t| t == "diskless") {
        out.push(format!(
            "Disk template diskless is not allowed (allowed templates {})",
            allowed.join(", ")
        ));
    }
    if disk_count != 0 && !allowed.contains(&spec.template) {
        out.push(format!(
            "Disk template {} is not allowed (allowed templates: {})",
            spec.template,
            allowed.join(", ")
        ));
    }
    let pairs = policy
        .get("minmax")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut least: Option<Vec<String>> = None;
    for pair in &pairs {
        let bound = |side: &str, name: &str| pair.get(side).and_then(|s| s.get(name)).and_then(num);
        let errs: Vec<String> = tests
            .iter()
            .filter_map(|(name, qualifier, value)| {
                let value = (*value)?;
                let max = bound("max", name).unwrap_or(value);
                let min = bound("min", name).unwrap_or(value);
                if value > max || min > value {
                    let fqn = if qualifier.is_empty() {
                        (*name).to_string()
                    } else {
                        format!("{name}/{qualifier}")
                    };
                    Some(format!(
                        "{fqn} value {value} is not in range [{min}, {max}]"
                    ))
                } else {
                    None
                }
            })
            .collect();
        if least.as_ref().is_none_or(|l| errs.len() < l.len()) {
            least = Some(errs);
        }
    }
    out.extend(least.unwrap_or_default());
    out
}

/// The spec of a new instance from its filled backend parameters.
pub fn spec_of(be: &ParamDict, disk_sizes: Vec<u64>, nics: usize, template: &str) -> Spec {
    Spec {
        memory: get_u64(be, "maxmem").or_else(|| get_u64(be, "memory")),
        cpus: get_u64(be, "vcpus"),
        nics,
        spindle_use: get_u64(be, "spindle_use"),
        disk_sizes,
        template: template.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn policy() -> ParamDict {
        objects::params::default_ipolicy()
    }

    fn spec(disks: Vec<u64>) -> Spec {
        Spec {
            memory: Some(128),
            cpus: Some(1),
            nics: 1,
            spindle_use: Some(1),
            disk_sizes: disks,
            template: "file".into(),
        }
    }

    #[test]
    fn a_disk_below_the_minimum_size_is_named_with_its_index_and_range() {
        assert_eq!(
            violations(&policy(), &spec(vec![2048, 64])),
            vec!["disk-size/1 value 64 is not in range [1024, 1048576]".to_string()]
        );
        assert!(violations(&policy(), &spec(vec![1024])).is_empty());
    }

    #[test]
    fn the_bounds_pair_broken_least_is_the_one_reported() {
        let mut p = policy();
        p.insert(
            "minmax".into(),
            json!([
                {"min": {"memory-size": 1024}, "max": {"memory-size": 4096, "cpu-count": 1}},
                {"min": {"memory-size": 64}, "max": {"memory-size": 256}}
            ]),
        );
        assert!(violations(&p, &spec(vec![2048])).is_empty());
        let mut s = spec(vec![2048]);
        s.memory = Some(8192);
        assert_eq!(
            violations(&p, &s),
            vec!["memory-size value 8192 is not in range [1024, 4096]".to_string()]
        );
    }

    #[test]
    fn a_template_outside_the_policy_is_refused() {
        let mut p = policy();
        p.insert("disk-templates".into(), json!(["plain"]));
        assert_eq!(
            violations(&p, &spec(vec![1024])),
            vec!["Disk template file is not allowed (allowed templates: plain)".to_string()]
        );
        let mut s = spec(vec![]);
        s.template = "diskless".into();
        assert_eq!(
            violations(&p, &s),
            vec!["Disk template diskless is not allowed (allowed templates plain)".to_string()]
        );
    }
}
