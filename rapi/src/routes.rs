//! Every resource of RAPI v2, declared once: its path (the 60 URI patterns
//! of Ganeti 3.0's `lib/rapi/connector.py`), its name (Ganeti's handler
//! name, which the reason trail carries), and per method the right it asks
//! for and its handler. The router, the OpenAPI test and the documentation
//! all read this table.
//!
//! Each request goes through the same steps, in Ganeti's order: the path
//! (404), the method (405), the names in the path (404 unless they match
//! Ganeti's patterns), the credentials (401/403), the body (413, 415, 400
//! for JSON that does not parse), then the handler.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use serde_json::Value;

use crate::auth::{self, Access};
use crate::ctx::{Ctx, Reply};
use crate::error::ApiError;
use crate::resources::{cluster, filters, groups, instances, jobs, networks, nodes, query, tags};
use crate::state::State;

/// An HTTP method RAPI serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Get,
    Put,
    Post,
    Delete,
}

impl Verb {
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Get => "GET",
            Verb::Put => "PUT",
            Verb::Post => "POST",
            Verb::Delete => "DELETE",
        }
    }

    fn parse(m: &axum::http::Method) -> Option<Verb> {
        Some(match m.as_str() {
            "GET" => Verb::Get,
            "PUT" => Verb::Put,
            "POST" => Verb::Post,
            "DELETE" => Verb::Delete,
            _ => return None,
        })
    }
}

/// A handler's future.
pub type HandlerFuture = Pin<Box<dyn Future<Output = Result<Reply, ApiError>> + Send>>;
/// A resource method's handler.
pub type Handler = fn(Ctx) -> HandlerFuture;

/// One method of a resource.
pub struct Op {
    pub verb: Verb,
    pub access: Access,
    pub handler: Handler,
}

/// One resource.
pub struct Route {
    /// The path; `{...}` are names (OpenAPI's and axum's syntax).
    pub path: &'static str,
    /// Ganeti's name of the handler (`instances_name_reboot`).
    pub name: &'static str,
    pub ops: &'static [Op],
}

macro_rules! op {
    ($verb:ident, $access:ident, $f:path) => {
        Op {
            verb: Verb::$verb,
            access: Access::$access,
            handler: |c| Box::pin($f(c)),
        }
    };
}

macro_rules! tag_ops {
    () => {
        &[
            op!(Get, Anyone, tags::get),
            op!(Put, Write, tags::add),
            op!(Delete, Write, tags::remove),
        ]
    };
}

