//! The iallocator protocol: Ganeti's request JSON in, response JSON out.

use serde_json::{json, Map, Value};

use crate::error::{Error, Result};
use crate::model::{Cluster, Disk, Group, Instance, Nic, Node};
use crate::types::{
    AllocPolicy, DiskTemplate, IPolicy, ISpec, InstanceStatus, MinMaxISpecs, TemplateExt,
    NO_SECONDARY,
};

/// What the request asks for.
#[derive(Debug, Clone)]
pub enum RequestKind {
    Allocate {
        inst: Box<Instance>,
        required_nodes: usize,
        group: Option<String>,
        restrict: Option<Vec<String>>,
    },
    Relocate {
        idx: usize,
        required_nodes: usize,
        from: Vec<usize>,
    },
    ChangeGroup {
        idxs: Vec<usize>,
        groups: Vec<usize>,
    },
    NodeEvacuate {
        idxs: Vec<usize>,
        mode: crate::alloc::EvacMode,
    },
    MultiAllocate(Vec<(Instance, usize, Option<String>)>),
    AllocateSecondary {
        idx: usize,
    },
}

fn ctx<T>(what: &str, v: Option<T>) -> Result<T> {
    v.ok_or_else(|| Error::parse("iallocator request", format!("missing or invalid {what}")))
}

fn get<'a>(o: &'a Map<String, Value>, k: &str, owner: &str) -> Result<&'a Value> {
    o.get(k).ok_or_else(|| {
        Error::parse(
            format!("invalid data for {owner}"),
            format!("key '{k}' not found"),
        )
    })
}

fn bad_value(k: &str, owner: &str, kind: &str) -> Error {
    Error::parse(
        format!("invalid data for {owner}"),
        format!("key '{k}': Unable to read {kind}"),
    )
}

fn as_i64(v: &Value, k: &str, owner: &str) -> Result<i64> {
    v.as_i64()
        .or_else(|| v.as_f64().map(|f| f as i64))
        .ok_or_else(|| bad_value(k, owner, "Int"))
}

fn num(o: &Map<String, Value>, k: &str, owner: &str) -> Result<i64> {
    as_i64(get(o, k, owner)?, k, owner)
}

fn fnum(o: &Map<String, Value>, k: &str, owner: &str) -> Result<f64> {
    get(o, k, owner)?
        .as_f64()
        .ok_or_else(|| bad_value(k, owner, "Double"))
}

fn string(o: &Map<String, Value>, k: &str, owner: &str) -> Result<String> {
    get(o, k, owner)?
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| bad_value(k, owner, "String"))
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(|v| v.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn obj<'a>(v: &'a Value, owner: &str) -> Result<&'a Map<String, Value>> {
    v.as_object()
        .ok_or_else(|| Error::parse(owner.to_string(), "Unable to read JSObject"))
}

fn ispec(v: &Value, owner: &str) -> Result<ISpec> {
    let o = obj(v, owner)?;
    Ok(ISpec {
        mem_size: num(o, "memory-size", owner)?,
        cpu_count: num(o, "cpu-count", owner)?,
        disk_size: num(o, "disk-size", owner)?,
        disk_count: num(o, "disk-count", owner)?,
        nic_count: num(o, "nic-count", owner)?,
        spindle_use: num(o, "spindle-use", owner)?,
    })
}

pub(crate) fn ipolicy(v: &Value, owner: &str) -> Result<IPolicy> {
    let o = obj(v, owner)?;
    let mut minmax = Vec::new();
    for mm in get(o, "minmax", owner)?.as_array().into_iter().flatten() {
        let m = obj(mm, owner)?;
        minmax.push(MinMaxISpecs {
            min: ispec(get(m, "min", owner)?, owner)?,
            max: ispec(get(m, "max", owner)?, owner)?,
        });
    }
    let mut dts = Vec::new();
    for d in strings(o.get("disk-templates")) {
        dts.push(DiskTemplate::parse(&d)?);
    }
    Ok(IPolicy {
        minmax,
        std: ispec(get(o, "std", owner)?, owner)?,
        disk_templates: dts,
        vcpu_ratio: fnum(o, "vcpu-ratio", owner)?,
        spindle_ratio: fnum(o, "spindle-ratio", owner)?,
    })
}

