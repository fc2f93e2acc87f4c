//! Instances: `/2/instances`, `/2/instances/{instance_name}[/...]`,
//! `/2/instances-multi-alloc`.

use axum::http::StatusCode;
use luxi::query::ItemType;
use serde_json::{json, Map, Value};

use super::{list as list_items, Fixup, Items};
use crate::ctx::{type_error, Ctx, Reply};
use crate::error::ApiError;
use crate::opcode::{fill, fixed, Spec};

/// The fields of an instance (`bulk=1` and `GET /2/instances/{instance_name}`).
pub const I_FIELDS: [&str; 35] = [
    "name",
    "admin_state",
    "os",
    "pnode",
    "snodes",
    "disk_template",
    "nic.ips",
    "nic.macs",
    "nic.modes",
    "nic.uuids",
    "nic.names",
    "nic.links",
    "nic.networks",
    "nic.networks.names",
    "nic.bridges",
    "network_port",
    "disk.sizes",
    "disk.spindles",
    "disk_usage",
    "disk.uuids",
    "disk.names",
    "beparams",
    "hvparams",
    "oper_state",
    "oper_ram",
    "oper_vcpus",
    "status",
    "custom_hvparams",
    "custom_beparams",
    "custom_nicparams",
    "ctime",
    "mtime",
    "uuid",
    "serial_no",
    "tags",
];

/// Ganeti still gives `beparams.memory`, the old name of `maxmem`.
fn memory_alias(beparams: &mut Value) {
    if let Value::Object(be) = beparams {
        if let Some(maxmem) = be.get("maxmem").cloned() {
            be.insert("memory".into(), maxmem);
        }
    }
}

const INSTANCES: Items<'static> = Items {
    what: ItemType::Instance,
    fields: &I_FIELDS,
    fixup: Some(Fixup {
        field: "beparams",
        patch: memory_alias,
    }),
};

/// `(body name, opcode parameter)` of instance creation.
const CREATE_RENAME: &[(&str, &str)] = &[("os", "os_type"), ("name", "instance_name")];

fn name(ctx: &Ctx) -> Value {
    json!(ctx.item(0))
}

/// Ganeti 2.8 moved `usb_devices` from commas to spaces; RAPI takes both
/// and passes commas on.
fn convert_usb_devices(body: &mut Map<String, Value>) {
    if let Some(Value::Object(hv)) = body.get_mut("hvparams") {
        if let Some(Value::String(usb)) = hv.get_mut("usb_devices") {
            *usb = usb.replace(' ', ",");
        }
    }
}

/// `GET /2/instances`.
pub async fn list(ctx: Ctx) -> Result<Reply, ApiError> {
    list_items(&ctx, &INSTANCES, "id", "/2/instances/").await
}

/// `GET /2/instances/{instance_name}`.
pub async fn get(ctx: Ctx) -> Result<Reply, ApiError> {
    Ok(Value::Object(INSTANCES.one(&ctx, ctx.item(0)).await?).into())
}

/// `POST /2/instances`: `OP_INSTANCE_CREATE` from a body with
/// `"__version__": 1`.
pub async fn create(ctx: Ctx) -> Result<Reply, ApiError> {
    let mut body = match &ctx.body {
        Some(Value::Object(m)) => m.clone(),
        Some(other) => return Err(type_error("Body contents", other, "dict")),
        None => return Err(type_error("Body contents", &Value::Null, "dict")),
    };
    match body.remove("__version__").unwrap_or(json!(0)) {
        v if v == json!(0) => {
            return Err(ApiError::bad_request(
                "Instance creation request version 0 is no longer supported",
            ))
        }
        v if v == json!(1) => {}
        v => {
            return Err(ApiError::bad_request(format!(
                "Unsupported request data version {v}"
            )))
        }
    }
    convert_usb_devices(&mut body);
    let body = Value::Object(body);
    ctx.opcode_job(Spec {
        op_id: "OP_INSTANCE_CREATE",
        body: Some(&body),
        rename: CREATE_RENAME,
        fixed: fixed([("dry_run", json!(ctx.dry_run()?))]),
    })
    .await
}