/// Every resource of Ganeti 3.0's RAPI.
pub static ROUTES: &[Route] = &[
    Route {
        path: "/",
        name: "root",
        ops: &[op!(Get, Anyone, cluster::root)],
    },
    Route {
        path: "/2",
        name: "2",
        ops: &[op!(Get, Anyone, cluster::root)],
    },
    Route {
        path: "/version",
        name: "version",
        ops: &[op!(Get, Anyone, cluster::version)],
    },
    Route {
        path: "/2/info",
        name: "info",
        ops: &[op!(Get, Anyone, cluster::info)],
    },
    Route {
        path: "/2/features",
        name: "features",
        ops: &[op!(Get, Anyone, cluster::features)],
    },
    Route {
        path: "/2/os",
        name: "os",
        ops: &[op!(Get, Anyone, cluster::os)],
    },
    Route {
        path: "/2/redistribute-config",
        name: "redist_config",
        ops: &[op!(Put, Write, cluster::redistribute_config)],
    },
    Route {
        path: "/2/modify",
        name: "cluster_modify",
        ops: &[op!(Put, Write, cluster::modify)],
    },
    Route {
        path: "/2/tags",
        name: "tags",
        ops: tag_ops!(),
    },
    // Jobs.
    Route {
        path: "/2/jobs",
        name: "jobs",
        ops: &[op!(Get, Anyone, jobs::list)],
    },
    Route {
        path: "/2/jobs/{job_id}",
        name: "jobs_id",
        ops: &[
            op!(Get, Anyone, jobs::get),
            op!(Delete, Write, jobs::cancel),
        ],
    },
    Route {
        path: "/2/jobs/{job_id}/wait",
        name: "jobs_id_wait",
        ops: &[op!(Get, Write, jobs::wait)],
    },
    // Nodes.
    Route {
        path: "/2/nodes",
        name: "nodes",
        ops: &[op!(Get, Anyone, nodes::list)],
    },
    Route {
        path: "/2/nodes/{node_name}",
        name: "nodes_name",
        ops: &[op!(Get, Anyone, nodes::get)],
    },
    Route {
        path: "/2/nodes/{node_name}/powercycle",
        name: "nodes_name_powercycle",
        ops: &[op!(Post, Write, nodes::powercycle)],
    },
    Route {
        path: "/2/nodes/{node_name}/role",
        name: "nodes_name_role",
        ops: &[
            op!(Get, Anyone, nodes::get_role),
            op!(Put, Write, nodes::set_role),
        ],
    },
    Route {
        path: "/2/nodes/{node_name}/evacuate",
        name: "nodes_name_evacuate",
        ops: &[op!(Post, Write, nodes::evacuate)],
    },
    Route {
        path: "/2/nodes/{node_name}/migrate",
        name: "nodes_name_migrate",
        ops: &[op!(Post, Write, nodes::migrate)],
    },
    Route {
        path: "/2/nodes/{node_name}/modify",
        name: "nodes_name_modify",
        ops: &[op!(Post, Write, nodes::modify)],
    },
    Route {
        path: "/2/nodes/{node_name}/storage",
        name: "nodes_name_storage",
        ops: &[op!(Get, Write, nodes::storage)],
    },
    Route {
        path: "/2/nodes/{node_name}/storage/modify",
        name: "nodes_name_storage_modify",
        ops: &[op!(Put, Write, nodes::storage_modify)],
    },
    Route {
        path: "/2/nodes/{node_name}/storage/repair",
        name: "nodes_name_storage_repair",
        ops: &[op!(Put, Write, nodes::storage_repair)],
    },
    Route {
        path: "/2/nodes/{node_name}/tags",
        name: "nodes_name_tags",
        ops: tag_ops!(),
    },
    // Instances.
    Route {
        path: "/2/instances",
        name: "instances",
        ops: &[
            op!(Get, Anyone, instances::list),
            op!(Post, Write, instances::create),
        ],
    },
    Route {
        path: "/2/instances/{instance_name}",
        name: "instances_name",
        ops: &[
            op!(Get, Anyone, instances::get),
            op!(Delete, Write, instances::remove),
        ],
    },
    Route {
        path: "/2/instances/{instance_name}/info",
        name: "instances_name_info",
        ops: &[op!(Get, Anyone, instances::info)],
    },
    Route {
        path: "/2/instances/{instance_name}/tags",
        name: "instances_name_tags",
        ops: tag_ops!(),
    },
    Route {
        path: "/2/instances/{instance_name}/reboot",
        name: "instances_name_reboot",
        ops: &[op!(Post, Write, instances::reboot)],
    },
    Route {
        path: "/2/instances/{instance_name}/reinstall",
        name: "instances_name_reinstall",
        ops: &[op!(Post, Write, instances::reinstall)],
    },
    Route {
        path: "/2/instances/{instance_name}/replace-disks",
        name: "instances_name_replace_disks",
        ops: &[op!(Post, Write, instances::replace_disks)],
    },
    Route {
        path: "/2/instances/{instance_name}/shutdown",
        name: "instances_name_shutdown",
        ops: &[op!(Put, Write, instances::shutdown)],
    },
    Route {
        path: "/2/instances/{instance_name}/startup",
        name: "instances_name_startup",
        ops: &[op!(Put, Write, instances::startup)],
    },
    Route {
        path: "/2/instances/{instance_name}/activate-disks",
        name: "instances_name_activate_disks",
        ops: &[op!(Put, Write, instances::activate_disks)],
    },
    Route {
        path: "/2/instances/{instance_name}/deactivate-disks",
        name: "instances_name_deactivate_disks",
        ops: &[op!(Put, Write, instances::deactivate_disks)],
    },
    Route {
        path: "/2/instances/{instance_name}/recreate-disks",
        name: "instances_name_recreate_disks",
        ops: &[op!(Post, Write, instances::recreate_disks)],
    },
    Route {
        path: "/2/instances/{instance_name}/prepare-export",
        name: "instances_name_prepare_export",
        ops: &[op!(Put, Write, instances::prepare_export)],
    },
    Route {
        path: "/2/instances/{instance_name}/export",
        name: "instances_name_export",
        ops: &[op!(Put, Write, instances::export)],
    },
    Route {
        path: "/2/instances/{instance_name}/migrate",
        name: "instances_name_migrate",
        ops: &[op!(Put, Write, instances::migrate)],
    },
    Route {
        path: "/2/instances/{instance_name}/failover",
        name: "instances_name_failover",
        ops: &[op!(Put, Write, instances::failover)],
    },
    Route {
        path: "/2/instances/{instance_name}/rename",
        name: "instances_name_rename",
        ops: &[op!(Put, Write, instances::rename)],
    },
    Route {
        path: "/2/instances/{instance_name}/modify",
        name: "instances_name_modify",
        ops: &[op!(Put, Write, instances::modify)],
    },
    Route {
        path: "/2/instances/{instance_name}/disk/{disk_index}/grow",
        name: "instances_name_disk_grow",
        ops: &[op!(Post, Write, instances::grow_disk)],
    },
    Route {
        path: "/2/instances/{instance_name}/console",
        name: "instances_name_console",
        ops: &[op!(Get, ReadOrWrite, instances::console)],
    },
    Route {
        path: "/2/instances-multi-alloc",
        name: "instances_multi_alloc",
        ops: &[op!(Post, Write, instances::multi_alloc)],
    },
    // Networks.
    Route {
        path: "/2/networks",
        name: "networks",
        ops: &[
            op!(Get, Anyone, networks::list),
            op!(Post, Write, networks::create),
        ],
    },
    Route {
        path: "/2/networks/{network_name}",
        name: "networks_name",
        ops: &[
            op!(Get, Anyone, networks::get),
            op!(Delete, Write, networks::remove),
        ],
    },
    Route {
        path: "/2/networks/{network_name}/connect",
        name: "networks_name_connect",
        ops: &[op!(Put, Write, networks::connect)],
    },
    Route {
        path: "/2/networks/{network_name}/disconnect",
        name: "networks_name_disconnect",
        ops: &[op!(Put, Write, networks::disconnect)],
    },
    Route {
        path: "/2/networks/{network_name}/modify",
        name: "networks_name_modify",
        ops: &[op!(Put, Write, networks::modify)],
    },
    Route {
        path: "/2/networks/{network_name}/tags",
        name: "networks_name_tags",
        ops: tag_ops!(),
    },
    // Groups.
    Route {
        path: "/2/groups",
        name: "groups",
        ops: &[
            op!(Get, Anyone, groups::list),
            op!(Post, Write, groups::create),
        ],
    },
    Route {
        path: "/2/groups/{group_name}",
        name: "groups_name",
        ops: &[
            op!(Get, Anyone, groups::get),
            op!(Delete, Write, groups::remove),
        ],
    },
    Route {
        path: "/2/groups/{group_name}/modify",
        name: "groups_name_modify",
        ops: &[op!(Put, Write, groups::modify)],
    },
    Route {
        path: "/2/groups/{group_name}/rename",
        name: "groups_name_rename",
        ops: &[op!(Put, Write, groups::rename)],
    },
    Route {
        path: "/2/groups/{group_name}/assign-nodes",
        name: "groups_name_assign_nodes",
        ops: &[op!(Put, Write, groups::assign_nodes)],
    },
    Route {
        path: "/2/groups/{group_name}/tags",
        name: "groups_name_tags",
        ops: tag_ops!(),
    },
    // Queries.
    Route {
        path: "/2/query/{resource}",
        name: "query",
        ops: &[
            op!(Get, ReadOrWrite, query::get),
            op!(Put, ReadOrWrite, query::put),
        ],
    },
    Route {
        path: "/2/query/{resource}/fields",
        name: "query_fields",
        ops: &[op!(Get, Anyone, query::fields)],
    },
    // Job filter rules.
    Route {
        path: "/2/filters",
        name: "filters",
        ops: &[
            op!(Get, Anyone, filters::list),
            op!(Post, Write, filters::add),
        ],
    },
    Route {
        path: "/2/filters/{filter_uuid}",
        name: "filters_uuid",
        ops: &[
            op!(Get, Anyone, filters::get),
            op!(Put, Write, filters::replace),
            op!(Delete, Write, filters::delete),
        ],
    },
];

