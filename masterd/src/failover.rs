//! `gnt-cluster master-failover`, the part that runs on the node that is to
//! become the master (`ganeti-masterd --master-failover`, which the
//! command runs in that node's tree): the vote, stopping the old master,
//! and the new master's configuration and queue made from this node's
//! copies. The command then starts the master daemons here.
//!
//! As in Ganeti 3.0:
//! - every node known to this node's ssconf (the online ones with
//!   `--ignore-offline-nodes`) is asked who it thinks the master is; a
//!   strict majority must answer, else the failover is refused unless
//!   `--no-voting` is given;
//! - the node must be a master candidate and not already the master;
//! - the master most nodes voted for must be the one this node believes
//!   in (else this node's configuration is out of date);
//! - the old master's IP is taken down and its master daemons stopped (a
//!   warning, not a failure, when its node does not answer).
//!
//! Where Ganeti lists as "unhealthy" every node nobody voted for as master
//! (a slip in its `MajorityHealthy`), we list the nodes that did not answer.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use luxi::{ErrorCode, GanetiError};
use objects::error_chain;
use objects::paths::Paths;
use rpc::api::{MasterNetworkParams, MasterNodeName, NodeDeactivateMasterIp, NodeStopMaster};
use rpc::client::NodeClient;

use crate::config::{Changes, ConfigDump, ConfigStore};
use crate::jobqueue::JobQueue;

/// How long a node gets to answer its vote.
const VOTE_TIMEOUT: Duration = Duration::from_secs(10);

/// What `master-failover` was asked for.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    pub no_voting: bool,
    pub ignore_offline_nodes: bool,
}

/// Why the failover did not happen.
#[derive(Debug, thiserror::Error)]
pub enum FailoverError {
    /// A Ganeti error the command reports as Ganeti does.
    #[error("{}", .0.message())]
    Ganeti(GanetiError),
    /// Too few nodes answered the vote (Ganeti prints this and exits 1).
    #[error("Master-failover with voting is only possible if the majority of nodes are still healthy; use the --no-voting option after ensuring by other means that you won't end up in a dual-master scenario. Unhealthy nodes: {}", py_list(.0))]
    NoMajority(Vec<String>),
}

/// What the failover did.
#[derive(Debug, Default)]
pub struct Outcome {
    /// 0, or 1 when something needs the operator's attention.
    pub rcode: i32,
    pub warnings: Vec<String>,
    /// The old master ran `ganeti-rapi` (so the new one should).
    pub rapi: bool,
    pub old_master: String,
}

/// A Python list of strings, as Ganeti prints one.
fn py_list(v: &[String]) -> String {
    let items: Vec<String> = v.iter().map(|s| format!("'{s}'")).collect();
    format!("[{}]", items.join(", "))
}

/// The votes: for each master named, how many nodes named it; most votes
/// first (ties by name). Nodes that did not answer, or named no master,
/// give no vote.
pub fn count_votes(answers: &[(String, Option<String>)]) -> Vec<(String, usize)> {
    let mut votes: BTreeMap<&str, usize> = BTreeMap::new();
    for (_, m) in answers {
        if let Some(m) = m {
            *votes.entry(m.as_str()).or_insert(0) += 1;
        }
    }
    let mut list: Vec<(String, usize)> =
        votes.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    // Stable: equal counts stay in name order.
    list.sort_by_key(|v| std::cmp::Reverse(v.1));
    list
}

/// Ganeti's rule: a strict majority of the `nodes` asked gave a vote.
pub fn majority_healthy(nodes: usize, votes: &[(String, usize)]) -> bool {
    let total: usize = votes.iter().map(|(_, n)| n).sum();
    2 * total > nodes
}

