//! Ganeti 3.0's own RAPI client (`ganeti.rapi.client` from Debian's
//! `ganeti-3.0` package, unpacked by `scripts/python-ganeti.sh`), driven
//! from the tests through `tests/python/rapi_driver.py`: one call a line.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use serde_json::{json, Value};

use crate::repo_root;

/// The unpacked Python tools (the directory holding the `ganeti`
/// package), or `None` when `GANETI_SKIP_PYTHON_ORACLE=1` asks to skip.
/// Panics when they cannot be installed.
pub fn python_ganeti() -> Option<PathBuf> {
    if std::env::var("GANETI_SKIP_PYTHON_ORACLE").as_deref() == Ok("1") {
        eprintln!("GANETI_SKIP_PYTHON_ORACLE=1: not running Ganeti's Python client");
        return None;
    }
    let script = repo_root().join("scripts/python-ganeti.sh");
    let out = Command::new(&script)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    assert!(
        out.status.success(),
        "{} failed ({}): set GANETI_SKIP_PYTHON_ORACLE=1 to skip.\n{}",
        script.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    assert!(
        dir.join("ganeti/rapi/client.py").is_file(),
        "{} holds no ganeti/rapi/client.py",
        dir.display()
    );
    Some(dir)
}

/// A running driver: calls go to one RAPI server.
pub struct RapiClient {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    user: Option<(String, String)>,
}

/// A failed call: the HTTP status (or curl's error code) and message.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub code: i64,
    pub message: String,
}

impl RapiClient {
    /// Starts the driver for `host:port`; calls carry no credentials
    /// until [`RapiClient::as_user`].
    pub fn start(tools: &Path, host: &str, port: u16) -> RapiClient {
        let mut child = Command::new("/usr/bin/python3")
            .arg(repo_root().join("tests/python/rapi_driver.py"))
            .arg(tools)
            .arg(host)
            .arg(port.to_string())
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("starting the Python RAPI driver");
        let stdin = child.stdin.take().expect("driver stdin");
        let stdout = BufReader::new(child.stdout.take().expect("driver stdout"));
        RapiClient {
            child,
            stdin,
            stdout,
            user: None,
        }
    }

    /// Sends the following calls as `user` with `password`.
    pub fn as_user(&mut self, user: &str, password: &str) -> &mut Self {
        self.user = Some((user.to_string(), password.to_string()));
        self
    }

    /// Sends the following calls without credentials.
    pub fn anonymous(&mut self) -> &mut Self {
        self.user = None;
        self
    }

    /// Calls `method(*args, **kwargs)` of `GanetiRapiClient`.
    pub fn call(&mut self, method: &str, args: Value, kwargs: Value) -> Result<Value, ApiError> {
        let (user, password) = match &self.user {
            Some((u, p)) => (json!(u), json!(p)),
            None => (Value::Null, Value::Null),
        };
        let req = json!({"user": user, "password": password, "method": method,
                         "args": args, "kwargs": kwargs});
        writeln!(self.stdin, "{req}").expect("writing to the driver");
        self.stdin.flush().expect("flushing the driver's input");
        let mut line = String::new();
        self.stdout
            .read_line(&mut line)
            .expect("reading the driver's answer");
        assert!(
            !line.is_empty(),
            "the Python RAPI driver died during {method}"
        );
        let answer: Value = serde_json::from_str(&line).expect("the driver's answer is JSON");
        match answer.get("ok") {
            Some(v) => Ok(v.clone()),
            None => Err(ApiError {
                code: answer["code"].as_i64().unwrap_or(-1),
                message: answer["error"].as_str().unwrap_or_default().to_string(),
            }),
        }
    }

    /// A call that must succeed.
    pub fn ok(&mut self, method: &str, args: Value, kwargs: Value) -> Value {
        self.call(method, args.clone(), kwargs.clone())
            .unwrap_or_else(|e| panic!("{method}({args}, {kwargs}) failed: {e:?}"))
    }

    /// Waits for job `id` with `WaitForJobChange` (RAPI's long poll);
    /// returns its final status.
    pub fn wait_job(&mut self, id: &Value) -> String {
        let mut prev = Value::Null;
        loop {
            let r = self.ok(
                "WaitForJobChange",
                json!([id, ["status"], prev, null]),
                json!({}),
            );
            if r.is_null() {
                continue;
            }
            let info = r["job_info"].clone();
            let status = info[0].as_str().unwrap_or_default().to_string();
            if ["success", "error", "canceled"].contains(&status.as_str()) {
                return status;
            }
            prev = info;
        }
    }

    /// Submits with `method` and waits; the job must succeed. Returns its
    /// id.
    pub fn job_ok(&mut self, method: &str, args: Value, kwargs: Value) -> Value {
        let id = self.ok(method, args.clone(), kwargs.clone());
        let status = self.wait_job(&id);
        if status != "success" {
            let job = self.ok("GetJobStatus", json!([id]), json!({}));
            panic!(
                "{method}({args}, {kwargs}): job {id} ended {status}: {}",
                job["opresult"]
            );
        }
        id
    }
}

impl Drop for RapiClient {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
