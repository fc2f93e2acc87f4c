//! The master daemon, as RAPI reaches it: typed LUXI requests
//! ([`luxi::request::Request`]) over the master's unix socket, on a small
//! pool of kept connections.
//!
//! Results come back as JSON text (the master serializes big query
//! answers straight from its rows), so a handler can pass them on without
//! building a tree of JSON values.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use luxi::framing::{aio, FrameError};
use luxi::protocol::{self, LUXI_VERSION};
use luxi::request::Request;
use luxi::GanetiError;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;
use tokio::io::BufReader;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::UnixStream;

/// Connections kept open between requests.
const MAX_IDLE: usize = 32;
/// The read buffer of a connection.
const READ_BUFFER: usize = 256 * 1024;

/// What can go wrong asking the master.
#[derive(Debug, thiserror::Error)]
pub enum MasterError {
    #[error("cannot connect to the master daemon at {path}")]
    Connect {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("communication with the master daemon failed")]
    Transport(#[from] FrameError),
    #[error("the master daemon's reply is not valid LUXI")]
    Reply(#[source] serde_json::Error),
    #[error("the master daemon did not answer in time")]
    Timeout,
    /// The master answered with an error.
    #[error(transparent)]
    Server(#[from] GanetiError),
}

struct Conn {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
}

impl Conn {
    /// Whether the master closed this kept connection (it restarted).
    fn closed(&self) -> bool {
        let mut probe = [0u8; 1];
        !matches!(
            self.reader.get_ref().try_read(&mut probe),
            Err(ref e) if e.kind() == std::io::ErrorKind::WouldBlock
        )
    }
}

/// The master daemon's LUXI socket.
pub struct Master {
    socket: PathBuf,
    timeout: Duration,
    idle: Mutex<Vec<Conn>>,
}

#[derive(Deserialize)]
struct Reply<'a> {
    success: bool,
    #[serde(borrow)]
    result: &'a RawValue,
}

impl Master {
    /// The master listening on `socket`; a call that takes longer than
    /// `timeout` fails with [`MasterError::Timeout`].
    pub fn new(socket: &Path, timeout: Duration) -> Self {
        Master {
            socket: socket.to_path_buf(),
            timeout,
            idle: Mutex::new(Vec::new()),
        }
    }

    fn take_idle(&self) -> Option<Conn> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        while let Some(c) = idle.pop() {
            if !c.closed() {
                return Some(c);
            }
        }
        None
    }

    fn put_idle(&self, c: Conn) {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < MAX_IDLE {
            idle.push(c);
        }
    }

    async fn connect(&self) -> Result<Conn, MasterError> {
        let stream =
            UnixStream::connect(&self.socket)
                .await
                .map_err(|source| MasterError::Connect {
                    path: self.socket.clone(),
                    source,
                })?;
        let (r, w) = stream.into_split();
        Ok(Conn {
            // Big answers (listings of thousands of objects) come in
            // fewer, larger reads.
            reader: BufReader::with_capacity(READ_BUFFER, r),
            writer: w,
        })
    }

    async fn exchange(&self, msg: &str) -> Result<String, MasterError> {
        let mut conn = match self.take_idle() {
            Some(c) => c,
            None => self.connect().await?,
        };
        aio::write_message(&mut conn.writer, msg)
            .await
            .map_err(FrameError::Io)?;
        let reply = aio::read_message(&mut conn.reader).await?;
        self.put_idle(conn);
        Ok(reply)
    }

    /// Sends `req`; returns the master's whole reply message, for callers
    /// that read a big answer in one pass (and [`result_of`] otherwise).
    pub async fn call_message(&self, req: &Request) -> Result<String, MasterError> {
        let msg = protocol::format_request(req.method(), &req.to_args(), Some(LUXI_VERSION));
        tokio::time::timeout(self.timeout, self.exchange(&msg))
            .await
            .map_err(|_| MasterError::Timeout)?
    }

    /// Sends `req`; returns the result as JSON text.
    pub async fn call_text(&self, req: &Request) -> Result<String, MasterError> {
        let reply = self.call_message(req).await?;
        Ok(result_of(&reply)?.to_string())
    }

    /// Sends `req`; returns the result.
    pub async fn call(&self, req: &Request) -> Result<Value, MasterError> {
        let text = self.call_text(req).await?;
        serde_json::from_str(&text).map_err(MasterError::Reply)
    }
}

/// The result of the master's reply message `reply` as JSON text, or the
/// master's error.
pub fn result_of(reply: &str) -> Result<&str, MasterError> {
    let parsed: Reply<'_> = serde_json::from_str(reply).map_err(MasterError::Reply)?;
    if parsed.success {
        Ok(parsed.result.get())
    } else {
        let err: Value = serde_json::from_str(parsed.result.get()).map_err(MasterError::Reply)?;
        Err(MasterError::Server(GanetiError::decode(&err)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use luxi::framing::aio as f;
    use serde_json::json;
    use tokio::net::UnixListener;

    /// A master that answers each request with `reply(method)`.
    fn fake_master(dir: &Path, reply: fn(&str) -> String) -> PathBuf {
        let path = dir.join("sock");
        let listener = UnixListener::bind(&path).unwrap();
        tokio::spawn(async move {
            while let Ok((s, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let (r, mut w) = s.into_split();
                    let mut r = BufReader::new(r);
                    while let Ok(msg) = f::read_message(&mut r).await {
                        let req = protocol::parse_request(&msg).unwrap();
                        f::write_message(&mut w, &reply(&req.method)).await.unwrap();
                    }
                });
            }
        });
        path
    }

    #[tokio::test]
    async fn results_and_errors_come_back_typed() {
        let dir = tempfile::tempdir().unwrap();
        let sock = fake_master(dir.path(), |m| match m {
            "QueryClusterInfo" => protocol::format_response(Ok(json!({"name": "c"})), None),
            _ => protocol::format_response(Err(GanetiError::queue_drained()), None),
        });
        let m = Master::new(&sock, Duration::from_secs(10));
        assert_eq!(
            m.call(&Request::QueryClusterInfo).await.unwrap(),
            json!({"name": "c"})
        );
        // The kept connection serves the next call too.
        assert_eq!(m.idle.lock().unwrap().len(), 1);
        match m.call(&Request::SetDrainFlag(true)).await {
            Err(MasterError::Server(e)) => assert!(e.is_queue_drained(), "{e}"),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn no_master_is_a_connect_error() {
        let dir = tempfile::tempdir().unwrap();
        let m = Master::new(&dir.path().join("none"), Duration::from_secs(1));
        assert!(matches!(
            m.call(&Request::QueryClusterInfo).await,
            Err(MasterError::Connect { .. })
        ));
    }
}
