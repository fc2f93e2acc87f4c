//! Ganeti's text output formats: tables, node lists, move lines and
//! commands.

use crate::model::{Cluster, Instance, Node};
use crate::types::{IMove, NO_SECONDARY};

/// Formats rows as Ganeti's `printTable`: numeric columns right-aligned,
/// others left-aligned, each line prefixed by `lp` and a space.
pub fn print_table(lp: &str, header: &[String], rows: &[Vec<String>], isnum: &[bool]) -> String {
    let mut table: Vec<Vec<String>> = vec![header.to_vec()];
    table.extend(rows.iter().cloned());
    let ncol = table.iter().map(|r| r.len()).max().unwrap_or(0);
    let mut widths = vec![0; ncol];
    for r in &table {
        for (i, v) in r.iter().enumerate() {
            widths[i] = widths[i].max(v.chars().count());
        }
    }
    let mut out = String::new();
    for r in &table {
        let cells: Vec<String> = r
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let pad = widths[i] - v.chars().count();
                let num = isnum.get(i).copied().unwrap_or(true);
                if pad == 0 {
                    v.clone()
                } else if num {
                    format!("{}{}", " ".repeat(pad), v)
                } else {
                    format!("{}{}", v, " ".repeat(pad))
                }
            })
            .collect();
        out.push_str(lp);
        out.push(' ');
        out.push_str(&cells.join(" "));
        out.push('\n');
    }
    out
}

/// The default fields of `-p`.
pub const DEFAULT_NODE_FIELDS: [&str; 22] = [
    "status", "name", "tmem", "nmem", "imem", "xmem", "fmem", "umem", "rmem", "tdsk", "fdsk",
    "tcpu", "ucpu", "pcnt", "scnt", "pfmem", "pfdsk", "rcpu", "cload", "mload", "dload", "nload",
];

fn node_header(f: &str) -> (&'static str, bool) {
    match f {
        "idx" => ("Index", true),
        "name" | "fqdn" => ("Name", false),
        "status" => ("F", false),
        "tmem" => ("t_mem", true),
        "nmem" => ("n_mem", true),
        "xmem" => ("x_mem", true),
        "fmem" => ("f_mem", true),
        "umem" => ("u_mem", true),
        "amem" => ("a_mem", true),
        "imem" => ("i_mem", true),
        "rmem" => ("r_mem", true),
        "tdsk" => ("t_dsk", true),
        "fdsk" => ("f_dsk", true),
        "tcpu" => ("pcpu", true),
        "ucpu" => ("vcpu", true),
        "pcnt" => ("pcnt", true),
        "scnt" => ("scnt", true),
        "plist" => ("primaries", true),
        "slist" => ("secondaries", true),
        "pfmem" => ("p_fmem", true),
        "pfdsk" => ("p_fdsk", true),
        "rcpu" => ("r_cpu", true),
        "cload" => ("lCpu", true),
        "mload" => ("lMem", true),
        "dload" => ("lDsk", true),
        "nload" => ("lNet", true),
        "ptags" => ("PrimaryTags", false),
        "peermap" => ("PeerMap", false),
        "spindle_count" => ("NodeSpindles", true),
        "hi_spindles" => ("MaxSpindles", true),
        "inst_spindles" => ("InstSpindles", true),
        _ => ("<unknown field>", false),
    }
}

fn show_list(v: &[usize]) -> String {
    let mut v = v.to_vec();
    v.reverse();
    format!(
        "[{}]",
        v.iter()
            .map(|x| x.to_string())
            .collect::<Vec<_>>()
            .join(",")
    )
}

