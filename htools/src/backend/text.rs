//! Ganeti's text backend: the `-t FILE` format and `-S` saving.
//!
//! Sections separated by empty lines: groups, nodes, instances, cluster
//! tags, and (optionally) instance policies; fields separated by `|`.

use crate::error::{Error, Result};
use crate::model::{Cluster, Disk, Group, Instance, Node};
use crate::types::{
    AllocPolicy, DiskTemplate, IPolicy, ISpec, InstanceStatus, MinMaxISpecs, TemplateExt,
    NO_SECONDARY,
};

fn comma_split(s: &str) -> Vec<String> {
    if s.is_empty() {
        Vec::new()
    } else {
        s.split(',').map(str::to_string).collect()
    }
}

/// Splits like Ganeti's `sepSplit`: a trailing separator yields a final
/// empty part, an empty input yields nothing.
fn sep_split<'a>(lines: &[&'a str]) -> Vec<Vec<&'a str>> {
    if lines.is_empty() {
        return Vec::new();
    }
    let mut out = vec![Vec::new()];
    for l in lines {
        if l.is_empty() {
            out.push(Vec::new());
        } else if let Some(last) = out.last_mut() {
            last.push(*l);
        }
    }
    out
}

fn num<T: std::str::FromStr>(what: &str, owner: &str, v: &str) -> Result<T> {
    v.trim().parse::<T>().map_err(|_| {
        Error::parse(
            owner.to_string(),
            format!("cannot parse {what} value '{v}'"),
        )
    })
}

fn yes_no(what: &str, owner: &str, v: &str) -> Result<bool> {
    match v {
        "Y" => Ok(true),
        "N" => Ok(false),
        _ => Err(Error::parse(
            owner.to_string(),
            format!("invalid {what} value '{v}' (expected Y or N)"),
        )),
    }
}

fn load_group(line: &str) -> Result<Group> {
    let f: Vec<&str> = line.split('|').collect();
    if f.len() < 4 {
        return Err(Error::parse(
            "group line",
            format!("expected at least 4 fields, got {}: '{line}'", f.len()),
        ));
    }
    Ok(Group {
        name: f[0].to_string(),
        uuid: f[1].to_string(),
        alloc_policy: AllocPolicy::parse(f[2])?,
        tags: comma_split(f[3]),
        networks: f.get(4).map(|s| comma_split(s)).unwrap_or_default(),
        ipolicy: IPolicy::default(),
    })
}

fn load_node(line: &str, groups: &[Group]) -> Result<Node> {
    let f: Vec<&str> = line.split('|').collect();
    if f.len() < 9 {
        return Err(Error::parse(
            "node line",
            format!("expected at least 9 fields, got {}: '{line}'", f.len()),
        ));
    }
    let name = f[0];
    let owner = format!("node '{name}'");
    let gdx = groups
        .iter()
        .position(|g| g.uuid == f[8])
        .ok_or_else(|| Error::unknown("group", f[8], format!(" for node {name}")))?;
    let get = |i: usize, def: &'static str| -> &str { f.get(i).copied().unwrap_or(def) };
    if f[1..7].contains(&"?") {
        return Ok(Node::new(
            name, 0.0, 0, 0, 0.0, 0, 0.0, 0, true, 0, 0, gdx, false,
        ));
    }
    let excl = yes_no("exclusive_storage", &owner, get(11, "N"))?;
    let mut n = Node::new(
        name,
        num("total memory", &owner, f[1])?,
        num("node memory", &owner, f[2])?,
        num("free memory", &owner, f[3])?,
        num("total disk", &owner, f[4])?,
        num("free disk", &owner, f[5])?,
        num("total cpus", &owner, f[6])?,
        num("node cpus", &owner, get(13, "1"))?,
        f[7] == "Y",
        num("spindles", &owner, get(9, "1"))?,
        num("free spindles", &owner, get(12, "0"))?,
        gdx,
        excl,
    );
    n.tags = comma_split(get(10, ""));
    n.s.cpu_speed = num("cpu speed", &owner, get(14, "1.0"))?;
    n.is_master = f[7] == "M";
    Ok(n)
}

