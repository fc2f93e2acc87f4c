//! HTTPS with client certificates: accepting connections, decoding calls,
//! answering. Nothing a client sends can make this panic or stop serving.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::CONTENT_TYPE;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use rpc::api::*;
use serde::Serialize;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tracing::{debug, warn};

use crate::handlers::{self, CallResult, State};

/// Largest request accepted.
const MAX_REQUEST: usize = 64 * 1024 * 1024;
/// Time a client has to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);
/// Time a client has to send a request's headers (also closes idle
/// kept-alive connections).
const HEADER_TIMEOUT: Duration = Duration::from_secs(120);
/// Exit status of a crash injected by a test hook.
const CRASH_EXIT_CODE: i32 = 70;
/// How long an injected hang lasts (longer than any test's timeout).
const HANG: Duration = Duration::from_secs(24 * 3600);

/// Serves `listener` until this future is dropped; then every connection
/// finishes the call it is running and closes (a node that left the
/// cluster keeps no authenticated connection). Each connection gets the
/// TLS configuration of `state.tls` as it is when it arrives (a renewal
/// of the certificates changes it).
pub async fn serve(listener: TcpListener, state: Arc<State>) {
    // Dropped with this future, which tells the connections to close.
    let (_alive, alive_rx) = tokio::sync::watch::channel(());
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                // Out of file descriptors and the like: back off a little.
                warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let Some(tls) = state.tls.get() else {
            warn!(%peer, "no TLS configuration yet: connection closed");
            continue;
        };
        let acceptor = TlsAcceptor::from(tls);
        let state = state.clone();
        let mut alive = alive_rx.clone();
        tokio::spawn(async move {
            let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    warn!(%peer, error = %e, "TLS handshake refused");
                    return;
                }
                Err(_) => {
                    warn!(%peer, "TLS handshake timed out");
                    return;
                }
            };
            let service = service_fn(move |req| {
                let state = state.clone();
                async move { Ok::<_, std::convert::Infallible>(handle(state, req).await) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(tls), service);
            tokio::pin!(conn);
            let result = tokio::select! {
                r = conn.as_mut() => r,
                _ = alive.changed() => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = result {
                debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
}

fn answer<T: Serialize>(status: StatusCode, reply: &Reply<T>) -> Response<Full<Bytes>> {
    let body = serde_json::to_vec(reply).unwrap_or_else(|e| {
        format!(r#"{{"error":{{"kind":"internal","message":"cannot encode the answer: {e}"}}}}"#)
            .into_bytes()
    });
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    resp
}

fn error_response(err: RpcError) -> Response<Full<Bytes>> {
    let status = match err.kind {
        ErrorKind::BadRequest => StatusCode::BAD_REQUEST,
        ErrorKind::UnknownCall | ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::Refused => StatusCode::FORBIDDEN,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    answer::<()>(status, &Reply::Error(err))
}

async fn handle(state: Arc<State>, req: Request<Incoming>) -> Response<Full<Bytes>> {
    if req.method() != Method::POST {
        return error_response(RpcError::new(
            ErrorKind::BadRequest,
            format!(
                "method {} not allowed: calls are POST /<call>",
                req.method()
            ),
        ));
    }
    let call = req.uri().path().trim_start_matches('/').to_string();
    if !CALLS.contains(&call.as_str()) {
        return error_response(RpcError::new(
            ErrorKind::UnknownCall,
            format!("unknown call '{call}'"),
        ));
    }
    let body = match Limited::new(req.into_body(), MAX_REQUEST).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            return error_response(RpcError::new(
                ErrorKind::BadRequest,
                format!("cannot read the body of call '{call}': {e}"),
            ))
        }
    };
    if let Some(hooks) = &state.hooks {
        if call != TestSetFailure::NAME {
            match hooks.take(&call) {
                Some(FailureMode::Error) => {
                    return error_response(RpcError::new(
                        ErrorKind::Injected,
                        format!("failure of call '{call}' injected by a test hook"),
                    ))
                }
                Some(FailureMode::Hang) => {
                    tokio::time::sleep(HANG).await;
                }
                Some(FailureMode::Crash) => {
                    warn!(%call, "crashing on purpose (test hook)");
                    std::process::exit(CRASH_EXIT_CODE);
                }
                None => {}
            }
        }
    }
    debug!(%call, "call");
    match dispatch(state, &call, body).await {
        Ok(value) => answer(StatusCode::OK, &Reply::Ok(value)),
        Err(err) => {
            warn!(%call, error = %err, "call failed");
            error_response(err)
        }
    }
}

/// Decodes the request of call `C`, runs `f` on a blocking thread, encodes
/// the result.
async fn run<C, F>(state: Arc<State>, body: Bytes, f: F) -> CallResult<serde_json::Value>
where
    C: Call + 'static,
    F: FnOnce(&State, C) -> CallResult<C::Response> + Send + 'static,
{
    let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        &body
    };
    let req: C = serde_json::from_slice(body).map_err(|e| {
        RpcError::new(
            ErrorKind::BadRequest,
            format!("invalid arguments for call '{}': {e}", C::NAME),
        )
    })?;
    let result = tokio::task::spawn_blocking(move || f(&state, req))
        .await
        .map_err(|e| {
            RpcError::new(
                ErrorKind::Internal,
                format!("call '{}' crashed: {e}", C::NAME),
            )
        })??;
    serde_json::to_value(result).map_err(|e| {
        RpcError::new(
            ErrorKind::Internal,
            format!("cannot encode the result of call '{}': {e}", C::NAME),
        )
    })
}

async fn dispatch(state: Arc<State>, call: &str, body: Bytes) -> CallResult<serde_json::Value> {
    use crate::exports;
    use crate::node_storage;
    use handlers as h;
    match call {
        Version::NAME => run(state, body, h::version).await,
        NodeInfo::NAME => run(state, body, h::node_info).await,
        NodeVerify::NAME => run(state, body, h::node_verify).await,
        FileChecksums::NAME => run(state, body, h::file_checksums).await,
        NodeNetTest::NAME => run(state, body, h::node_net_test).await,
        InstanceStart::NAME => run(state, body, h::instance_start).await,
        InstanceShutdown::NAME => run(state, body, h::instance_shutdown).await,
        InstanceReboot::NAME => run(state, body, h::instance_reboot).await,
        InstanceInfo::NAME => run(state, body, h::instance_info).await,
        InstanceList::NAME => run(state, body, h::instance_list).await,
        AllInstancesInfo::NAME => run(state, body, h::all_instances_info).await,
        InstanceBalloonMemory::NAME => run(state, body, h::instance_balloon_memory).await,
        InstanceDiskResized::NAME => run(state, body, h::instance_disk_resized).await,
        InstanceConsole::NAME => run(state, body, h::instance_console).await,
        HotplugSupported::NAME => run(state, body, h::hotplug_supported).await,
        HotplugDeviceCall::NAME => run(state, body, h::hotplug_device).await,
        MigrationInfo::NAME => run(state, body, h::migration_info).await,
        AcceptInstance::NAME => run(state, body, h::accept_instance).await,
        MigrateInstance::NAME => run(state, body, h::migrate_instance).await,
        FinalizeMigrationDst::NAME => run(state, body, h::finalize_migration_dst).await,
        FinalizeMigrationSrc::NAME => run(state, body, h::finalize_migration_src).await,
        GetMigrationStatus::NAME => run(state, body, h::migration_status).await,
        BlockdevCreate::NAME => run(state, body, h::blockdev_create).await,
        BlockdevRemove::NAME => run(state, body, h::blockdev_remove).await,
        BlockdevAssemble::NAME => run(state, body, h::blockdev_assemble).await,
        BlockdevShutdown::NAME => run(state, body, h::blockdev_shutdown).await,
        BlockdevGrow::NAME => run(state, body, h::blockdev_grow).await,
        BlockdevConvert::NAME => run(state, body, h::blockdev_convert).await,
        DiskExportStart::NAME => run(state, body, h::disk_export_start).await,
        DiskExportStop::NAME => run(state, body, h::disk_export_stop).await,
        DiskImport::NAME => run(state, body, h::disk_import).await,
        ExportDiskDump::NAME => run(state, body, exports::export_disk_dump).await,
        ExportFileServe::NAME => run(state, body, exports::export_file_serve).await,
        ExportFileFetch::NAME => run(state, body, exports::export_file_fetch).await,
        FinalizeExport::NAME => run(state, body, exports::finalize_export).await,
        ExportInfo::NAME => run(state, body, exports::export_info).await,
        ExportList::NAME => run(state, body, exports::export_list).await,
        ExportRemove::NAME => run(state, body, exports::export_remove).await,
        ImportDiskDump::NAME => run(state, body, exports::import_disk_dump).await,
        BlockdevInfo::NAME => run(state, body, h::blockdev_info).await,
        BlockdevFind::NAME => run(state, body, h::blockdev_find).await,
        BlockdevGetMirrorStatus::NAME => run(state, body, h::blockdev_getmirrorstatus).await,
        DrbdDisconnectNet::NAME => run(state, body, h::drbd_disconnect_net).await,
        DrbdAttachNet::NAME => run(state, body, h::drbd_attach_net).await,
        DrbdWaitSync::NAME => run(state, body, h::drbd_wait_sync).await,
        BlockdevPauseResumeSync::NAME => run(state, body, h::blockdev_pause_resume_sync).await,
        FileStorageDirCreate::NAME => run(state, body, h::file_storage_dir_create).await,
        FileStorageDirRemove::NAME => run(state, body, h::file_storage_dir_remove).await,
        FileStorageDirRename::NAME => run(state, body, h::file_storage_dir_rename).await,
        VgList::NAME => run(state, body, node_storage::vg_list).await,
        NodeVolumes::NAME => run(state, body, node_storage::node_volumes).await,
        StorageList::NAME => run(state, body, node_storage::storage_list).await,
        StorageModify::NAME => run(state, body, node_storage::storage_modify).await,
        StorageRepair::NAME => run(state, body, node_storage::storage_repair).await,
        InstanceOsAdd::NAME => run(state, body, h::instance_os_add).await,
        OsRename::NAME => run(state, body, h::os_rename).await,
        OsDiagnose::NAME => run(state, body, h::os_diagnose).await,
        OsValidate::NAME => run(state, body, h::os_validate).await,
        WriteSsconfFiles::NAME => run(state, body, h::write_ssconf_files).await,
        UploadFile::NAME => run(state, body, h::upload_file).await,
        WriteConfig::NAME => run(state, body, crate::master_role::write_config).await,
        JobqueueUpdate::NAME => run(state, body, crate::master_role::jobqueue_update).await,
        MasterNodeName::NAME => run(state, body, crate::master_role::master_node_name).await,
        NodeStopMaster::NAME => run(state, body, crate::master_role::node_stop_master).await,
        NodeActivateMasterIp::NAME => {
            run(state, body, crate::master_role::node_activate_master_ip).await
        }
        NodeDeactivateMasterIp::NAME => {
            run(state, body, crate::master_role::node_deactivate_master_ip).await
        }
        NodeLeaveCluster::NAME => run(state, body, h::node_leave_cluster).await,
        TestDelay::NAME => run(state, body, h::test_delay).await,
        RunHooks::NAME => run(state, body, h::hooks_runner).await,
        TestSetFailure::NAME => run(state, body, h::test_set_failure).await,
        RunOob::NAME => run(state, body, crate::oob::run_oob).await,
        NodePowercycle::NAME => run(state, body, crate::oob::node_powercycle).await,
        RestrictedCommand::NAME => run(state, body, crate::restricted::restricted_command).await,
        ExtStorageDiagnose::NAME => run(state, body, crate::extstorage::diagnose).await,
        CryptoStage::NAME => run(state, body, crate::crypto::crypto_stage).await,
        CryptoActivate::NAME => run(state, body, crate::crypto::crypto_activate).await,
        CryptoAbort::NAME => run(state, body, crate::crypto::crypto_abort).await,
        other => Err(RpcError::new(
            ErrorKind::UnknownCall,
            format!("unknown call '{other}'"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every call the node says it serves (`rpc::api::CALLS`, which the
    /// server checks first) has its handler, and nothing else is served.
    #[tokio::test]
    async fn every_listed_call_is_dispatched() {
        let dir = tempfile::tempdir().unwrap();
        let paths = objects::paths::Paths::new(dir.path());
        let state = Arc::new(State::new(paths, "node1".into(), None));
        for call in CALLS {
            // `null` is no call's request, so nothing acts: the answer
            // is a bad request, never "unknown call".
            if let Err(e) = dispatch(state.clone(), call, Bytes::from_static(b"null")).await {
                assert_ne!(e.kind, ErrorKind::UnknownCall, "{call}: {}", e.message);
            }
        }
        let e = dispatch(state, "no_such_call", Bytes::from_static(b"{}"))
            .await
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::UnknownCall);
    }
}