/// One ssconf value, trimmed ("" when missing).
fn ssconf(paths: &Paths, key: &str) -> String {
    std::fs::read_to_string(paths.ssconf(key))
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

fn ssconf_lines(paths: &Paths, key: &str) -> Vec<String> {
    ssconf(paths, key)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// What this node's ssconf files say.
struct Ssconf {
    master: String,
    nodes: Vec<String>,
    online: Vec<String>,
    candidates: Vec<String>,
    ips: BTreeMap<String, IpAddr>,
    master_params: MasterNetworkParams,
}

fn read_ssconf(paths: &Paths) -> Result<Ssconf, FailoverError> {
    let master = ssconf(paths, "master_node");
    if master.is_empty() {
        return Err(FailoverError::Ganeti(GanetiError::configuration(format!(
            "Can't read ssconf file {}",
            paths.ssconf("master_node").display()
        ))));
    }
    let ips = ssconf_lines(paths, "node_primary_ips")
        .iter()
        .filter_map(|l| {
            let (n, ip) = l.split_once(' ')?;
            Some((n.to_string(), ip.trim().parse().ok()?))
        })
        .collect();
    Ok(Ssconf {
        master,
        nodes: ssconf_lines(paths, "node_list"),
        online: ssconf_lines(paths, "online_nodes"),
        candidates: ssconf_lines(paths, "master_candidates"),
        ips,
        master_params: MasterNetworkParams {
            ip: ssconf(paths, "master_ip"),
            netmask: ssconf(paths, "master_netmask").parse().unwrap_or(32),
            netdev: ssconf(paths, "master_netdev"),
        },
    })
}

fn client(paths: &Paths, ss: &Ssconf, node: &str, port: u16) -> Result<NodeClient, String> {
    let ip = ss
        .ips
        .get(node)
        .ok_or_else(|| format!("no address known for node {node}"))?;
    NodeClient::from_paths(paths, node, SocketAddr::new(*ip, port)).map_err(|e| error_chain(&e))
}

/// Asks every node of `nodes` who the master is, all at once; a node
/// that does not answer names no one.
async fn gather_votes(
    paths: &Paths,
    ss: &Ssconf,
    nodes: &[String],
    port: u16,
) -> Vec<(String, Option<String>)> {
    let mut tasks = tokio::task::JoinSet::new();
    for (i, n) in nodes.iter().enumerate() {
        let c = client(paths, ss, n, port);
        let n = n.clone();
        tasks.spawn(async move {
            let answer = match c {
                Ok(c) => c
                    .call_with_timeout(&MasterNodeName {}, VOTE_TIMEOUT)
                    .await
                    .map_err(|e| error_chain(&e)),
                Err(e) => Err(e),
            };
            let vote = match answer {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!("Error contacting node {n}: {e}");
                    None
                }
            };
            (i, n, vote)
        });
    }
    let mut out: Vec<(usize, String, Option<String>)> = Vec::new();
    while let Some(r) = tasks.join_next().await {
        if let Ok(v) = r {
            out.push(v);
        }
    }
    out.sort_by_key(|v| v.0);
    out.into_iter().map(|(_, n, v)| (n, v)).collect()
}

/// The checks and the vote.
async fn check(
    paths: &Paths,
    me: &str,
    ss: &Ssconf,
    opts: Options,
    port: u16,
) -> Result<(), FailoverError> {
    let mut votes = None;
    if !opts.no_voting {
        let asked = if opts.ignore_offline_nodes {
            ss.online.clone()
        } else {
            ss.nodes.clone()
        };
        let answers = gather_votes(paths, ss, &asked, port).await;
        let list = count_votes(&answers);
        tracing::info!("Total {} nodes, votes: {list:?}", asked.len());
        if !majority_healthy(asked.len(), &list) {
            let unhealthy = answers
                .iter()
                .filter(|(_, m)| m.is_none())
                .map(|(n, _)| n.clone())
                .collect();
            return Err(FailoverError::NoMajority(unhealthy));
        }
        votes = Some(list);
    }
    if ss.master == me {
        return Err(FailoverError::Ganeti(GanetiError::prereq(
            format!(
                "This commands must be run on the node where you want the new master to be. {} is already the master",
                ss.master
            ),
            ErrorCode::Inval,
        )));
    }
    if !ss.candidates.iter().any(|c| c == me) {
        let others: Vec<&str> = ss
            .candidates
            .iter()
            .filter(|c| **c != ss.master)
            .map(String::as_str)
            .collect();
        return Err(FailoverError::Ganeti(GanetiError::prereq(
            format!(
                "This node is not among the nodes marked as master candidates. Only these nodes can become masters. Current list of master candidates is:\n{}",
                others.join("\n")
            ),
            ErrorCode::State,
        )));
    }
    if let Some((voted, _)) = votes.as_ref().and_then(|v| v.first()) {
        if *voted != ss.master {
            return Err(FailoverError::Ganeti(GanetiError::prereq(
                format!(
                    "I have a wrong configuration, I believe the master is {} but the other nodes voted {voted}. Please resync the configuration of this node.",
                    ss.master
                ),
                ErrorCode::State,
            )));
        }
    }
    Ok(())
}

/// The newest configuration this node holds: its copy, else its own
/// database. A node's copy is removed when it becomes the master, so a
/// copy it holds was pushed after it last was: it is newer than the own
/// database even where its serial is lower (an old master that died with
/// changes it had not pushed, which the cluster went on without).
fn latest_config(paths: &Paths) -> Result<ConfigDump, FailoverError> {
    let conf_err = |m: String| FailoverError::Ganeti(GanetiError::configuration(m));
    let copy: Option<ConfigDump> = match std::fs::read(paths.config_copy()) {
        Ok(bytes) => Some(serde_json::from_slice(&bytes).map_err(|e| {
            conf_err(format!(
                "Cannot read the configuration copy {}: {e}",
                paths.config_copy().display()
            ))
        })?),
        Err(_) => None,
    };
    if let Some(c) = copy {
        return Ok(c);
    }
    let own: Option<ConfigDump> = if paths.config_db().exists() {
        ConfigStore::open(&paths.config_db())
            .ok()
            .map(|s| s.read().dump())
    } else {
        None
    };
    match own {
        Some(o) => Ok(o),
        None => Err(conf_err(
            "This node holds no copy of the configuration (it was never pushed one as a master candidate)".into(),
        )),
    }
}

/// The serials of the other nodes' configuration copies, by node (those
/// that answer).
async fn copy_serials(paths: &Paths, ss: &Ssconf, me: &str, port: u16) -> Vec<(String, u64)> {
    let mut tasks = tokio::task::JoinSet::new();
    for n in ss.nodes.iter().filter(|n| *n != me) {
        let c = client(paths, ss, n, port);
        let n = n.clone();
        tasks.spawn(async move {
            let c = c.ok()?;
            let req = rpc::api::NodeVerify::default();
            let r = c.call_with_timeout(&req, VOTE_TIMEOUT).await.ok()?;
            Some((n, r.config_serial))
        });
    }
    let mut out = Vec::new();
    while let Some(r) = tasks.join_next().await {
        if let Ok(Some(v)) = r {
            out.push(v);
        }
    }
    out.sort();
    out
}

/// Makes this node's configuration and queue databases from its copies,
/// with this node as the master. `others` are the other nodes' copy
/// serials: the new master's serial goes above every one of them, so that
/// every candidate takes its pushes (a candidate whose copy was newer than
/// this node's, which only a master that died before pushing to all can
/// leave, loses those changes: a warning says so).
fn take_over(
    paths: &Paths,
    me: &str,
    old_master: &str,
    others: &[(String, u64)],
    warnings: &mut Vec<String>,
) -> Result<(), FailoverError> {
    let conf_err = |m: String| FailoverError::Ganeti(GanetiError::configuration(m));
    let mut dump = latest_config(paths)?;
    for (n, serial) in others {
        if *serial > dump.cluster.serial_no {
            warnings.push(format!(
                "Node {n} holds configuration serial {serial}, newer than this node's {}; the changes only it holds are lost",
                dump.cluster.serial_no
            ));
        }
    }
    let top = others.iter().map(|(_, s)| *s).max().unwrap_or(0);
    dump.cluster.serial_no = dump.cluster.serial_no.max(top);
    let by_name = |n: &str| dump.nodes.iter().find(|x| x.name == n).cloned();
    if by_name(old_master).is_none() {
        return Err(FailoverError::Ganeti(GanetiError::prereq(
            format!("Could not find old master node '{old_master}' in cluster configuration."),
            ErrorCode::NoEnt,
        )));
    }
    let Some(mut new_master) = by_name(me) else {
        return Err(FailoverError::Ganeti(GanetiError::prereq(
            format!("Could not find new master node '{me}' in cluster configuration."),
            ErrorCode::NoEnt,
        )));
    };
    tracing::info!(
        "Setting master to {me}, old master: {old_master} (configuration serial {})",
        dump.cluster.serial_no
    );
    ConfigStore::restore(&paths.config_db(), &dump).map_err(|e| {
        conf_err(format!(
            "Cannot store the configuration: {}",
            error_chain(&e)
        ))
    })?;
    let store = ConfigStore::open(&paths.config_db()).map_err(|e| {
        conf_err(format!(
            "Cannot open the configuration: {}",
            error_chain(&e)
        ))
    })?;
    let mut cluster = store.cluster();
    cluster.master_node = new_master.uuid.clone();
    new_master.master_candidate = true;
    new_master.offline = false;
    new_master.drained = false;
    let mut ch = Changes::new();
    ch.cluster(cluster).node(new_master);
    store.commit(ch).map_err(|e| {
        conf_err(format!(
            "Cannot update the configuration: {}",
            error_chain(&e)
        ))
    })?;
    drop(store);
    // The queue copy: every job as the old master last pushed it.
    let dir = paths.queue_copy_dir();
    let mut jobs = Vec::new();
    if let Ok(entries) = std::fs::read_dir(&dir) {
        for e in entries.flatten() {
            let Ok(text) = std::fs::read(e.path()) else {
                continue;
            };
            let Ok(v) = serde_json::from_slice::<serde_json::Value>(&text) else {
                tracing::warn!("skipping unreadable job copy {}", e.path().display());
                continue;
            };
            if let (Some(id), Some(data)) = (
                v.get("id").and_then(|i| i.as_u64()),
                v.get("data").and_then(|d| d.as_str()),
            ) {
                jobs.push((
                    id,
                    v["archived"].as_bool().unwrap_or(false),
                    data.to_string(),
                ));
            }
        }
    }
    jobs.sort_by_key(|j| j.0);
    let last_id = std::fs::read_to_string(dir.join("serial"))
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or(0)
        .max(jobs.last().map_or(0, |j| j.0));
    let n = JobQueue::import(&paths.queue_db(), &jobs, last_id).map_err(|e| {
        conf_err(format!(
            "Cannot store the job queue copy: {}",
            error_chain(&e)
        ))
    })?;
    tracing::info!("imported {n} jobs from the queue copy");
    // The databases hold them now; a stale copy must never be taken
    // over newer states later (see `latest_config`).
    for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
        let _ = std::fs::remove_file(e.path());
    }
    let _ = std::fs::remove_file(paths.config_copy());
    let _ = std::fs::remove_file(paths.config_copy_serial());
    Ok(())
}

