//! The opcodes that read what LUXI's read calls read (`OP_QUERY`,
//! `OP_QUERY_FIELDS`, `OP_CLUSTER_QUERY`, `OP_CLUSTER_CONFIG_QUERY`), as
//! jobs: their results are those calls' answers.

use luxi::opcodes;
use luxi::query::{QueryFieldsRequest, QueryRequest};
use luxi::request::Request;
use serde_json::json;

use super::{inval, Ctx, ExecFuture, LogicalUnit};
use crate::config::ConfigData;
use crate::error::Error;
use crate::locking::LockRequest;

/// One of the read opcodes, as the LUXI request it stands for (or why its
/// arguments make none).
pub struct ReadOp {
    req: Option<Result<Request, Error>>,
}

impl ReadOp {
    fn new(req: Result<Request, Error>) -> Self {
        ReadOp { req: Some(req) }
    }

    pub fn query(op: opcodes::Query) -> Self {
        let args = json!([op.what, op.fields, op.qfilter]);
        ReadOp::new(
            QueryRequest::from_args(&args)
                .map(Request::Query)
                .map_err(|e| inval(e.to_string())),
        )
    }

    pub fn query_fields(op: opcodes::QueryFields) -> Self {
        let args = json!([op.what, op.fields]);
        ReadOp::new(
            QueryFieldsRequest::from_args(&args)
                .map(Request::QueryFields)
                .map_err(|e| inval(e.to_string())),
        )
    }

    pub fn cluster_query(_op: opcodes::ClusterQuery) -> Self {
        ReadOp::new(Ok(Request::QueryClusterInfo))
    }

    pub fn config_query(op: opcodes::ClusterConfigQuery) -> Self {
        ReadOp::new(Ok(Request::QueryConfigValues(op.output_fields)))
    }

    fn request(&mut self) -> Result<Request, Error> {
        self.req
            .take()
            .unwrap_or_else(|| Err(Error::programmer("read opcode run twice")))
    }
}

impl LogicalUnit for ReadOp {
    fn check_arguments(&mut self) -> Result<(), Error> {
        let req = self.request()?;
        self.req = Some(Ok(req));
        Ok(())
    }

    /// Reads take no lock, as Ganeti's (`use_locking` is refused).
    fn locks(&mut self, _cfg: &ConfigData) -> Result<LockRequest, Error> {
        Ok(LockRequest::new())
    }

    fn check_prereq(&mut self, _cfg: &ConfigData) -> Result<(), Error> {
        Ok(())
    }

    fn exec<'a>(&'a mut self, ctx: &'a Ctx) -> ExecFuture<'a> {
        Box::pin(async move {
            let req = self.request()?;
            ctx.luxi_query(req).await
        })
    }
}