/// `POST /2/instances-multi-alloc`: `OP_INSTANCE_MULTI_ALLOC` of the
/// body's `instances` (creation bodies).
pub async fn multi_alloc(ctx: Ctx) -> Result<Reply, ApiError> {
    let mut body = ctx.body_dict()?;
    let Some(instances) = body.remove("instances") else {
        return Err(ApiError::bad_request(
            "Request is missing required 'instances' field in body",
        ));
    };
    let Value::Array(instances) = instances else {
        return Err(type_error("'instances' parameter", &instances, "list"));
    };
    let ops = instances
        .iter()
        .map(|inst| {
            fill(
                Spec {
                    op_id: "OP_INSTANCE_CREATE",
                    body: Some(inst),
                    rename: CREATE_RENAME,
                    fixed: Map::new(),
                },
                None,
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    body.insert("instances".into(), Value::Array(ops));
    let body = Value::Object(body);
    ctx.opcode_job(Spec {
        op_id: "OP_INSTANCE_MULTI_ALLOC",
        body: Some(&body),
        rename: &[],
        fixed: fixed([("dry_run", json!(ctx.dry_run()?))]),
    })
    .await
}

/// `DELETE /2/instances/{instance_name}`: `OP_INSTANCE_REMOVE`.
pub async fn remove(ctx: Ctx) -> Result<Reply, ApiError> {
    ctx.opcode_job(Spec {
        op_id: "OP_INSTANCE_REMOVE",
        body: ctx.body.as_ref(),
        rename: &[],
        fixed: fixed([
            ("instance_name", name(&ctx)),
            ("ignore_failures", json!(false)),
            ("dry_run", json!(ctx.dry_run()?)),
        ]),
    })
    .await
}

/// `GET /2/instances/{instance_name}/info`: `OP_INSTANCE_QUERY_DATA`; a
/// job (`static=1` for configuration data only).
pub async fn info(ctx: Ctx) -> Result<Reply, ApiError> {
    ctx.opcode_job(Spec {
        op_id: "OP_INSTANCE_QUERY_DATA",
        body: None,
        rename: &[],
        fixed: fixed([
            ("instances", json!([ctx.item(0)])),
            ("static", json!(ctx.flag_arg("static")?)),
        ]),
    })
    .await
}

/// `POST /2/instances/{instance_name}/reboot?type=hard|soft|full`.
pub async fn reboot(ctx: Ctx) -> Result<Reply, ApiError> {
    ctx.opcode_job(Spec {
        op_id: "OP_INSTANCE_REBOOT",
        body: ctx.body.as_ref(),
        rename: &[],
        fixed: fixed([
            ("instance_name", name(&ctx)),
            (
                "reboot_type",
                json!(ctx.query_str("type").unwrap_or("hard")),
            ),
            (
                "ignore_secondaries",
                json!(ctx.flag_arg("ignore_secondaries")?),
            ),
            ("dry_run", json!(ctx.dry_run()?)),
        ]),
    })
    .await
}

/// `PUT /2/instances/{instance_name}/startup`.
pub async fn startup(ctx: Ctx) -> Result<Reply, ApiError> {
    ctx.opcode_job(Spec {
        op_id: "OP_INSTANCE_STARTUP",
        body: None,
        rename: &[],
        fixed: fixed([
            ("instance_name", name(&ctx)),
            ("force", json!(ctx.force()?)),
            ("dry_run", json!(ctx.dry_run()?)),
            ("no_remember", json!(ctx.flag_arg("no_remember")?)),
        ]),
    })
    .await
}

/// `PUT /2/instances/{instance_name}/shutdown`.
pub async fn shutdown(ctx: Ctx) -> Result<Reply, ApiError> {
    ctx.opcode_job(Spec {
        op_id: "OP_INSTANCE_SHUTDOWN",
        body: ctx.body.as_ref(),
        rename: &[],
        fixed: fixed([
            ("instance_name", name(&ctx)),
            ("no_remember", json!(ctx.flag_arg("no_remember")?)),
            ("dry_run", json!(ctx.dry_run()?)),
        ]),
    })
    .await
}

/// `POST /2/instances/{instance_name}/reinstall`: a job that shuts the
/// instance down, reinstalls it (`os`, `osparams`) and starts it again
/// unless `start` is false. The body, or the old query arguments `os` and
/// `nostartup`.
pub async fn reinstall(ctx: Ctx) -> Result<Reply, ApiError> {
    let non_empty_body = match &ctx.body {
        None | Some(Value::Null) => false,
        Some(Value::Object(m)) => !m.is_empty(),
        Some(_) => true,
    };
    let body = if non_empty_body {
        if !ctx.query.is_empty() && ctx.query.iter().any(|(k, _)| k != "reason") {
            return Err(ApiError::bad_request(
                "Can't combine query and body parameters",
            ));
        }
        ctx.body_dict()?
    } else if ctx.has_query("os") || ctx.has_query("nostartup") {
        let mut m = Map::new();
        m.insert(
            "os".into(),
            ctx.query_str("os").map_or(Value::Null, |o| json!(o)),
        );
        m.insert("start".into(), json!(!ctx.flag_arg("nostartup")?));
        m
    } else {
        Map::new()
    };
    for key in body.keys() {
        if !["os", "start", "osparams"].contains(&key.as_str()) {
            return Err(ApiError::bad_request(format!(
                "Invalid body parameters: reinstall has no parameter '{key}'"
            )));
        }
    }
    let start = match body.get("start") {
        None => true,
        Some(Value::Bool(b)) => *b,
        Some(other) => return Err(type_error("'start' parameter", other, "bool")),
    };
    let os = body.get("os").cloned().unwrap_or(Value::Null);
    let osparams = body.get("osparams").cloned().unwrap_or(Value::Null);
    let trail = Some(ctx.reason_trail());
    let op = |op_id, params: Map<String, Value>| {
        fill(
            Spec {
                op_id,
                body: None,
                rename: &[],
                fixed: params,
            },
            trail.clone(),
        )
    };
    let mut ops = vec![
        op(
            "OP_INSTANCE_SHUTDOWN",
            fixed([("instance_name", name(&ctx))]),
        )?,
        op(
            "OP_INSTANCE_REINSTALL",
            fixed([
                ("instance_name", name(&ctx)),
                ("os_type", os),
                ("osparams", osparams),
            ]),
        )?,
    ];
    if start {
        ops.push(op(
            "OP_INSTANCE_STARTUP",
            fixed([("instance_name", name(&ctx)), ("force", json!(false))]),
        )?);
    }
    ctx.submit(ops).await
}

/// `POST /2/instances/{instance_name}/replace-disks`: the body, or the
/// old query arguments (`mode`, `remote_node`, `iallocator`, `disks` as
/// "0,1", `early_release`).
pub async fn replace_disks(ctx: Ctx) -> Result<Reply, ApiError> {
    let non_empty_body = matches!(&ctx.body, Some(Value::Object(m)) if !m.is_empty())
        || matches!(&ctx.body, Some(v) if !v.is_object() && !v.is_null());
    let mut data = if non_empty_body {
        ctx.body_dict()?
    } else {
        let mut m = Map::new();
        for key in ["remote_node", "mode", "disks", "iallocator"] {
            if let Some(v) = ctx.query_str(key) {
                m.insert(key.into(), json!(v));
            }
        }
        if ctx.has_query("early_release") {
            m.insert(
                "early_release".into(),
                json!(ctx.flag_arg("early_release")?),
            );
        }
        m
    };
    if let Some(raw) = data.remove("disks") {
        let disks = match &raw {
            Value::Null => None,
            Value::String(s) if s.is_empty() => None,
            Value::Array(a) if a.is_empty() => None,
            Value::Array(a) if a.iter().all(|d| d.is_i64() || d.is_u64()) => Some(raw.clone()),
            Value::String(s) => Some(json!(s
                .split(',')
                .map(|p| p.trim().parse::<i64>())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| ApiError::bad_request(format!("Invalid disk index passed: {e}")))?)),
            other => {
                return Err(ApiError::bad_request(format!(
                    "Invalid disk index passed: {other}"
                )))
            }
        };
        if let Some(d) = disks {
            data.insert("disks".into(), d);
        }
    }
    let body = Value::Object(data);
    ctx.opcode_job(Spec {
        op_id: "OP_INSTANCE_REPLACE_DISKS",
        body: Some(&body),
        rename: &[],
        fixed: fixed([("instance_name", name(&ctx))]),
    })
    .await
}

/// `PUT /2/instances/{instance_name}/activate-disks?ignore_size=0|1`.
pub async fn activate_disks(ctx: Ctx) -> Result<Reply, ApiError> {
    ctx.opcode_job(Spec {
        op_id: "OP_INSTANCE_ACTIVATE_DISKS",
        body: None,
        rename: &[],
        fixed: fixed([
            ("instance_name", name(&ctx)),
            ("ignore_size", json!(ctx.flag_arg("ignore_size")?)),
        ]),
    })
    .await
}

/// `PUT /2/instances/{instance_name}/deactivate-disks?force=0|1`.
pub async fn deactivate_disks(ctx: Ctx) -> Result<Reply, ApiError> {
    ctx.opcode_job(Spec {
        op_id: "OP_INSTANCE_DEACTIVATE_DISKS",
        body: None,
        rename: &[],
        fixed: fixed([
            ("instance_name", name(&ctx)),
            ("force", json!(ctx.force()?)),
        ]),
    })
    .await
}

/// A resource whose opcode takes the body and the instance's name.
async fn with_body(
    ctx: Ctx,
    op_id: &'static str,
    rename: &'static [(&'static str, &'static str)],
) -> Result<Reply, ApiError> {
    ctx.opcode_job(Spec {
        op_id,
        body: ctx.body.as_ref(),
        rename,
        fixed: fixed([("instance_name", name(&ctx))]),
    })
    .await
}

/// `POST /2/instances/{instance_name}/recreate-disks`.
pub async fn recreate_disks(ctx: Ctx) -> Result<Reply, ApiError> {
    with_body(ctx, "OP_INSTANCE_RECREATE_DISKS", &[]).await
}

/// `PUT /2/instances/{instance_name}/prepare-export?mode=...`.
pub async fn prepare_export(ctx: Ctx) -> Result<Reply, ApiError> {
    ctx.opcode_job(Spec {
        op_id: "OP_BACKUP_PREPARE",
        body: None,
        rename: &[],
        fixed: fixed([
            ("instance_name", name(&ctx)),
            (
                "mode",
                ctx.query_str("mode").map_or(Value::Null, |m| json!(m)),
            ),
        ]),
    })
    .await
}

/// `PUT /2/instances/{instance_name}/export` (`destination` is the
/// opcode's `target_node`).
pub async fn export(ctx: Ctx) -> Result<Reply, ApiError> {
    with_body(ctx, "OP_BACKUP_EXPORT", &[("destination", "target_node")]).await
}

/// `PUT /2/instances/{instance_name}/migrate`.
pub async fn migrate(ctx: Ctx) -> Result<Reply, ApiError> {
    with_body(ctx, "OP_INSTANCE_MIGRATE", &[]).await
}

/// `PUT /2/instances/{instance_name}/failover`.
pub async fn failover(ctx: Ctx) -> Result<Reply, ApiError> {
    with_body(ctx, "OP_INSTANCE_FAILOVER", &[]).await
}

/// `PUT /2/instances/{instance_name}/rename`.
pub async fn rename(ctx: Ctx) -> Result<Reply, ApiError> {
    with_body(ctx, "OP_INSTANCE_RENAME", &[]).await
}

/// `PUT /2/instances/{instance_name}/modify` (`custom_beparams` and
/// `custom_hvparams` are the opcode's `beparams` and `hvparams`).
pub async fn modify(ctx: Ctx) -> Result<Reply, ApiError> {
    let body = match &ctx.body {
        Some(Value::Object(m)) => {
            let mut m = m.clone();
            convert_usb_devices(&mut m);
            Some(Value::Object(m))
        }
        other => other.clone(),
    };
    ctx.opcode_job(Spec {
        op_id: "OP_INSTANCE_SET_PARAMS",
        body: body.as_ref(),
        rename: &[
            ("custom_beparams", "beparams"),
            ("custom_hvparams", "hvparams"),
        ],
        fixed: fixed([("instance_name", name(&ctx))]),
    })
    .await
}

/// `POST /2/instances/{instance_name}/disk/{disk_index}/grow`.
pub async fn grow_disk(ctx: Ctx) -> Result<Reply, ApiError> {
    let disk: u64 = ctx.item(1).parse().map_err(|_| ApiError::not_found())?;
    ctx.opcode_job(Spec {
        op_id: "OP_INSTANCE_GROW_DISK",
        body: ctx.body.as_ref(),
        rename: &[],
        fixed: fixed([("instance_name", name(&ctx)), ("disk", json!(disk))]),
    })
    .await
}

/// `GET /2/instances/{instance_name}/console`: how to reach the console
/// of a running instance; 503 when it is not running.
pub async fn console(ctx: Ctx) -> Result<Reply, ApiError> {
    let items = Items {
        what: ItemType::Instance,
        fields: &["console", "oper_state"],
        fixup: None,
    };
    let inst = items.one(&ctx, ctx.item(0)).await?;
    if inst.get("oper_state") != Some(&json!(true)) {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "Instance console unavailable",
        ));
    }
    match inst.get("console") {
        Some(c @ Value::Object(_)) => Ok(c.clone().into()),
        _ => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "Instance console unavailable",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn beparams_get_the_old_memory_name() {
        let mut be = json!({"maxmem": 512, "minmem": 256});
        memory_alias(&mut be);
        assert_eq!(be["memory"], 512);
        let mut offline = Value::Null;
        memory_alias(&mut offline);
        assert_eq!(offline, Value::Null);
    }

    #[test]
    fn usb_devices_take_spaces() {
        let mut body = json!({"hvparams": {"usb_devices": "a b c"}})
            .as_object()
            .cloned()
            .unwrap();
        convert_usb_devices(&mut body);
        assert_eq!(body["hvparams"]["usb_devices"], "a,b,c");
    }
}