/// The whole failover on this node (`me`), up to the start of the new
/// master daemons.
pub async fn master_failover(
    paths: &Paths,
    me: &str,
    opts: Options,
    port: u16,
) -> Result<Outcome, FailoverError> {
    let ss = read_ssconf(paths)?;
    check(paths, me, &ss, opts, port).await?;
    let old = ss.master.clone();
    let mut out = Outcome {
        old_master: old.clone(),
        ..Outcome::default()
    };
    tracing::info!("Stopping the master daemon on node {old}");
    match client(paths, &ss, &old, port) {
        Ok(c) => {
            let req = NodeDeactivateMasterIp {
                params: ss.master_params.clone(),
            };
            if let Err(e) = c.call(&req).await {
                let w = format!("Could not disable the master IP: {}", error_chain(&e));
                tracing::warn!("{w}");
                out.warnings.push(w);
            }
            match c.call(&NodeStopMaster {}).await {
                Ok(stopped) => out.rapi = stopped.iter().any(|d| d == "ganeti-rapi"),
                Err(e) => {
                    let w = format!(
                        "Could not disable the master role on the old master {old}, please disable manually: {}",
                        error_chain(&e)
                    );
                    tracing::error!("{w}");
                    out.warnings.push(w);
                }
            }
        }
        Err(e) => out.warnings.push(format!(
            "Could not disable the master role on the old master {old}, please disable manually: {e}"
        )),
    }
    let others = copy_serials(paths, &ss, me, port).await;
    take_over(paths, me, &old, &others, &mut out.warnings)?;
    // Every node learns the new master now, as Ganeti's configuration
    // update rewrites the ssconf files; the new master daemon sends the
    // rest when it starts.
    announce(paths, &ss, me, port).await;
    Ok(out)
}

