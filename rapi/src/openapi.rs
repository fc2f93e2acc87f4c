//! The OpenAPI 3.1 document of every resource (`rapi/openapi.json`,
//! committed), served at `/2/openapi.json`. A test checks it against the
//! router both ways: every route and method is documented with the right
//! it asks for, and every documented one exists.

use crate::ctx::{Ctx, Reply};
use crate::error::ApiError;

/// The document.
pub const DOCUMENT: &str = include_str!("../openapi.json");

/// `GET /2/openapi.json`.
pub async fn get(_ctx: Ctx) -> Result<Reply, ApiError> {
    Ok(Reply::Json(DOCUMENT.to_string()))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use serde_json::Value;

    use super::DOCUMENT;
    use crate::auth::Access;
    use crate::routes::all_routes;

    fn doc() -> Value {
        serde_json::from_str(DOCUMENT).expect("openapi.json is JSON")
    }

    #[test]
    fn it_is_openapi_3_1() {
        let d = doc();
        assert!(d["openapi"].as_str().unwrap().starts_with("3.1."));
        assert!(d["info"]["title"].is_string());
    }

    /// Every route and method of the router is documented, and every
    /// documented one is routed.
    #[test]
    fn the_router_and_the_document_agree_both_ways() {
        let d = doc();
        let documented: BTreeSet<(String, String)> = d["paths"]
            .as_object()
            .unwrap()
            .iter()
            .flat_map(|(path, ops)| {
                ops.as_object()
                    .unwrap()
                    .keys()
                    .filter(|m| {
                        ["get", "put", "post", "delete", "patch", "head"].contains(&m.as_str())
                    })
                    .map(move |m| (path.clone(), m.clone()))
            })
            .collect();
        let routed: BTreeSet<(String, String)> = all_routes()
            .flat_map(|r| {
                r.ops
                    .iter()
                    .map(move |o| (r.path.to_string(), o.verb.as_str().to_ascii_lowercase()))
            })
            .collect();
        let undocumented: Vec<_> = routed.difference(&documented).collect();
        let unrouted: Vec<_> = documented.difference(&routed).collect();
        assert!(
            undocumented.is_empty(),
            "routed but not documented: {undocumented:?}"
        );
        assert!(
            unrouted.is_empty(),
            "documented but not routed: {unrouted:?}"
        );
    }

    /// The document says which right each method asks for, and whether
    /// it can be called without credentials, as the router does.
    #[test]
    fn the_documented_rights_are_the_routers() {
        let d = doc();
        for r in all_routes() {
            for o in r.ops {
                let op = &d["paths"][r.path][o.verb.as_str().to_ascii_lowercase()];
                let rights: Vec<&str> = op["x-ganeti-access"]
                    .as_array()
                    .unwrap_or_else(|| panic!("{} {:?}: no x-ganeti-access", r.path, o.verb))
                    .iter()
                    .map(|v| v.as_str().unwrap())
                    .collect();
                assert_eq!(rights, o.access.options(), "{} {:?}", r.path, o.verb);
                let anonymous = op["security"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|s| s.as_object().is_some_and(|m| m.is_empty()));
                assert_eq!(
                    anonymous,
                    o.access == Access::Anyone,
                    "{} {:?}",
                    r.path,
                    o.verb
                );
            }
        }
    }

    /// Every name in a documented path is a documented path parameter.
    #[test]
    fn path_parameters_are_documented() {
        let d = doc();
        for (path, ops) in d["paths"].as_object().unwrap() {
            let names: BTreeSet<&str> = path
                .split('/')
                .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
                .collect();
            for (method, op) in ops.as_object().unwrap() {
                let declared: BTreeSet<String> = op["parameters"]
                    .as_array()
                    .map(|ps| {
                        ps.iter()
                            .filter_map(|p| {
                                let p = match p["$ref"].as_str() {
                                    Some(r) => {
                                        &d["components"]["parameters"]
                                            [r.trim_start_matches("#/components/parameters/")]
                                    }
                                    None => p,
                                };
                                (p["in"] == "path").then(|| p["name"].as_str().unwrap().to_string())
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let declared: BTreeSet<&str> = declared.iter().map(String::as_str).collect();
                assert_eq!(declared, names, "{method} {path}");
            }
        }
    }
}