fn load_inst(line: &str, nodes: &[Node]) -> Result<Instance> {
    let f: Vec<&str> = line.split('|').collect();
    if f.len() < 10 {
        return Err(Error::parse(
            "instance line",
            format!("expected at least 10 fields, got {}: '{line}'", f.len()),
        ));
    }
    let name = f[0];
    let owner = format!("instance '{name}'");
    let lookup = |n: &str| {
        nodes
            .iter()
            .position(|x| x.name == n)
            .ok_or_else(|| Error::unknown("node", n, format!(" for instance {name}")))
    };
    let pidx = lookup(f[6])?;
    let sidx = if f[7].is_empty() {
        NO_SECONDARY
    } else {
        lookup(f[7])?
    };
    let get = |i: usize, def: &'static str| -> &str { f.get(i).copied().unwrap_or(def) };
    let mem = num("memory", &owner, f[1])?;
    let dsk = num("disk", &owner, f[2])?;
    let vcpus = num("vcpus", &owner, f[3])?;
    let status =
        InstanceStatus::parse(f[4]).map_err(|e| Error::parse(owner.clone(), e.to_string()))?;
    let auto_bal = yes_no("auto_balance", &owner, f[5])?;
    let dt = DiskTemplate::parse(f[8]).map_err(|e| Error::parse(owner.clone(), e.to_string()))?;
    let su = num("spindle use", &owner, get(10, "1"))?;
    let spindles = match get(11, "-") {
        "-" => None,
        s => Some(num("spindles", &owner, s)?),
    };
    let forthcoming = yes_no("forthcoming", &owner, get(12, "N"))?;
    let inst = Instance::new(
        name,
        mem,
        dsk,
        vec![Disk {
            size: dsk,
            spindles,
        }],
        vcpus,
        status,
        comma_split(f[9]),
        auto_bal,
        pidx,
        sidx,
        dt,
        su,
        forthcoming,
    );
    if inst.has_secondary() && sidx == pidx {
        return Err(Error::parse(
            owner,
            format!("has same primary and secondary node - {}", f[6]),
        ));
    }
    Ok(inst)
}

fn load_ispec(owner: &str, s: &str) -> Result<ISpec> {
    let f: Vec<&str> = s.split(',').collect();
    if f.len() < 6 {
        return Err(Error::parse(
            format!("ipolicy of {owner}"),
            format!("invalid ispec data '{s}' (expected 6 fields)"),
        ));
    }
    Ok(ISpec {
        mem_size: num("memsize", owner, f[0])?,
        cpu_count: num("cpucount", owner, f[1])?,
        disk_size: num("disksize", owner, f[2])?,
        disk_count: num("diskcount", owner, f[3])?,
        nic_count: num("niccount", owner, f[4])?,
        spindle_use: num("spindleuse", owner, f[5])?,
    })
}

fn load_ipolicy(line: &str) -> Result<(String, IPolicy)> {
    let f: Vec<&str> = line.split('|').collect();
    if f.len() < 6 {
        return Err(Error::parse(
            "ipolicy line",
            format!("expected at least 6 fields, got {}: '{line}'", f.len()),
        ));
    }
    let owner = f[0];
    let disp = if owner.is_empty() { "cluster" } else { owner };
    let std = load_ispec(disp, f[1])?;
    let specs: Vec<&str> = if f[2].is_empty() {
        Vec::new()
    } else {
        f[2].split(';').collect()
    };
    if !specs.len().is_multiple_of(2) {
        return Err(Error::parse(
            format!("ipolicy of {disp}"),
            "odd number of min/max specs",
        ));
    }
    let mut minmax = Vec::new();
    for pair in specs.chunks(2) {
        minmax.push(MinMaxISpecs {
            min: load_ispec(disp, pair[0])?,
            max: load_ispec(disp, pair[1])?,
        });
    }
    let mut dts = Vec::new();
    for d in comma_split(f[3]) {
        dts.push(DiskTemplate::parse(&d)?);
    }
    Ok((
        owner.to_string(),
        IPolicy {
            minmax,
            std,
            disk_templates: dts,
            vcpu_ratio: num("vcpu_ratio", disp, f[4])?,
            spindle_ratio: num("spindle_ratio", disp, f[5])?,
        },
    ))
}

fn check_unique<'a>(kind: &'static str, names: impl Iterator<Item = &'a str>) -> Result<()> {
    let mut seen = std::collections::HashSet::new();
    for n in names {
        if !seen.insert(n) {
            return Err(Error::Invalid(format!("duplicate {kind} name '{n}'")));
        }
    }
    Ok(())
}

/// Parses the text format into an unmerged cluster (instances not yet
/// placed on nodes; see [`crate::loader`]).
pub fn parse(data: &str) -> Result<Cluster> {
    let lines: Vec<&str> = data.lines().collect();
    let sections = sep_split(&lines);
    if sections.len() < 4 {
        return Err(Error::parse(
            "cluster data",
            format!(
                "Invalid format of the input file: {} sections instead of 4 or more",
                sections.len()
            ),
        ));
    }
    let mut groups = sections[0]
        .iter()
        .map(|l| load_group(l))
        .collect::<Result<Vec<_>>>()?;
    check_unique("group", groups.iter().map(|g| g.uuid.as_str()))?;
    let nodes = sections[1]
        .iter()
        .map(|l| load_node(l, &groups))
        .collect::<Result<Vec<_>>>()?;
    check_unique("node", nodes.iter().map(|n| n.name.as_str()))?;
    let instances = sections[2]
        .iter()
        .map(|l| load_inst(l, &nodes))
        .collect::<Result<Vec<_>>>()?;
    let tags = sections[3].iter().map(|s| s.to_string()).collect();
    let mut cpol = IPolicy::default();
    if let Some(pols) = sections.get(4) {
        for l in pols {
            let (owner, pol) = load_ipolicy(l)?;
            if owner.is_empty() {
                cpol = pol;
            } else {
                let g = groups
                    .iter_mut()
                    .find(|g| g.name == owner)
                    .ok_or_else(|| Error::unknown("group", owner.clone(), " in ipolicy"))?;
                g.ipolicy = pol;
            }
        }
    }
    Ok(Cluster {
        groups,
        nodes,
        instances,
        tags,
        ipolicy: cpol,
        tag_names: Vec::new(),
    })
}

