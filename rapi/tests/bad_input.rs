//! Bad input gets Ganeti's error bodies, and nothing a client sends makes
//! the server panic: the application runs in-process against a fake
//! master (a unix socket answering every LUXI call with a canned reply).

// An integration test: a failed unwrap or expect is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use base64::Engine;
use luxi::framing::aio;
use luxi::protocol;
use luxi::GanetiError;
use proptest::prelude::*;
use rapi::state::{Options, State};
use serde_json::{json, Value};
use tokio::io::BufReader;
use tokio::net::UnixListener;
use tower::ServiceExt;

/// What the fake master answers.
#[derive(Debug, Clone)]
enum Canned {
    Ok(Value),
    Err(GanetiError),
}

type Answer = Arc<Mutex<Canned>>;

/// A master on `dir/sock` that answers every call with the canned
/// answer, and `WaitForJobChange` with a finished job (so that waiting
/// for a job ends).
fn fake_master(dir: &Path, answer: Answer) -> std::path::PathBuf {
    let path = dir.join("sock");
    let listener = UnixListener::bind(&path).unwrap();
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            let answer = answer.clone();
            tokio::spawn(async move {
                let (r, mut w) = s.into_split();
                let mut r = BufReader::new(r);
                while let Ok(msg) = aio::read_message(&mut r).await {
                    let Ok(req) = protocol::parse_request(&msg) else {
                        return;
                    };
                    let canned = answer.lock().unwrap().clone();
                    let result = match (req.method.as_str(), canned) {
                        (_, Canned::Err(e)) => Err(e),
                        ("WaitForJobChange", _) => Ok(json!([["error"], []])),
                        (_, Canned::Ok(v)) => Ok(v),
                    };
                    let reply = protocol::format_response(result, None);
                    if aio::write_message(&mut w, &reply).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    path
}

struct Fixture {
    _dir: tempfile::TempDir,
    app: Router,
    answer: Answer,
}

fn fixture(max_body: usize) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let answer: Answer = Arc::new(Mutex::new(Canned::Ok(json!(1))));
    let sock = fake_master(dir.path(), answer.clone());
    let users = dir.path().join("users");
    std::fs::write(&users, "admin pw write\nviewer pw read\n").unwrap();
    let state = State::with_files(
        &sock,
        &users,
        &dir.path().join("tokens"),
        Options {
            max_body,
            ..Options::default()
        },
    );
    Fixture {
        app: rapi::app(Arc::new(state)),
        answer,
        _dir: dir,
    }
}

fn basic(user: &str, pw: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pw}"))
    )
}

struct Answered {
    status: StatusCode,
    allow: Option<String>,
    body: Vec<u8>,
}