/// Builds an instance from its request description (Ganeti's
/// `parseBaseInstance`).
pub fn base_instance(name: &str, o: &Map<String, Value>) -> Result<Instance> {
    let owner = format!("instance '{name}'");
    let mut disks = Vec::new();
    for d in get(o, "disks", &owner)?.as_array().into_iter().flatten() {
        let d = obj(d, &owner)?;
        disks.push(Disk {
            size: num(d, "size", &owner)?,
            spindles: d.get("spindles").and_then(|v| v.as_i64()),
        });
    }
    let status = match o.get("admin_state").and_then(|v| v.as_str()) {
        None | Some("up") => InstanceStatus::Running,
        Some("down") => InstanceStatus::AdminDown,
        Some("offline") => InstanceStatus::AdminOffline,
        Some(x) => return Err(Error::parse(owner, format!("invalid admin_state '{x}'"))),
    };
    let nics = get(o, "nics", &owner)?
        .as_array()
        .into_iter()
        .flatten()
        .map(|n| Nic {
            network: n
                .get("network")
                .and_then(|v| v.as_str())
                .map(str::to_string),
        })
        .collect();
    let mut inst = Instance::new(
        name,
        num(o, "memory", &owner)?,
        num(o, "disk_space_total", &owner)?,
        disks,
        num(o, "vcpus", &owner)?,
        status,
        strings(o.get("tags")),
        true,
        0,
        0,
        DiskTemplate::parse(&string(o, "disk_template", &owner)?)?,
        num(o, "spindle_use", &owner)?,
        o.get("forthcoming")
            .and_then(|v| v.as_bool())
            .unwrap_or(false),
    );
    inst.nics = nics;
    Ok(inst)
}

/// Parses a request into the (unmerged) cluster and what is asked.
pub fn parse(body: &str) -> Result<(Cluster, RequestKind)> {
    let v = document(body)?;
    let top = obj(&v, "iallocator message")?;
    let req = request_object(top)?;
    let cluster = parse_cluster(top)?;
    let kind = parse_request(req, &cluster)?;
    Ok((cluster, kind))
}

/// Parses a request against another cluster than the one it carries (hail's
/// `-t` and `--simulate`): instances and nodes are looked up by name there.
pub fn parse_with_cluster(body: &str, cluster: &Cluster) -> Result<RequestKind> {
    let v = document(body)?;
    let top = obj(&v, "iallocator message")?;
    parse_request(request_object(top)?, cluster)
}

fn document(body: &str) -> Result<Value> {
    serde_json::from_str(body).map_err(|source| Error::Json {
        what: "iallocator request".into(),
        source,
    })
}

fn request_object(top: &Map<String, Value>) -> Result<&Map<String, Value>> {
    obj(
        get(top, "request", "iallocator message")?,
        "invalid data for key 'request'",
    )
}

fn parse_cluster(top: &Map<String, Value>) -> Result<Cluster> {
    let mut groups = Vec::new();
    let mut guuids = Vec::new();
    for (uuid, g) in obj(get(top, "nodegroups", "iallocator message")?, "nodegroups")? {
        let owner = format!("group '{uuid}'");
        let o = obj(g, &owner)?;
        groups.push(Group {
            name: string(o, "name", &owner)?,
            uuid: uuid.clone(),
            alloc_policy: AllocPolicy::parse(&string(o, "alloc_policy", &owner)?)?,
            tags: strings(o.get("tags")),
            networks: strings(o.get("networks")),
            ipolicy: ipolicy(get(o, "ipolicy", &owner)?, &owner)?,
        });
        guuids.push(uuid.clone());
    }
    let mut nodes = Vec::new();
    for (name, n) in obj(get(top, "nodes", "iallocator message")?, "nodes")? {
        let owner = format!("node '{name}'");
        let o = obj(n, &owner)?;
        let offline = get(o, "offline", &owner)?.as_bool().unwrap_or(false);
        let drained = get(o, "drained", &owner)?.as_bool().unwrap_or(false);
        let gu = string(o, "group", &owner)?;
        let gidx = guuids
            .iter()
            .position(|g| *g == gu)
            .ok_or_else(|| Error::unknown("group", gu.clone(), format!(" for node {name}")))?;
        let vm_capable = o
            .get("vm_capable")
            .and_then(|v| v.as_bool())
            .unwrap_or(true);
        let ndp = obj(get(o, "ndparams", &owner)?, &owner)?;
        let excl = ndp
            .get("exclusive_storage")
            .and_then(|v| v.as_bool())
            .unwrap_or(false);
        let live = !offline && vm_capable;
        let lv = |k: &str| -> Result<f64> {
            if live {
                fnum(o, k, &owner)
            } else {
                Ok(0.0)
            }
        };
        let sptotal = if excl {
            lv("total_spindles")? as i64
        } else {
            num(ndp, "spindle_count", &owner)?
        };
        let mut node = Node::new(
            name,
            lv("total_memory")?,
            lv("reserved_memory")? as i64,
            lv("free_memory")? as i64,
            lv("total_disk")?,
            lv("free_disk")? as i64,
            lv("total_cpus")?,
            lv("reserved_cpus")? as i64,
            !live || drained,
            sptotal,
            lv("free_spindles")? as i64,
            gidx,
            excl,
        );
        node.tags = strings(o.get("tags"));
        nodes.push(node);
    }
    let node_idx = |n: &str, inst: &str| -> Result<usize> {
        nodes
            .iter()
            .position(|x| x.name == n)
            .ok_or_else(|| Error::unknown("node", n, format!(" for instance {inst}")))
    };
    let mut instances = Vec::new();
    for (name, i) in obj(get(top, "instances", "iallocator message")?, "instances")? {
        let o = obj(i, &format!("instance '{name}'"))?;
        let mut inst = base_instance(name, o)?;
        let ns = strings(o.get("nodes"));
        let Some(p) = ns.first() else {
            return Err(Error::parse(
                "iallocator request",
                format!("empty node list for instance {name}"),
            ));
        };
        inst.pnode = node_idx(p, name)?;
        inst.snode = match ns.get(1) {
            Some(s) => node_idx(s, name)?,
            None => NO_SECONDARY,
        };
        instances.push(inst);
    }
    let ctags = strings(top.get("cluster_tags"));
    // the first enabled hypervisor is taken as every node's, as Ganeti does
    if strings(top.get("enabled_hypervisors"))
        .first()
        .map(String::as_str)
        == Some("kvm")
    {
        for n in nodes.iter_mut() {
            n.kvm = true;
        }
    }
    Ok(Cluster {
        groups,
        nodes,
        instances,
        tags: ctags,
        ipolicy: IPolicy::default(),
        tag_names: Vec::new(),
    })
}