/// Writes `ssconf_master_node` = `me` here and on every node that
/// answers (a node that does not is logged; the new master daemon sends
/// it again).
async fn announce(paths: &Paths, ss: &Ssconf, me: &str, port: u16) {
    let values: BTreeMap<String, String> = [("master_node".to_string(), me.to_string())].into();
    if let Err(e) = crate::master::write_ssconf_local(paths, &values) {
        tracing::warn!("cannot write the local ssconf files: {e}");
    }
    let mut tasks = tokio::task::JoinSet::new();
    for n in ss.nodes.iter().filter(|n| *n != me) {
        let c = client(paths, ss, n, port);
        let req = rpc::api::WriteSsconfFiles {
            values: values.clone(),
        };
        let n = n.clone();
        tasks.spawn(async move {
            let r = match c {
                Ok(c) => c
                    .call_with_timeout(&req, VOTE_TIMEOUT)
                    .await
                    .map_err(|e| error_chain(&e)),
                Err(e) => Err(e),
            };
            if let Err(e) = r {
                tracing::warn!("cannot tell node {n} the new master: {e}");
            }
        });
    }
    while tasks.join_next().await.is_some() {}
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answers(v: &[(&str, Option<&str>)]) -> Vec<(String, Option<String>)> {
        v.iter()
            .map(|(n, m)| (n.to_string(), m.map(str::to_string)))
            .collect()
    }

    #[test]
    fn votes_are_counted_most_first() {
        let list = count_votes(&answers(&[
            ("node1", Some("node1")),
            ("node2", Some("node1")),
            ("node3", Some("node3")),
            ("node4", None),
        ]));
        assert_eq!(
            list,
            vec![("node1".to_string(), 2), ("node3".to_string(), 1)]
        );
    }

    #[test]
    fn a_strict_majority_of_answers_is_needed() {
        let three_of_three = count_votes(&answers(&[
            ("a", Some("a")),
            ("b", Some("a")),
            ("c", Some("a")),
        ]));
        assert!(majority_healthy(3, &three_of_three));
        let two_of_three =
            count_votes(&answers(&[("a", Some("a")), ("b", Some("a")), ("c", None)]));
        assert!(majority_healthy(3, &two_of_three));
        let one_of_three = count_votes(&answers(&[("a", Some("a")), ("b", None), ("c", None)]));
        assert!(!majority_healthy(3, &one_of_three));
        // Two nodes, one down: half is not a majority (hence --no-voting).
        let one_of_two = count_votes(&answers(&[("a", Some("a")), ("b", None)]));
        assert!(!majority_healthy(2, &one_of_two));
        assert!(!majority_healthy(0, &[]));
    }

    #[test]
    fn unhealthy_nodes_are_listed_as_python_does() {
        let e = FailoverError::NoMajority(vec!["node2".into(), "node3".into()]);
        assert!(e
            .to_string()
            .ends_with("Unhealthy nodes: ['node2', 'node3']"));
    }

    #[test]
    fn the_copy_pushed_since_the_node_was_master_is_taken() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths::new(dir.path());
        std::fs::create_dir_all(paths.data_dir()).unwrap();
        let cluster = objects::Cluster::new("c", "cl", "n1", "127.0.0.1", 1.0);
        let group = objects::NodeGroup::new("g", "default", 1.0);
        let node = objects::Node::new("n1", "node1", "127.0.0.1", "g", 1.0);
        let store =
            ConfigStore::create(&paths.config_db(), cluster, group.clone(), node.clone()).unwrap();
        let mut ch = Changes::new();
        ch.node(objects::Node::new("n2", "node2", "127.0.0.2", "g", 1.0));
        store.commit(ch).unwrap();
        let mut copy = store.read().dump();
        drop(store);
        // No copy: the own database.
        assert_eq!(latest_config(&paths).unwrap().nodes.len(), 2);
        // A copy was pushed after this node last was the master: it wins,
        // even with a lower serial (the own database may hold changes of
        // a master that died before pushing them).
        copy.cluster.serial_no = 1;
        copy.nodes.pop();
        std::fs::write(paths.config_copy(), serde_json::to_vec(&copy).unwrap()).unwrap();
        assert_eq!(latest_config(&paths).unwrap().nodes.len(), 1);
    }
}