fn node_field(c: &Cluster, idx: usize, n: &Node, f: &str) -> String {
    let s = &n.s;
    match f {
        "idx" => format!("{idx:4}"),
        "name" => n.alias.clone(),
        "fqdn" => n.name.clone(),
        "status" => {
            if s.offline {
                "-".into()
            } else if s.fail_n1 {
                "*".into()
            } else {
                " ".into()
            }
        }
        "tmem" => format!("{:5.0}", s.t_mem),
        "nmem" => format!("{:5}", s.n_mem),
        "xmem" => format!("{:5}", s.x_mem),
        "fmem" => format!("{:5}", s.f_mem),
        "umem" => format!("{:5}", s.unallocated_mem()),
        "imem" => format!("{:5}", s.i_mem),
        "rmem" => format!("{:5}", s.r_mem),
        "amem" => format!("{:5}", s.avail_mem()),
        "tdsk" => format!("{:5.0}", s.t_dsk / 1024.0),
        "fdsk" => format!("{:5}", s.f_dsk.div_euclid(1024)),
        "tcpu" => format!("{:4.0}", s.t_cpu),
        "ucpu" => format!("{:4}", s.u_cpu),
        "pcnt" => format!("{:3}", s.n_pri),
        "scnt" => format!("{:3}", s.n_sec),
        "plist" => show_list(&n.plist),
        "slist" => show_list(&n.slist),
        "pfmem" => format!("{:6.4}", s.p_mem),
        "pfdsk" => format!("{:6.4}", s.p_dsk),
        "rcpu" => format!("{:5.2}", s.p_cpu),
        "cload" => format!("{:5.3}", s.util_load.cpu),
        "mload" => format!("{:5.3}", s.util_load.mem),
        "dload" => format!("{:5.3}", s.util_load.dsk),
        "nload" => format!("{:5.3}", s.util_load.net),
        "ptags" => {
            let mut v: Vec<(String, u32)> = n
                .ptags
                .iter()
                .map(|(t, cnt)| (c_tag(c, *t), *cnt))
                .collect();
            v.sort();
            v.iter()
                .map(|(t, c)| format!("{t}={c}"))
                .collect::<Vec<_>>()
                .join(",")
        }
        "spindle_count" => s.t_spindles.to_string(),
        "hi_spindles" => crate::backend::text::show_double(s.hi_spindles),
        "inst_spindles" => crate::backend::text::show_double(s.inst_spindles),
        _ => "<unknown field>".into(),
    }
}

fn c_tag(c: &Cluster, t: u32) -> String {
    c.tag_names.get(t as usize).cloned().unwrap_or_default()
}

/// Expands a `-p` field list (empty: defaults; leading `+`: defaults plus).
pub fn node_fields(spec: Option<&str>) -> Vec<String> {
    let d: Vec<String> = DEFAULT_NODE_FIELDS.iter().map(|s| s.to_string()).collect();
    match spec {
        None | Some("") => d,
        Some(s) => {
            if let Some(rest) = s.strip_prefix('+') {
                let mut d = d;
                d.extend(
                    rest.split(',')
                        .filter(|x| !x.is_empty())
                        .map(str::to_string),
                );
                d
            } else {
                s.split(',').map(str::to_string).collect()
            }
        }
    }
}

/// The node table of `-p`, for the given node indices.
pub fn print_nodes(c: &Cluster, nodes: &[usize], fields: &[String]) -> String {
    let hdr: Vec<(&str, bool)> = fields.iter().map(|f| node_header(f)).collect();
    let header: Vec<String> = hdr.iter().map(|h| h.0.to_string()).collect();
    let isnum: Vec<bool> = hdr.iter().map(|h| h.1).collect();
    let rows: Vec<Vec<String>> = nodes
        .iter()
        .map(|&i| {
            fields
                .iter()
                .map(|f| node_field(c, i, &c.nodes[i], f))
                .collect()
        })
        .collect();
    print_table("", &header, &rows, &isnum)
}