async fn send(
    app: &Router,
    method: &str,
    uri: &str,
    auth: Option<String>,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> Answered {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(a) = auth {
        req = req.header(header::AUTHORIZATION, a);
    }
    if let Some(ct) = content_type {
        req = req.header(header::CONTENT_TYPE, ct);
    }
    let resp = app
        .clone()
        .oneshot(req.body(Body::from(body)).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let allow = resp
        .headers()
        .get(header::ALLOW)
        .map(|v| v.to_str().unwrap().to_string());
    let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap()
        .to_vec();
    Answered {
        status,
        allow,
        body,
    }
}

/// Asserts an error answer with Ganeti's body; returns its message.
fn ganeti_error(a: &Answered, status: u16) -> String {
    assert_eq!(
        a.status.as_u16(),
        status,
        "{}",
        String::from_utf8_lossy(&a.body)
    );
    let body: Value = serde_json::from_slice(&a.body).expect("error bodies are JSON");
    let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["code", "explain", "message"]);
    assert_eq!(body["code"], status);
    body["message"].as_str().unwrap().to_string()
}

fn admin() -> Option<String> {
    Some(basic("admin", "pw"))
}

const JSON: Option<&str> = Some("application/json");

#[tokio::test]
async fn bad_requests_get_ganetis_error_bodies() {
    let f = fixture(1024);
    let app = &f.app;

    // Unknown resources, and names that do not match Ganeti's patterns.
    for uri in [
        "/2/bogus",
        "/2/instances/",
        "/3/info",
        "/2/jobs/x1",
        "/2/instances/a%20b",
    ] {
        let a = send(app, "GET", uri, None, None, vec![]).await;
        assert_eq!(ganeti_error(&a, 404), "Not Found", "{uri}");
    }
    // A method the resource does not have: 405 naming those it has.
    let a = send(app, "POST", "/2/info", admin(), None, vec![]).await;
    assert_eq!(
        ganeti_error(&a, 405),
        "Method POST is unsupported for path /2/info"
    );
    assert_eq!(a.allow.as_deref(), Some("GET"));
    let a = send(app, "PATCH", "/2/instances/web1", admin(), None, vec![]).await;
    ganeti_error(&a, 405);
    assert_eq!(a.allow.as_deref(), Some("GET, DELETE"));

    // Malformed JSON.
    let a = send(
        app,
        "POST",
        "/2/instances",
        admin(),
        JSON,
        b"{\"__version__\": 1,".to_vec(),
    )
    .await;
    assert_eq!(ganeti_error(&a, 400), "Unable to parse JSON data");
    // A body that is not JSON at all.
    let a = send(
        app,
        "POST",
        "/2/instances",
        admin(),
        Some("text/plain"),
        b"x".to_vec(),
    )
    .await;
    ganeti_error(&a, 415);
    // Wrong types.
    let a = send(
        app,
        "PUT",
        "/2/nodes/node1/role",
        admin(),
        JSON,
        b"42".to_vec(),
    )
    .await;
    assert_eq!(
        ganeti_error(&a, 400),
        "Body contents: Type is &#x27;int&#x27;, but &#x27;str&#x27; is expected"
    );
    let a = send(
        app,
        "PUT",
        "/2/instances/web1/modify",
        admin(),
        JSON,
        b"[1]".to_vec(),
    )
    .await;
    ganeti_error(&a, 400);
    let a = send(app, "GET", "/2/nodes?bulk=yes", None, None, vec![]).await;
    assert_eq!(
        ganeti_error(&a, 400),
        "Invalid value for the &#x27;bulk&#x27; parameter"
    );
    // Unknown fields, named.
    let body = json!({"__version__": 1, "mode": "create", "name": "web1",
                      "disk_template": "diskless", "disks": [], "nics": [], "colour": "red"});
    let a = send(
        app,
        "POST",
        "/2/instances",
        admin(),
        JSON,
        body.to_string().into_bytes(),
    )
    .await;
    assert_eq!(
        ganeti_error(&a, 400),
        "Invalid body parameters: OP_INSTANCE_CREATE has no parameter &#x27;colour&#x27;"
    );
    let a = send(app, "POST", "/2/instances", admin(), JSON, b"{}".to_vec()).await;
    assert_eq!(
        ganeti_error(&a, 400),
        "Instance creation request version 0 is no longer supported"
    );
    // Oversized bodies, declared or not.
    let big = vec![b' '; 2048];
    let a = send(app, "POST", "/2/instances", admin(), JSON, big).await;
    ganeti_error(&a, 413);

    // Credentials: none, wrong, without the right.
    let a = send(app, "PUT", "/2/instances/web1/startup", None, None, vec![]).await;
    ganeti_error(&a, 401);
    let a = send(
        app,
        "PUT",
        "/2/instances/web1/startup",
        Some(basic("admin", "no")),
        None,
        vec![],
    )
    .await;
    ganeti_error(&a, 401);
    let a = send(
        app,
        "PUT",
        "/2/instances/web1/startup",
        Some(basic("viewer", "pw")),
        None,
        vec![],
    )
    .await;
    ganeti_error(&a, 403);
    let a = send(
        app,
        "PUT",
        "/2/instances/web1/startup",
        admin(),
        None,
        vec![],
    )
    .await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.body, b"1");

    // The master's refusals.
    *f.answer.lock().unwrap() = Canned::Err(GanetiError::opcode_unknown(
        "Opcode 'OP_INSTANCE_GROW_DISK' is not supported by ganeti-rs yet",
    ));
    let a = send(
        app,
        "POST",
        "/2/instances/web1/disk/0/grow",
        admin(),
        JSON,
        b"{\"amount\": 1}".to_vec(),
    )
    .await;
    assert_eq!(
        ganeti_error(&a, 501),
        "Opcode &#x27;OP_INSTANCE_GROW_DISK&#x27; is not supported by ganeti-rs yet"
    );
    *f.answer.lock().unwrap() = Canned::Err(GanetiError::queue_drained());
    let a = send(
        app,
        "PUT",
        "/2/instances/web1/startup",
        admin(),
        None,
        vec![],
    )
    .await;
    assert_eq!(ganeti_error(&a, 503), "Job queue is drained, cannot submit");
}

