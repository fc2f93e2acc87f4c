//! A blocking LUXI client, as the command-line tools use it.

use std::io::BufReader;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::error::GanetiError;
use crate::framing::{self, FrameError};
use crate::protocol::{self, LUXI_VERSION};
use crate::query::{Filter, ItemType, QueryFieldsRequest, QueryRequest};
use crate::request::Request;

/// What can go wrong talking to the master.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The socket could not be reached.
    #[error("cannot connect to the master daemon at {path}; is ganeti-masterd running?")]
    Connect {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The connection failed during a call.
    #[error("communication with the master daemon failed")]
    Transport(#[from] FrameError),
    /// The server answered with an error.
    #[error(transparent)]
    Server(#[from] GanetiError),
}

impl ClientError {
    /// The server's error, if the failure was one.
    pub fn as_ganeti(&self) -> Option<&GanetiError> {
        match self {
            ClientError::Server(e) => Some(e),
            _ => None,
        }
    }
}

/// A connection to the master's LUXI socket.
pub struct Client {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Client {
    /// Connects to the socket at `path`.
    pub fn connect(path: &Path) -> Result<Client, ClientError> {
        let stream = UnixStream::connect(path).map_err(|source| ClientError::Connect {
            path: path.to_path_buf(),
            source,
        })?;
        let writer = stream.try_clone().map_err(|source| ClientError::Connect {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(Client {
            // Big answers (listings of thousands of objects) come in fewer,
            // larger reads.
            reader: BufReader::with_capacity(256 * 1024, stream),
            writer,
        })
    }

    /// Sets a read timeout for replies (`None`: wait forever).
    pub fn set_timeout(&self, t: Option<Duration>) -> std::io::Result<()> {
        self.writer.set_read_timeout(t)
    }

    /// Sends one request and returns its result.
    pub fn request(&mut self, req: &Request) -> Result<Value, ClientError> {
        self.call(req.method(), req.to_args())
    }

    /// Calls `method` with positional `args` as they are: for methods
    /// [`Request`] does not know (and tests of how the master answers them).
    pub fn call(&mut self, method: &str, args: Value) -> Result<Value, ClientError> {
        let msg = protocol::format_request(method, &args, Some(LUXI_VERSION));
        framing::write_message(&mut self.writer, &msg).map_err(FrameError::Io)?;
        let reply = framing::read_message(&mut self.reader)?;
        Ok(protocol::parse_response(&reply)??)
    }

    /// Calls `method` like [`Client::call`], but returns a successful
    /// result as JSON text, for callers that read a big answer (a query
    /// of thousands of rows) straight into their own types instead of
    /// through a tree of JSON values.
    pub fn call_text(&mut self, method: &str, args: Value) -> Result<String, ClientError> {
        let msg = protocol::format_request(method, &args, Some(LUXI_VERSION));
        framing::write_message(&mut self.writer, &msg).map_err(FrameError::Io)?;
        let reply = framing::read_message(&mut self.reader)?;
        if let Some(text) = protocol::success_text(&reply) {
            return Ok(text.to_string());
        }
        let result = protocol::parse_response(&reply)??;
        Ok(result.to_string())
    }

    /// Submits one job (a list of opcodes) and returns its id.
    pub fn submit_job(&mut self, ops: Vec<Value>) -> Result<u64, ClientError> {
        let id = self.request(&Request::SubmitJob(ops))?;
        job_id(&id)
    }

    /// Submits several jobs; each entry is `(true, id)` or `(false, error)`.
    pub fn submit_many_jobs(&mut self, jobs: Vec<Vec<Value>>) -> Result<Value, ClientError> {
        self.request(&Request::SubmitManyJobs(jobs))
    }

    /// `Query(what, fields, filter)`.
    pub fn query(
        &mut self,
        what: &str,
        fields: &[&str],
        filter: Value,
    ) -> Result<Value, ClientError> {
        self.request(&Request::Query(QueryRequest {
            what: item_type(what)?,
            fields: strings(fields),
            filter: Filter::from_json(&filter).map_err(|e| ClientError::Server(e.into()))?,
        }))
    }

    /// `QueryFields(what, fields)`.
    pub fn query_fields(
        &mut self,
        what: &str,
        fields: Option<&[&str]>,
    ) -> Result<Value, ClientError> {
        self.request(&Request::QueryFields(QueryFieldsRequest {
            what: item_type(what)?,
            fields: fields.map(strings).unwrap_or_default(),
        }))
    }

    /// `QueryJobs(ids, fields)`.
    pub fn query_jobs(
        &mut self,
        ids: Option<&[u64]>,
        fields: &[&str],
    ) -> Result<Value, ClientError> {
        self.request(&Request::QueryJobs {
            ids: ids.map(<[u64]>::to_vec),
            fields: strings(fields),
        })
    }

    /// `WaitForJobChange(id, fields, prev_job_info, prev_log_serial, timeout)`.
    pub fn wait_for_job_change(
        &mut self,
        id: u64,
        fields: &[&str],
        prev_job_info: Value,
        prev_log_serial: Value,
        timeout_secs: u64,
    ) -> Result<Value, ClientError> {
        self.request(&Request::WaitForJobChange {
            job: id,
            fields: strings(fields),
            prev_job_info,
            prev_log_serial,
            timeout: timeout_secs as f64,
        })
    }

    /// `QueryClusterInfo()`.
    pub fn query_cluster_info(&mut self) -> Result<Value, ClientError> {
        self.request(&Request::QueryClusterInfo)
    }

    /// `CancelJob(id, kill)`.
    pub fn cancel_job(&mut self, id: u64, kill: bool) -> Result<Value, ClientError> {
        self.request(&Request::CancelJob { job: id, kill })
    }
}

fn item_type(what: &str) -> Result<ItemType, ClientError> {
    ItemType::parse(what).ok_or_else(|| {
        ClientError::Server(GanetiError::luxi(format!(
            "unknown query resource '{what}'"
        )))
    })
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_string()).collect()
}

/// Job ids travel as numbers or numeric strings.
pub fn job_id(v: &Value) -> Result<u64, ClientError> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
    .ok_or_else(|| ClientError::Server(GanetiError::luxi(format!("invalid job id {v}"))))
}