/// The instance table of `--print-instances`.
pub fn print_insts(c: &Cluster, insts: &[usize]) -> String {
    let header: Vec<String> = [
        "F", "Name", "Pri_node", "Sec_node", "Auto_bal", "vcpu", "mem", "dsk", "lCpu", "lMem",
        "lDsk", "lNet",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let rows: Vec<Vec<String>> = insts
        .iter()
        .map(|&i| {
            let inst = &c.instances[i];
            vec![
                if inst.is_running() { "R" } else { " " }.to_string(),
                inst.name.clone(),
                c.nodes[inst.pnode].name.clone(),
                if inst.snode == NO_SECONDARY {
                    String::new()
                } else {
                    c.nodes[inst.snode].name.clone()
                },
                if inst.auto_balance { "Y" } else { "N" }.to_string(),
                format!("{:3}", inst.vcpus),
                format!("{:5}", inst.mem),
                format!("{:5}", inst.dsk.div_euclid(1024)),
                format!("{:5.3}", inst.util.cpu),
                format!("{:5.3}", inst.util.mem),
                format!("{:5.3}", inst.util.dsk),
                format!("{:5.3}", inst.util.net),
            ]
        })
        .collect();
    let mut isnum = vec![false; 5];
    isnum.extend([true; 7]);
    print_table("", &header, &rows, &isnum)
}

/// The short move description and the `gnt-instance` commands of a move
/// (Ganeti's `computeMoves`).
pub fn compute_moves(
    inst: &Instance,
    name: &str,
    mv: IMove,
    npri: &str,
    nsec: &str,
) -> (String, Vec<String>) {
    let morf = if inst.is_running() {
        "migrate"
    } else {
        "failover"
    };
    let mig = format!("{morf} -f {name}");
    let rep = |n: &str| format!("replace-disks -n {n} {name}");
    match mv {
        IMove::Failover => ("f".into(), vec![mig]),
        IMove::FailoverToAny(_) => (
            format!("fa:{npri}"),
            vec![format!("{morf} -f -n {npri} {name}")],
        ),
        IMove::FailoverAndReplace(_) => (format!("f r:{nsec}"), vec![mig, rep(nsec)]),
        IMove::ReplaceSecondary(_) => (format!("r:{nsec}"), vec![rep(nsec)]),
        IMove::ReplaceAndFailover(_) => (format!("r:{npri} f"), vec![rep(npri), mig]),
        IMove::ReplacePrimary(_) => (format!("f r:{npri} f"), vec![mig.clone(), rep(npri), mig]),
    }
}

/// The opcodes of a move (Ganeti's `iMoveToJob`): a migration that may
/// fall back to failover (a plain failover for forthcoming instances) and
/// replacing the secondary.
pub fn move_opcodes(c: &Cluster, p: &Placement) -> Vec<serde_json::Value> {
    use serde_json::json;
    let inst = &c.instances[p.inst];
    let name = inst.name.as_str();
    let node = |i: usize| c.nodes[i].name.clone();
    let mig = |target: Option<String>| {
        let mut op = if inst.forthcoming {
            json!({
                "OP_ID": "OP_INSTANCE_FAILOVER",
                "instance_name": name,
                "shutdown_timeout": 120,
                "ignore_consistency": false,
                "ignore_ipolicy": false,
                "cleanup": false,
            })
        } else {
            json!({
                "OP_ID": "OP_INSTANCE_MIGRATE",
                "instance_name": name,
                "allow_runtime_changes": false,
                "ignore_ipolicy": false,
                "cleanup": false,
                "allow_failover": true,
                "ignore_hvversions": true,
            })
        };
        if let Some(t) = target {
            op["target_node"] = json!(t);
        }
        op
    };
    let rep = |n: usize| {
        json!({
            "OP_ID": "OP_INSTANCE_REPLACE_DISKS",
            "instance_name": name,
            "early_release": false,
            "ignore_ipolicy": false,
            "mode": "replace_new_secondary",
            "disks": [],
            "remote_node": node(n),
        })
    };
    match p.mv {
        IMove::Failover => vec![mig(None)],
        IMove::FailoverToAny(np) => vec![mig(Some(node(np)))],
        IMove::ReplacePrimary(np) => vec![mig(None), rep(np), mig(None)],
        IMove::ReplaceSecondary(ns) => vec![rep(ns)],
        IMove::ReplaceAndFailover(np) => vec![rep(np), mig(None)],
        IMove::FailoverAndReplace(ns) => vec![mig(None), rep(ns)],
    }
}

/// One applied move.
#[derive(Debug, Clone)]
pub struct Placement {
    pub inst: usize,
    pub old_pnode: usize,
    pub old_snode: usize,
    pub new_pnode: usize,
    pub new_snode: usize,
    pub mv: IMove,
    pub score: f64,
    /// Whether the instance was running (decides migrate vs failover).
    pub running: bool,
}

fn node_alias(c: &Cluster, i: usize) -> &str {
    if i == NO_SECONDARY {
        ""
    } else {
        &c.nodes[i].alias
    }
}

/// The solution line of a move, as hbal prints it.
pub fn solution_line(
    c: &Cluster,
    p: &Placement,
    pos: usize,
    nmlen: usize,
    imlen: usize,
) -> (String, Vec<String>) {
    let pmlen = 2 * nmlen + 1;
    let inst = &c.instances[p.inst];
    let inam = &inst.alias;
    let npri = node_alias(c, p.new_pnode);
    let nsec = node_alias(c, p.new_snode);
    let opri = node_alias(c, p.old_pnode);
    let osec = node_alias(c, p.old_snode);
    let mut tmp = inst.clone();
    tmp.status = if p.running {
        crate::types::InstanceStatus::Running
    } else {
        crate::types::InstanceStatus::AdminDown
    };
    let (moves, cmds) = compute_moves(&tmp, inam, p.mv, npri, nsec);
    let ostr = if p.old_snode == NO_SECONDARY {
        opri.to_string()
    } else {
        format!("{opri}:{osec}")
    };
    let nstr = if p.new_snode == NO_SECONDARY {
        npri.to_string()
    } else {
        format!("{npri}:{nsec}")
    };
    (
        format!(
            "  {pos:3}. {inam:<imlen$} {ostr:<pmlen$} => {nstr:<pmlen$} {:12.8} a={moves}",
            p.score
        ),
        cmds,
    )
}

/// A move job: the involved nodes, the instance and its commands.
#[derive(Debug, Clone)]
pub struct MoveJob {
    pub nodes: Vec<usize>,
    pub inst: usize,
    pub cmds: Vec<String>,
    /// The opcodes of the move, for `hbal -X`.
    pub ops: Vec<serde_json::Value>,
}

/// The move jobs of a sequence of moves made on `before`.
pub fn move_jobs(before: &Cluster, plcs: &[Placement]) -> Vec<MoveJob> {
    plcs.iter()
        .map(|p| {
            let (_, cmds) = solution_line(before, p, 0, 0, 0);
            let mut nodes = Vec::new();
            for n in [p.new_pnode, p.new_snode, p.old_pnode, p.old_snode] {
                if n != NO_SECONDARY && !nodes.contains(&n) {
                    nodes.push(n);
                }
            }
            MoveJob {
                nodes,
                inst: p.inst,
                cmds,
                ops: move_opcodes(before, p),
            }
        })
        .collect()
}

/// Shows a command script as the h* programs' `-C` does: on standard
/// output under `title` for `-`, else written to the file as a shell
/// script.
pub fn show_commands(dest: &str, title: &str, cmds: &str) -> std::io::Result<()> {
    if dest == "-" {
        println!();
        println!("{title}");
        for l in cmds.lines().filter(|l| *l != "  check") {
            println!("  {l}");
        }
    } else {
        std::fs::write(dest, format!("{SH_TEMPLATE}{cmds}"))?;
        println!("The commands have been written to file '{dest}'");
    }
    Ok(())
}

/// Groups consecutive moves touching disjoint nodes into job sets
/// (Ganeti's `splitJobs`).
pub fn split_jobs(jobs: &[MoveJob]) -> Vec<Vec<MoveJob>> {
    let mut sets: Vec<Vec<MoveJob>> = Vec::new();
    let mut buf: Vec<usize> = Vec::new();
    for j in jobs {
        match sets.last_mut() {
            Some(cur) if !j.nodes.iter().any(|n| buf.contains(n)) => {
                cur.push(j.clone());
                buf.extend(j.nodes.iter().copied());
            }
            _ => {
                sets.push(vec![j.clone()]);
                buf = j.nodes.clone();
            }
        }
    }
    sets
}

/// The command script body (Ganeti's `formatCmds`).
pub fn format_cmds(sets: &[Vec<MoveJob>]) -> String {
    let mut out = String::new();
    for (jsn, js) in sets.iter().enumerate() {
        let jsn = jsn + 1;
        for (sn, j) in js.iter().enumerate() {
            let sn = sn + 1;
            if sn == 1 {
                out.push('\n');
                out.push_str(&format!("echo jobset {jsn}, {} jobs\n", js.len()));
            }
            out.push_str(&format!("  echo job {jsn}/{sn}\n"));
            out.push_str("  check\n");
            for c in &j.cmds {
                out.push_str(&format!("  gnt-instance {c}\n"));
            }
        }
    }
    out
}

/// The shell script header of `-C FILE`.
pub const SH_TEMPLATE: &str = "#!/bin/sh\n\n# Auto-generated script for executing cluster rebalancing\n\n# To stop, touch the file /tmp/stop-htools\n\nset -e\n\ncheck() {\n  if [ -f /tmp/stop-htools ]; then\n    echo 'Stop requested, exiting'\n    exit 0\n  fi\n}\n\n";

/// Formats like Haskell's `printf "%.<prec>g"`: fixed notation for zero
/// and for magnitudes in [0.1, 10^7), exponent notation otherwise.
pub fn fmt_g(x: f64, prec: usize) -> String {
    if !x.is_finite() {
        return format!("{x}");
    }
    let a = x.abs();
    if x == 0.0 || (0.1..1e7).contains(&a) {
        return format!("{x:.prec$}");
    }
    let s = format!("{x:.prec$e}");
    match s.split_once('e') {
        Some((m, e)) => format!("{m}e{e}"),
        None => s,
    }
}