#[tokio::test]
async fn no_master_is_a_bad_gateway() {
    let dir = tempfile::tempdir().unwrap();
    let state = State::with_files(
        &dir.path().join("none"),
        &dir.path().join("users"),
        &dir.path().join("tokens"),
        Options::default(),
    );
    let app = rapi::app(Arc::new(state));
    let a = send(&app, "GET", "/2/info", None, None, vec![]).await;
    assert!(ganeti_error(&a, 502).starts_with("Can&#x27;t connect to master daemon"));
}

/// Path segments: the real ones, names, and junk.
fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("2".to_string()),
        Just("instances".to_string()),
        Just("nodes".to_string()),
        Just("groups".to_string()),
        Just("networks".to_string()),
        Just("jobs".to_string()),
        Just("query".to_string()),
        Just("filters".to_string()),
        Just("tags".to_string()),
        Just("info".to_string()),
        Just("os".to_string()),
        Just("role".to_string()),
        Just("modify".to_string()),
        Just("wait".to_string()),
        Just("disk".to_string()),
        Just("grow".to_string()),
        Just("instance".to_string()),
        Just("fields".to_string()),
        Just("openapi.json".to_string()),
        "[0-9]{1,25}",
        "[a-z0-9._-]{1,12}",
        "[%a-zA-Z0-9~!$&'()*+,;=:@.-]{0,12}",
    ]
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        "[a-z_ ]{0,10}".prop_map(Value::from),
    ];
    let value = leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("__version__".to_string()),
                    Just("name".to_string()),
                    Just("fields".to_string()),
                    Just("depends".to_string()),
                    Just("instances".to_string()),
                    Just("qfilter".to_string()),
                    "[a-z_]{1,10}",
                ],
                inner,
                0..5
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    });
    prop_oneof![
        Just(vec![]),
        value.prop_map(|v| v.to_string().into_bytes()),
        prop::collection::vec(any::<u8>(), 0..64),
    ]
}

fn canned() -> impl Strategy<Value = Canned> {
    prop_oneof![
        Just(Canned::Ok(json!(7))),
        Just(Canned::Ok(json!([]))),
        Just(Canned::Ok(json!([null]))),
        Just(Canned::Ok(json!({"fields": [], "data": []}))),
        Just(Canned::Ok(
            json!({"fields": [{"name": "name", "kind": "text"}],
                               "data": [[[0, "x"]], [[4, null]]]})
        )),
        Just(Canned::Ok(json!({"name": "c"}))),
        Just(Canned::Ok(json!("nochange"))),
        Just(Canned::Ok(json!([[1, "success", []]]))),
        Just(Canned::Err(GanetiError::prereq(
            "x not known",
            luxi::ErrorCode::NoEnt
        ))),
        Just(Canned::Err(GanetiError::exec("boom"))),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1500))]

    /// Any method, path, query, body and master answer: an answer, never
    /// a panic; every error has Ganeti's body (HEAD, which Ganeti's RAPI
    /// does not serve, gets 405 without one).
    #[test]
    fn the_server_never_panics(
        method in prop_oneof![Just("GET"), Just("PUT"), Just("POST"), Just("DELETE"), Just("HEAD"), Just("OPTIONS")],
        segs in prop::collection::vec(segment(), 0..7),
        query in "[a-z=&%0-9_-]{0,30}",
        auth in prop_oneof![Just(None), Just(Some(basic("admin", "pw"))), Just(Some("Basic %%%".to_string())), Just(Some("Bearer abc".to_string()))],
        json_type in any::<bool>(),
        body in body(),
        canned in canned(),
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let f = fixture(4096);
            *f.answer.lock().unwrap() = canned;
            let path = format!("/{}", segs.join("/"));
            let uri = if query.is_empty() { path } else { format!("{path}?{query}") };
            let Ok(uri) = uri.parse::<axum::http::Uri>() else { return };
            let ct = if json_type { JSON } else { None };
            let a = send(&f.app, method, &uri.to_string(), auth, ct, body).await;
            // HEAD answers never have a body.
            if !a.status.is_success() && method != "HEAD" {
                let v: Value = serde_json::from_slice(&a.body).expect("error bodies are JSON");
                assert_eq!(v["code"], a.status.as_u16());
                assert!(v["message"].is_string() && v["explain"].is_string());
            }
        });
    }
}
