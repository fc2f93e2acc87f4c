//! A synchronous client of QEMU's machine protocol (QMP) over a unix
//! socket, for the storage daemons (`qemu-storage-daemon`) of `drbd`
//! disks: one JSON object per line; after the greeting
//! `qmp_capabilities` enters command mode; each command gets a `return`
//! or an `error`, and asynchronous events may come in between (dropped:
//! the callers ask for the state they need).
//!
//! The `hypervisors` crate has its own client for the guests' QEMUs; the
//! two crates sit side by side and share no code.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};

#[derive(Debug, thiserror::Error)]
pub enum QmpError {
    #[error("cannot connect to the QMP socket '{path}'")]
    Connect {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("QMP I/O failed during '{command}'")]
    Io {
        command: String,
        #[source]
        source: std::io::Error,
    },
    #[error("QMP connection closed during '{0}'")]
    Closed(String),
    #[error("unexpected QMP message during '{command}': {message}")]
    Protocol { command: String, message: String },
    #[error("QMP command '{command}' failed: {class}: {desc}")]
    Command {
        command: String,
        class: String,
        desc: String,
    },
}

/// An open QMP session in command mode.
pub struct Qmp {
    writer: UnixStream,
    reader: BufReader<UnixStream>,
    next_id: u64,
}

impl std::fmt::Debug for Qmp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Qmp").finish_non_exhaustive()
    }
}

impl Qmp {
    /// Connects to `path`, reads the greeting and enters command mode.
    /// Every read and write gives up after `timeout`.
    pub fn connect(path: &Path, timeout: Duration) -> Result<Self, QmpError> {
        let connect_err = |source| QmpError::Connect {
            path: path.to_path_buf(),
            source,
        };
        let stream = UnixStream::connect(path).map_err(connect_err)?;
        stream
            .set_read_timeout(Some(timeout))
            .map_err(connect_err)?;
        stream
            .set_write_timeout(Some(timeout))
            .map_err(connect_err)?;
        let reader = BufReader::new(stream.try_clone().map_err(connect_err)?);
        let mut qmp = Qmp {
            writer: stream,
            reader,
            next_id: 1,
        };
        // An event QEMU queued while no client was connected (the
        // monitor stays in command mode until the next client opens) may
        // come before the greeting: it is old news, dropped like the rest.
        let greeting = loop {
            let msg = qmp.read_message("greeting")?;
            if msg.get("event").is_none() {
                break msg;
            }
        };
        if greeting.get("QMP").is_none() {
            return Err(QmpError::Protocol {
                command: "greeting".into(),
                message: greeting.to_string(),
            });
        }
        qmp.execute("qmp_capabilities", None)?;
        Ok(qmp)
    }

    fn read_message(&mut self, command: &str) -> Result<Value, QmpError> {
        let mut line = String::new();
        let n = self
            .reader
            .read_line(&mut line)
            .map_err(|source| QmpError::Io {
                command: command.to_string(),
                source,
            })?;
        if n == 0 {
            return Err(QmpError::Closed(command.to_string()));
        }
        serde_json::from_str(&line).map_err(|e| QmpError::Protocol {
            command: command.to_string(),
            message: format!("{e}: {}", line.trim_end()),
        })
    }

    /// Runs `command` with `arguments`; returns its `return` value.
    pub fn execute(&mut self, command: &str, arguments: Option<Value>) -> Result<Value, QmpError> {
        let id = self.next_id;
        self.next_id += 1;
        let mut msg = json!({"execute": command, "id": id});
        if let Some(args) = arguments {
            msg["arguments"] = args;
        }
        let mut text = msg.to_string();
        text.push('\n');
        self.writer
            .write_all(text.as_bytes())
            .map_err(|source| QmpError::Io {
                command: command.to_string(),
                source,
            })?;
        loop {
            let reply = self.read_message(command)?;
            if reply.get("event").is_some() {
                continue;
            }
            if reply.get("id").is_some_and(|v| v != &json!(id)) {
                // An answer to an earlier command that timed out.
                continue;
            }
            if let Some(ret) = reply.get("return") {
                return Ok(ret.clone());
            }
            if let Some(err) = reply.get("error") {
                let field = |k: &str| err.get(k).and_then(Value::as_str).unwrap_or("").to_string();
                return Err(QmpError::Command {
                    command: command.to_string(),
                    class: field("class"),
                    desc: field("desc"),
                });
            }
            return Err(QmpError::Protocol {
                command: command.to_string(),
                message: reply.to_string(),
            });
        }
    }

    /// [`Qmp::execute`] with arguments.
    pub fn run(&mut self, command: &str, arguments: Value) -> Result<Value, QmpError> {
        self.execute(command, Some(arguments))
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::net::UnixListener;

    use super::*;

    /// A QMP server that answers like QEMU, for one connection; it
    /// first flushes an event left from an earlier client, as QEMU does.
    fn fake_qemu(path: &Path) -> std::thread::JoinHandle<Vec<Value>> {
        let listener = UnixListener::bind(path).unwrap();
        std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut out = stream.try_clone().unwrap();
            let mut seen = Vec::new();
            writeln!(
                out,
                r#"{{"event": "JOB_STATUS_CHANGE", "data": {{"status": "ready"}}}}"#
            )
            .unwrap();
            writeln!(out, r#"{{"QMP": {{"version": {{}}, "capabilities": []}}}}"#).unwrap();
            for line in BufReader::new(stream).lines() {
                let Ok(line) = line else { break };
                let msg: Value = serde_json::from_str(&line).unwrap();
                seen.push(msg.clone());
                let id = msg["id"].clone();
                let reply = match msg["execute"].as_str().unwrap() {
                    "qmp_capabilities" => json!({"return": {}, "id": id}),
                    "query-block-jobs" => {
                        writeln!(out, r#"{{"event": "JOB_STATUS_CHANGE", "data": {{}}}}"#).unwrap();
                        json!({"return": [{"device": "replicate"}], "id": id})
                    }
                    other => json!({"error": {"class": "GenericError",
                        "desc": format!("no {other}")}, "id": id}),
                };
                writeln!(out, "{reply}").unwrap();
            }
            seen
        })
    }

    #[test]
    fn commands_get_their_answers_past_events_even_before_the_greeting() {
        let tmp = tempfile::tempdir().unwrap();
        let sock = tmp.path().join("qmp.sock");
        let server = fake_qemu(&sock);
        let mut qmp = Qmp::connect(&sock, Duration::from_secs(10)).unwrap();
        let jobs = qmp.execute("query-block-jobs", None).unwrap();
        assert_eq!(jobs[0]["device"], "replicate");
        let err = qmp
            .run("blockdev-del", json!({"node-name": "x"}))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "QMP command 'blockdev-del' failed: GenericError: no blockdev-del"
        );
        drop(qmp);
        let seen = server.join().unwrap();
        assert_eq!(seen[2]["arguments"]["node-name"], "x");
    }

    #[test]
    fn a_silent_peer_times_out() {
        let tmp = tempfile::tempdir().unwrap();
        let sock = tmp.path().join("qmp.sock");
        let _listener = UnixListener::bind(&sock).unwrap();
        let err = Qmp::connect(&sock, Duration::from_millis(200)).unwrap_err();
        assert!(matches!(err, QmpError::Io { .. }), "{err:?}");
    }
}