/// The resources ganeti-rs adds.
pub static EXTRA_ROUTES: &[Route] = &[
    Route {
        path: "/2/openapi.json",
        name: "openapi",
        ops: &[op!(Get, Anyone, crate::openapi::get)],
    },
    Route {
        path: "/2/events",
        name: "events",
        ops: &[op!(Get, ReadOrWrite, crate::events::get)],
    },
    Route {
        path: "/metrics",
        name: "metrics",
        ops: &[op!(Get, Anyone, crate::metrics::get)],
    },
];

/// Every resource, Ganeti's and ours.
pub fn all_routes() -> impl Iterator<Item = &'static Route> {
    ROUTES.iter().chain(EXTRA_ROUTES)
}

/// Whether `raw`, a path segment as sent, is a valid name for `param`:
/// Ganeti's patterns (`\d+` for job ids and disk indices, `[\w._-]+`
/// otherwise), matched against the segment before any decoding.
fn valid_param(param: &str, raw: &str) -> bool {
    if raw.is_empty() {
        return false;
    }
    match param {
        "job_id" | "disk_index" => raw.bytes().all(|b| b.is_ascii_digit()),
        _ => raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-')),
    }
}

/// The names of `path` at the `{...}` places of `template`, if all are
/// valid.
fn path_items(template: &str, path: &str) -> Option<Vec<String>> {
    let t: Vec<&str> = template.split('/').collect();
    let p: Vec<&str> = path.split('/').collect();
    if t.len() != p.len() {
        return None;
    }
    let mut items = Vec::new();
    for (ts, ps) in t.iter().zip(&p) {
        if let Some(param) = ts.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            if !valid_param(param, ps) {
                return None;
            }
            items.push((*ps).to_string());
        } else if ts != ps {
            return None;
        }
    }
    Some(items)
}