/// Reads and parses a text file.
pub fn load_file(path: &str) -> Result<Cluster> {
    let data = std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.to_string(),
        source,
    })?;
    parse(&data).map_err(|e| Error::parse(format!("file '{path}'"), e.to_string()))
}

/// Formats a float as Haskell's `show` does for `Double`.
pub fn show_double(x: f64) -> String {
    if x == 0.0 {
        return "0.0".into();
    }
    let a = x.abs();
    if (0.1..1e7).contains(&a) {
        let s = format!("{x}");
        if s.contains('.') {
            s
        } else {
            format!("{s}.0")
        }
    } else {
        let s = format!("{x:e}");
        let (m, e) = s.split_once('e').unwrap_or((&s, "0"));
        let m = if m.contains('.') {
            m.to_string()
        } else {
            format!("{m}.0")
        };
        format!("{m}e{e}")
    }
}

fn ser_ispec(s: &ISpec) -> String {
    format!(
        "{},{},{},{},{},{}",
        s.mem_size, s.cpu_count, s.disk_size, s.disk_count, s.nic_count, s.spindle_use
    )
}

fn ser_ipolicy(owner: &str, p: &IPolicy) -> String {
    let mm: Vec<String> = p
        .minmax
        .iter()
        .flat_map(|m| [ser_ispec(&m.min), ser_ispec(&m.max)])
        .collect();
    let dts: Vec<&str> = p.disk_templates.iter().map(|d| d.as_str()).collect();
    format!(
        "{owner}|{}|{}|{}|{}|{}",
        ser_ispec(&p.std),
        mm.join(";"),
        dts.join(","),
        show_double(p.vcpu_ratio),
        show_double(p.spindle_ratio)
    )
}

fn unlines(v: Vec<String>) -> String {
    let mut s = String::new();
    for l in v {
        s.push_str(&l);
        s.push('\n');
    }
    s
}

/// Serialises a (merged) cluster in Ganeti's text format.
pub fn serialize(c: &Cluster) -> String {
    let g = unlines(
        c.groups
            .iter()
            .map(|g| {
                format!(
                    "{}|{}|{}|{}|{}",
                    g.name,
                    g.uuid,
                    g.alloc_policy.as_str(),
                    g.tags.join(","),
                    g.networks.join(",")
                )
            })
            .collect(),
    );
    let n = unlines(
        c.nodes
            .iter()
            .map(|n| {
                let s = &n.s;
                format!(
                    "{}|{:.0}|{}|{}|{:.0}|{}|{:.0}|{}|{}|{}|{}|{}|{}|{}|{:.6}",
                    n.name,
                    s.t_mem,
                    s.n_mem,
                    s.f_mem,
                    s.t_dsk,
                    s.f_dsk,
                    s.t_cpu,
                    if s.offline {
                        'Y'
                    } else if n.is_master {
                        'M'
                    } else {
                        'N'
                    },
                    c.groups[n.group].uuid,
                    s.t_spindles,
                    n.tags.join(","),
                    if s.excl_storage { "Y" } else { "N" },
                    s.f_spindles,
                    s.n_cpu,
                    s.cpu_speed
                )
            })
            .collect(),
    );
    let i = unlines(
        c.instances
            .iter()
            .map(|i| {
                format!(
                    "{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}",
                    i.name,
                    i.mem,
                    i.dsk,
                    i.vcpus,
                    i.status.as_str(),
                    if i.auto_balance { "Y" } else { "N" },
                    c.nodes[i.pnode].name,
                    if i.snode == NO_SECONDARY {
                        ""
                    } else {
                        &c.nodes[i.snode].name
                    },
                    i.template.as_str(),
                    i.tags.join(","),
                    i.spindle_use,
                    match i.total_spindles() {
                        None => "-".to_string(),
                        Some(x) => x.to_string(),
                    },
                    if i.forthcoming { "Y" } else { "N" }
                )
            })
            .collect(),
    );
    let t = unlines(c.tags.clone());
    let mut pols = vec![ser_ipolicy("", &c.ipolicy)];
    pols.extend(c.groups.iter().map(|g| ser_ipolicy(&g.name, &g.ipolicy)));
    let p = unlines(pols);
    [g, n, i, t, p].join("\n")
}
