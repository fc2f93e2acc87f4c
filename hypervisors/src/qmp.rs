//! A synchronous client of QEMU's machine protocol (QMP) over a unix
//! socket, for the KVM driver: one JSON object per line; after the
//! greeting, `qmp_capabilities` enters command mode; each command gets a
//! `return` or an `error`, and asynchronous `event`s may come in between.

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
    events: Vec<Value>,
    /// QEMU's version from the greeting (`{"qemu": {...}, "package": ...}`).
    pub version: Value,
}

impl std::fmt::Debug for Qmp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Qmp")
            .field("version", &self.version)
            .finish()
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
            events: Vec::new(),
            version: Value::Null,
        };
        // QEMU may flush an event it queued while no client was connected
        // before the greeting; it is kept like any other event.
        let greeting = loop {
            let msg = qmp.read_message("greeting")?;
            if msg.get("event").is_none() {
                break msg;
            }
            qmp.events.push(msg);
        };
        match greeting.get("QMP") {
            Some(info) => qmp.version = info.get("version").cloned().unwrap_or(Value::Null),
            None => {
                return Err(QmpError::Protocol {
                    command: "greeting".into(),
                    message: greeting.to_string(),
                })
            }
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
    /// Events that arrive meanwhile are kept (see [`Qmp::take_events`]).
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
                self.events.push(reply);
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

    /// The events received so far, oldest first.
    pub fn take_events(&mut self) -> Vec<Value> {
        std::mem::take(&mut self.events)
    }
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader, Write};
    use std::os::unix::net::UnixListener;

    use super::*;

    /// A QMP server that answers like QEMU, for one connection; it first
    /// flushes an event left from an earlier client, as QEMU may.
    fn fake_qemu(path: &Path) -> std::thread::JoinHandle<Vec<Value>> {
        let listener = UnixListener::bind(path).unwrap();
        std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut out = stream.try_clone().unwrap();
            let mut seen = Vec::new();
            writeln!(
                out,
                r#"{{"event": "STOP", "timestamp": {{"seconds": 0, "microseconds": 1}}}}"#
            )
            .unwrap();
            writeln!(
                out,
                r#"{{"QMP": {{"version": {{"qemu": {{"major": 7, "minor": 2, "micro": 0}}, "package": ""}}, "capabilities": []}}}}"#
            )
            .unwrap();
            for line in BufReader::new(stream).lines() {
                let Ok(line) = line else { break };
                let msg: Value = serde_json::from_str(&line).unwrap();
                seen.push(msg.clone());
                let id = msg["id"].clone();
                let reply = match msg["execute"].as_str().unwrap() {
                    "qmp_capabilities" => json!({"return": {}, "id": id}),
                    "query-status" => {
                        writeln!(out, r#"{{"event": "RESUME", "timestamp": {{"seconds": 1, "microseconds": 2}}}}"#).unwrap();
                        json!({"return": {"status": "running", "running": true}, "id": id})
                    }
                    "balloon" => json!({"return": {}, "id": id}),
                    other => {
                        json!({"error": {"class": "CommandNotFound", "desc": format!("The command {other} has not been found")}, "id": id})
                    }
                };
                writeln!(out, "{reply}").unwrap();
            }
            seen
        })
    }

    #[test]
    fn commands_get_their_answers_and_events_are_kept() {
        let tmp = tempfile::tempdir().unwrap();
        let sock = tmp.path().join("qmp.sock");
        let server = fake_qemu(&sock);
        let mut qmp = Qmp::connect(&sock, Duration::from_secs(10)).unwrap();
        assert_eq!(qmp.version["qemu"]["major"], 7);
        let status = qmp.execute("query-status", None).unwrap();
        assert_eq!(status["status"], "running");
        let events: Vec<Value> = qmp
            .take_events()
            .iter()
            .map(|e| e["event"].clone())
            .collect();
        assert_eq!(events, vec![json!("STOP"), json!("RESUME")]);
        qmp.execute("balloon", Some(json!({"value": 512u64 << 20})))
            .unwrap();
        let err = qmp.execute("nosuch", None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "QMP command 'nosuch' failed: CommandNotFound: The command nosuch has not been found"
        );
        drop(qmp);
        let seen = server.join().unwrap();
        assert_eq!(seen[0]["execute"], "qmp_capabilities");
        assert_eq!(seen[2]["arguments"]["value"], 512u64 << 20);
    }

    #[test]
    fn a_missing_socket_is_named() {
        let err =
            Qmp::connect(Path::new("/nonexistent/qmp.sock"), Duration::from_secs(1)).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/qmp.sock"), "{err}");
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