/// Query arguments as Python's `parse_qs` reads them (blank values
/// dropped).
pub fn parse_query(q: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(q.as_bytes())
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// The router of every resource.
pub fn router(state: Arc<State>) -> Router {
    let mut r = Router::new();
    for route in all_routes() {
        let st = state.clone();
        r = r.route(
            route.path,
            any(move |req: Request| dispatch(st.clone(), route, req)),
        );
    }
    r.fallback(|| async { ApiError::not_found() })
}

/// The `Authorization` header's value.
pub fn authorization(req: &Request) -> Option<Vec<u8>> {
    req.headers()
        .get(header::AUTHORIZATION)
        .map(|v| v.as_bytes().to_vec())
}

/// Checks the credentials of `req` for `access`.
pub fn check_access(
    state: &State,
    access: Access,
    req: &Request,
) -> Result<Option<auth::Principal>, ApiError> {
    let users = state.users.current();
    auth::authorize(
        access,
        state.opts.require_auth,
        authorization(req).as_deref(),
        &users,
        |secret| crate::tokens::lookup(&state.tokens.current(), secret),
    )
}

async fn dispatch(state: Arc<State>, route: &'static Route, req: Request) -> Response {
    let method = req.method().as_str().to_string();
    // Served `--max-clients` at a time; a stream's permit ends when its
    // response starts.
    let Ok(_slot) = state.slots.acquire().await else {
        return ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "The server is stopping")
            .into_response();
    };
    let resp = match handle(state.clone(), route, req).await {
        Ok(reply) => json_response(reply),
        Err(e) => e.into_response(),
    };
    state.counters.request(&method, resp.status().as_u16());
    resp
}