fn parse_request(req: &Map<String, Value>, cluster: &Cluster) -> Result<RequestKind> {
    let rtype = string(req, "type", "request")?;
    let inst_idx = |n: &str| -> Result<usize> {
        cluster
            .instance_index(n)
            .ok_or_else(|| Error::unknown("instance", n, ""))
    };
    let kind = match rtype.as_str() {
        "allocate" => {
            let name = string(req, "name", "request")?;
            RequestKind::Allocate {
                inst: Box::new(base_instance(&name, req)?),
                required_nodes: num(req, "required_nodes", "request")? as usize,
                group: req
                    .get("group_name")
                    .and_then(|v| v.as_str())
                    .map(str::to_string),
                restrict: req.get("restrict-to-nodes").map(|v| strings(Some(v))),
            }
        }
        "relocate" => {
            let name = string(req, "name", "request")?;
            let idx = inst_idx(&name)?;
            let mut from = Vec::new();
            for n in strings(req.get("relocate_from")) {
                from.push(
                    cluster
                        .node_index(&n)
                        .ok_or_else(|| Error::unknown("node", n.clone(), " in relocate_from"))?,
                );
            }
            RequestKind::Relocate {
                idx,
                required_nodes: num(req, "required_nodes", "request")? as usize,
                from,
            }
        }
        "change-group" => {
            let mut idxs = Vec::new();
            for n in strings(req.get("instances")) {
                idxs.push(inst_idx(&n)?);
            }
            let mut gs = Vec::new();
            for g in strings(req.get("target_groups")) {
                gs.push(
                    cluster
                        .group_index(&g)
                        .ok_or_else(|| Error::unknown("group", g.clone(), ""))?,
                );
            }
            RequestKind::ChangeGroup { idxs, groups: gs }
        }
        "node-evacuate" => {
            let mut idxs = Vec::new();
            for n in strings(req.get("instances")) {
                idxs.push(inst_idx(&n)?);
            }
            let m = string(req, "evac_mode", "request")?;
            let mode = ctx(
                &format!("evac_mode '{m}'"),
                crate::alloc::EvacMode::parse(&m),
            )?;
            RequestKind::NodeEvacuate { idxs, mode }
        }
        "multi-allocate" => {
            let mut v = Vec::new();
            for r in get(req, "instances", "request")?
                .as_array()
                .into_iter()
                .flatten()
            {
                let r = obj(r, "multi-allocate request")?;
                let name = string(r, "name", "multi-allocate request")?;
                v.push((
                    base_instance(&name, r)?,
                    num(r, "required_nodes", "multi-allocate request")? as usize,
                    req.get("group_name")
                        .and_then(|v| v.as_str())
                        .map(str::to_string),
                ));
            }
            RequestKind::MultiAllocate(v)
        }
        "allocate-secondary" => RequestKind::AllocateSecondary {
            idx: inst_idx(&string(req, "name", "request")?)?,
        },
        other => {
            return Err(Error::Invalid(format!("Invalid request type '{other}'")));
        }
    };
    Ok(kind)
}

/// Ganeti's response document.
pub fn response(success: bool, info: &str, result: Value) -> String {
    let mut m = Map::new();
    m.insert("success".into(), json!(success));
    m.insert("info".into(), json!(info));
    m.insert("result".into(), result);
    Value::Object(m).to_string()
}
