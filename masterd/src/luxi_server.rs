//! The LUXI server: a unix socket, ETX-framed JSON requests, one task per
//! connection. Every malformed request gets an encoded error and the
//! connection (and daemon) keeps serving.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use luxi::error::GanetiError;
use luxi::framing::{aio, FrameError};
use luxi::protocol::{self, LUXI_VERSION};
use luxi::query::QueryRequest;
use luxi::request::Request;
use serde_json::{json, Value};
use tokio::io::BufReader;
use tokio::net::{UnixListener, UnixStream};

use crate::master::Master;

/// Binds the LUXI socket (mode 0660), replacing a stale one.
pub fn bind(path: &Path) -> std::io::Result<UnixListener> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    if path.exists() {
        // A socket nobody answers on is left over from a dead daemon.
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AddrInUse,
                format!("another master daemon is serving {}", path.display()),
            ));
        }
        std::fs::remove_file(path)?;
    }
    let l = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))?;
    Ok(l)
}

/// Serves connections until the listener fails.
pub async fn serve(master: Arc<Master>, listener: UnixListener) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let m = master.clone();
                tokio::spawn(async move { handle(m, stream).await });
            }
            Err(e) => {
                tracing::error!("LUXI accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn handle(master: Arc<Master>, stream: UnixStream) {
    let (r, mut w) = stream.into_split();
    let mut r = BufReader::new(r);
    loop {
        let msg = match aio::read_message(&mut r).await {
            Ok(m) => m,
            Err(FrameError::Closed) => return,
            Err(FrameError::Io(e)) => {
                tracing::debug!("LUXI connection error: {e}");
                return;
            }
            Err(e) => {
                // Oversized, truncated or not UTF-8: answer, then drop the
                // connection (its framing can no longer be trusted).
                let reply = protocol::format_response(
                    Err(GanetiError::luxi(format!("Invalid LUXI message: {e}"))),
                    Some(LUXI_VERSION),
                );
                let _ = aio::write_message(&mut w, &reply).await;
                return;
            }
        };
        let started = std::time::Instant::now();
        let (method, result) = match protocol::parse_request(&msg)
            .and_then(|r| Request::parse(&r.method, &r.args))
        {
            Ok(Request::Query(q)) => ("Query", query_json(&master, &q).await.map(Json::Message)),
            Ok(req) => (req.method(), dispatch(&master, req).await.map(Json::Value)),
            Err(e) => ("", Err(e)),
        };
        if let Err(e) = &result {
            tracing::debug!("LUXI request failed: {e}");
        }
        let reply = match result {
            Ok(Json::Message(reply)) => reply,
            Ok(Json::Value(v)) => protocol::format_response(Ok(v), Some(LUXI_VERSION)),
            Err(e) => protocol::format_response(Err(e), Some(LUXI_VERSION)),
        };
        tracing::debug!(
            method,
            bytes = reply.len(),
            ms = started.elapsed().as_secs_f64() * 1e3,
            "LUXI request answered"
        );
        if aio::write_message(&mut w, &reply).await.is_err() {
            return;
        }
    }
}

/// A method's result as a JSON value, or the whole reply message already
/// written as JSON text.
enum Json {
    Value(Value),
    Message(String),
}

/// `Query`, its whole reply message written straight as JSON text, row by
/// row: the rows of thousands of instances are never all held as JSON
/// values, nor copied into an envelope. The same answer as [`dispatch`]
/// gives.
async fn query_json(master: &Arc<Master>, req: &QueryRequest) -> Result<String, GanetiError> {
    let mut out = Vec::with_capacity(64 * 1024);
    protocol::start_response_json(&mut out);
    crate::query::query_json(
        master,
        req.what.as_str(),
        &req.fields,
        &req.filter,
        &mut out,
    )
    .await?;
    protocol::finish_response_json(&mut out, Some(LUXI_VERSION));
    String::from_utf8(out)
        .map_err(|e| GanetiError::luxi(format!("Cannot encode the query response: {e}")))
}

/// Runs one LUXI request.
pub async fn dispatch(master: &Arc<Master>, req: Request) -> Result<Value, GanetiError> {
    let queue = master.queue();
    match req {
        Request::SubmitJob(ops) => Ok(json!(queue.submit(ops).await?)),
        Request::SubmitJobToDrainedQueue(ops) => {
            Ok(json!(queue.submit_to_drained_queue(ops).await?))
        }
        Request::SubmitManyJobs(jobs) => {
            // Every job valid, or none submitted (as Ganeti's luxid, which
            // refuses the whole call); a drained queue refuses it too.
            let ids = queue.submit_all_or_none(jobs).await?;
            Ok(Value::Array(
                ids.into_iter().map(|id| json!([true, id])).collect(),
            ))
        }
        Request::WaitForJobChange {
            job,
            fields,
            prev_job_info,
            prev_log_serial,
            timeout,
        } => {
            queue
                .wait_for_job_change(
                    job,
                    &fields,
                    prev_job_info,
                    prev_log_serial,
                    Duration::from_secs_f64(timeout),
                )
                .await
        }
        Request::QueryJobs { ids, fields } => {
            let rows = queue.query_jobs(ids.as_deref(), &fields)?;
            Ok(json!(rows))
        }
        Request::Query(req) => {
            let resp =
                crate::query::query(master, req.what.as_str(), &req.fields, &req.filter).await?;
            Ok(json!(resp))
        }
        Request::QueryFields(req) => {
            let names = (!req.fields.is_empty()).then_some(req.fields.as_slice());
            Ok(json!(crate::query::query_fields(req.what.as_str(), names)?))
        }
        Request::Classic(what, req) => {
            req.check_no_locking()?;
            let resp =
                crate::query::query(master, what.as_str(), &req.fields, &req.filter(what)).await?;
            Ok(json!(
                luxi::query::legacy_rows(resp).map_err(GanetiError::from)?
            ))
        }
        // Ganeti 3.0 answers it as the classic query of the export
        // resource: `[[node, export], ...]` for the nodes named (or all).
        Request::QueryExports { nodes, use_locking } => {
            let req = luxi::query::ClassicQueryRequest {
                names: nodes,
                fields: vec!["node".into(), "export".into()],
                use_locking,
            };
            req.check_no_locking()?;
            let what = luxi::query::ItemType::Export;
            let resp =
                crate::query::query(master, what.as_str(), &req.fields, &req.filter(what)).await?;
            Ok(json!(
                luxi::query::legacy_rows(resp).map_err(GanetiError::from)?
            ))
        }
        Request::QueryFilters { uuids, fields } => {
            let filter =
                luxi::query::make_simple_filter("uuid", uuids.iter().flatten().map(String::as_str));
            let resp = crate::query::query(master, "filter", &fields, &filter).await?;
            Ok(json!(
                luxi::query::legacy_rows(resp).map_err(GanetiError::from)?
            ))
        }
        Request::ReplaceFilter {
            uuid,
            priority,
            predicates,
            action,
            reason,
        } => Ok(json!(
            queue
                .replace_filter(uuid, priority, &predicates, &action, &reason)
                .await?
        )),
        Request::DeleteFilter(uuid) => {
            queue.delete_filter(&uuid).await?;
            Ok(Value::Null)
        }
        Request::QueryClusterInfo => Ok(cluster_info(master)),
        Request::QueryConfigValues(fields) => config_values(master, &fields),
        Request::QueryTags { kind, name } => {
            let cfg = master.config.read();
            Ok(json!(crate::lu::tags::query_tags(
                &cfg,
                &kind,
                name.as_deref()
            )?))
        }
        Request::CancelJob { job, kill } => {
            let (ok, msg) = queue.cancel(job, kill).await?;
            Ok(json!([ok, msg]))
        }
        Request::ArchiveJob(job) => Ok(json!(queue.archive(job).await?)),
        Request::AutoArchiveJobs { age, timeout } => {
            let (n, left) = queue.auto_archive(age, timeout).await?;
            Ok(json!([n, left]))
        }
        Request::ChangeJobPriority { job, priority } => {
            let priority = i32::try_from(priority).map_err(|_| {
                GanetiError::luxi(format!(
                    "ChangeJobPriority: priority {priority} is out of range"
                ))
            })?;
            let (ok, msg) = queue.change_priority(job, priority).await?;
            Ok(json!([ok, msg]))
        }
        Request::SetDrainFlag(flag) => {
            queue
                .set_drain_flag(flag)
                .map_err(|e| GanetiError::exec(format!("Cannot set the drain flag: {e}")))?;
            Ok(json!(true))
        }
        Request::SetWatcherPause(until) => {
            crate::watcher::pause::set(&master.paths, until)
                .map_err(|e| GanetiError::exec(objects::error_chain(&e)))?;
            Ok(json!(until))
        }
    }
}

/// `dir`, or `default` when it is empty.
fn or_path(dir: &str, default: std::path::PathBuf) -> String {
    if dir.is_empty() {
        default.display().to_string()
    } else {
        dir.to_string()
    }
}

/// `QueryClusterInfo`: the keys Ganeti's `gnt-cluster info` reads.
pub fn cluster_info(master: &Master) -> Value {
    let cfg = master.config.read();
    let c = &cfg.cluster;
    let default_hv = c.enabled_hypervisors.first().cloned().unwrap_or_default();
    json!({
        "software_version": crate::VERSION,
        "protocol_version": LUXI_VERSION,
        "config_version": LUXI_VERSION,
        "os_api_version": 20,
        "export_version": 0,
        "vcs_version": format!("ganeti-rs {}", crate::VERSION),
        // Python's platform.architecture()[0] and platform.machine().
        "architecture": [format!("{}bits", usize::BITS), std::env::consts::ARCH],
        "name": c.cluster_name,
        "master": cfg.master_node().map(|n| n.name.clone()).unwrap_or_default(),
        "default_hypervisor": default_hv,
        "enabled_hypervisors": c.enabled_hypervisors,
        "hvparams": c.hvparams,
        "os_hvp": {},
        "beparams": c.beparams,
        "osparams": c.osparams,
        "ipolicy": c.ipolicy,
        "nicparams": c.nicparams,
        "ndparams": c.ndparams,
        "diskparams": objects::params::fill_diskparams(
            &objects::params::default_diskparams(),
            &c.diskparams
        ),
        "candidate_pool_size": c.candidate_pool_size,
        "max_running_jobs": 20,
        "max_tracked_jobs": 25,
        "mac_prefix": c.mac_prefix,
        "master_netdev": c.master_netdev,
        "master_netmask": c.master_netmask,
        "use_external_mip_script": false,
        "volume_group_name": (!c.volume_group_name.is_empty()).then_some(&c.volume_group_name),
        "drbd_usermode_helper": null,
        // Unset directories are the node tree's defaults, which is what
        // Ganeti's init writes into its configuration.
        "file_storage_dir": or_path(&c.file_storage_dir, master.paths.file_storage_dir()),
        "shared_file_storage_dir": or_path(
            &c.shared_file_storage_dir,
            master.paths.shared_file_storage_dir()
        ),
        "gluster_storage_dir": master.paths.run_dir().join("gluster"),
        "maintain_node_health": c.maintain_node_health,
        "ctime": c.ctime,
        "mtime": c.mtime,
        "uuid": c.uuid,
        "tags": c.tags,
        "uid_pool": c.uid_pool,
        "default_iallocator": c.default_iallocator,
        "default_iallocator_params": {},
        "reserved_lvs": c.reserved_lvs,
        "primary_ip_version": 4,
        "prealloc_wipe_disks": false,
        "hidden_os": [],
        "blacklisted_os": [],
        "enabled_disk_templates": c.enabled_disk_templates,
        "install_image": "",
        "instance_communication_network": "",
        "zeroing_image": "",
        "compression_tools": ["gzip", "gzip-fast", "gzip-slow"],
        "enabled_user_shutdown": false,
        "modify_etc_hosts": false,
        "modify_ssh_setup": false,
        "ssh_key_type": "rsa",
        "ssh_key_bits": 2048,
        "enabled_data_collectors": {},
        "data_collector_interval": {},
    })
}

fn config_values(master: &Master, fields: &[String]) -> Result<Value, GanetiError> {
    let cfg = master.config.read();
    let queue = master.queue();
    fields
        .iter()
        .map(|f| {
            Ok(match f.as_str() {
                "cluster_name" => json!(cfg.cluster.cluster_name),
                "master_node" => json!(cfg.master_node().map(|n| n.name.clone())),
                "drain_flag" => json!(queue.drained()),
                "watcher_pause" => json!(crate::watcher::pause::until(
                    &master.paths,
                    crate::watcher::pause::now()
                )),
                "volume_group_name" => json!(cfg.cluster.volume_group_name),
                "default_hypervisor" => json!(cfg.cluster.enabled_hypervisors.first()),
                "max_running_jobs" => json!(20),
                "max_tracked_jobs" => json!(25),
                other => {
                    return Err(GanetiError::parameter(format!(
                        "Unknown configuration value requested: {other}"
                    )))
                }
            })
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Value::Array)
}