async fn handle(state: Arc<State>, route: &'static Route, req: Request) -> Result<Reply, ApiError> {
    let path = req.uri().path().to_string();
    let op = Verb::parse(req.method())
        .and_then(|v| route.ops.iter().find(|o| o.verb == v))
        .ok_or_else(|| {
            let allowed: Vec<&str> = route.ops.iter().map(|o| o.verb.as_str()).collect();
            ApiError::method_not_allowed(req.method().as_str(), &path, &allowed)
        })?;
    let items = path_items(route.path, &path).ok_or_else(ApiError::not_found)?;
    let principal = check_access(&state, op.access, &req)?;
    let query = parse_query(req.uri().query().unwrap_or(""));
    let headers = req.headers().clone();
    let body = read_body(&state, req).await?;
    let ctx = Ctx {
        state,
        route,
        items,
        query,
        body,
        principal,
        headers,
    };
    (op.handler)(ctx).await
}

/// The request's JSON body, `None` when it is empty.
async fn read_body(state: &State, req: Request) -> Result<Option<Value>, ApiError> {
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("Request body larger than {} bytes", state.opts.max_body),
        )
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > state.opts.max_body as u64) {
        return Err(too_large());
    }
    let json_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .eq_ignore_ascii_case("application/json")
        });
    let bytes = axum::body::to_bytes(req.into_body(), state.opts.max_body)
        .await
        .map_err(|_| too_large())?;
    if bytes.is_empty() {
        return Ok(None);
    }
    if json_type != Some(true) {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "The request body must be application/json",
        ));
    }
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|_| ApiError::bad_request("Unable to parse JSON data"))
}

/// A JSON answer.
pub fn json_response(reply: Reply) -> Response {
    let text = match reply {
        Reply::Json(t) => t,
        Reply::Value(v) => v.to_string(),
        Reply::Response(r) => return r,
    };
    let mut resp = Response::new(Body::from(text));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn there_are_ganetis_sixty_resources() {
        assert_eq!(ROUTES.len(), 60);
        let mut paths: Vec<&str> = ROUTES.iter().map(|r| r.path).collect();
        paths.sort_unstable();
        paths.dedup();
        assert_eq!(paths.len(), 60, "a path is declared twice");
    }

    #[test]
    fn names_in_paths_follow_ganetis_patterns() {
        let t = "/2/instances/{instance_name}/disk/{disk_index}/grow";
        assert_eq!(
            path_items(t, "/2/instances/web-1.example_x/disk/0/grow"),
            Some(vec!["web-1.example_x".to_string(), "0".to_string()])
        );
        assert_eq!(path_items(t, "/2/instances/web/disk/x/grow"), None);
        assert_eq!(path_items(t, "/2/instances/we%20b/disk/0/grow"), None);
        assert_eq!(path_items("/2/jobs/{job_id}", "/2/jobs/12a"), None);
    }

    #[test]
    fn query_arguments_drop_blank_values_and_keep_repeats() {
        assert_eq!(
            parse_query("tag=a&tag=b%20c&dry-run=1&x=&reason=why+not"),
            vec![
                ("tag".to_string(), "a".to_string()),
                ("tag".to_string(), "b c".to_string()),
                ("dry-run".to_string(), "1".to_string()),
                ("reason".to_string(), "why not".to_string()),
            ]
        );
    }
}
