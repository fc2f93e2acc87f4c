//! The simulation backend (`--simu`): groups of identical empty nodes.

use crate::error::{Error, Result};
use crate::model::{Cluster, Group, Node};
use crate::types::{AllocPolicy, IPolicy};

/// Parses a size with an optional unit into MiB (Ganeti's `parseUnit`).
pub fn parse_unit(s: &str) -> Result<i64> {
    let digits: String = s.chars().take_while(|c| c.is_ascii_digit()).collect();
    if digits.is_empty() {
        return Err(Error::parse("size", format!("can't parse string '{s}'")));
    }
    let v: f64 = digits
        .parse::<i64>()
        .map_err(|_| Error::parse("size", format!("can't parse string '{s}'")))?
        as f64;
    let unit = s[digits.len()..].trim_start_matches(' ');
    let up = unit.to_uppercase();
    let dec = (1000.0f64 / 1024.0).powi(2);
    let scale = match unit {
        "" | "m" => 1.0,
        "g" => 1024.0,
        "t" => 1024.0 * 1024.0,
        "M" => dec,
        "G" => dec * 1000.0,
        "T" => dec * 1e6,
        _ => match up.as_str() {
            "MIB" => 1.0,
            "GIB" => 1024.0,
            "TIB" => 1024.0 * 1024.0,
            "MB" => dec,
            "GB" => dec * 1000.0,
            "TB" => dec * 1e6,
            _ => return Err(Error::parse("size", format!("Unknown unit '{unit}'"))),
        },
    };
    Ok((v * scale).trunc() as i64)
}

fn parse_policy(a: &str) -> Result<AllocPolicy> {
    match a {
        "p" => Ok(AllocPolicy::Preferred),
        "a" => Ok(AllocPolicy::LastResort),
        "u" => Ok(AllocPolicy::Unallocable),
        _ => AllocPolicy::parse(a),
    }
}

/// Builds a cluster from `alloc_policy,nodes,disk,mem,cpus[,spindles[,excl]]`
/// descriptions, one group each.
pub fn load(specs: &[String]) -> Result<Cluster> {
    let mut groups = Vec::new();
    let mut nodes = Vec::new();
    for (gi, spec) in specs.iter().enumerate() {
        let g = gi + 1;
        let f: Vec<&str> = spec.split(',').collect();
        if !(5..=7).contains(&f.len()) {
            return Err(Error::parse(
                "simulation spec",
                format!(
                    "Invalid cluster specification, expected 6 comma-separated sections \
                     (allocation policy, node count, disk size, memory size, number of CPUs, \
                     spindles) but got {}: '{spec}'",
                    f.len()
                ),
            ));
        }
        let apol = parse_policy(f[0])?;
        let count: usize = f[1]
            .parse()
            .map_err(|_| Error::parse("simulation spec", format!("bad node count '{}'", f[1])))?;
        let disk = parse_unit(f[2])?;
        let mem = parse_unit(f[3])?;
        let cpu: i64 = f[4]
            .parse()
            .map_err(|_| Error::parse("simulation spec", format!("bad cpu count '{}'", f[4])))?;
        let spindles: i64 = match f.get(5) {
            Some(s) => s
                .parse()
                .map_err(|_| Error::parse("simulation spec", format!("bad spindles '{s}'")))?,
            None => 1,
        };
        let excl = match f.get(6) {
            None | Some(&"False") => false,
            Some(&"True") => true,
            Some(x) => {
                return Err(Error::parse(
                    "simulation spec",
                    format!("bad exclusive storage '{x}'"),
                ))
            }
        };
        for i in 1..=count {
            let mut n = Node::new(
                &format!("node-{g:02}-{i:03}"),
                mem as f64,
                0,
                mem,
                disk as f64,
                disk,
                cpu as f64,
                1,
                false,
                spindles,
                0,
                gi,
                excl,
            );
            n.is_master = g == 1 && i == 1;
            nodes.push(n);
        }
        groups.push(Group {
            name: format!("group-{g:02}"),
            uuid: format!("fake-uuid-{g:02}"),
            alloc_policy: apol,
            tags: Vec::new(),
            networks: Vec::new(),
            ipolicy: IPolicy::default(),
        });
    }
    Ok(Cluster {
        groups,
        nodes,
        instances: Vec::new(),
        tags: Vec::new(),
        ipolicy: IPolicy::default(),
        tag_names: Vec::new(),
    })
}
