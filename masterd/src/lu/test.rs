//! `OP_TEST_DELAY`: sleeps on the master; used by tests and benchmarks.

use std::time::Duration;

use crate::error::Error;
use luxi::opcodes;
use serde_json::Value;

use super::{inval, Ctx, ExecFuture, LogicalUnit};
use crate::config::ConfigData;
use crate::locking::{LockRequest, Mode};

pub struct TestDelay {
    op: opcodes::TestDelay,
}

impl TestDelay {
    pub fn new(op: opcodes::TestDelay) -> Self {
        TestDelay { op }
    }
}

impl LogicalUnit for TestDelay {
    fn check_arguments(&mut self) -> Result<(), Error> {
        if !self.op.duration.is_finite() || self.op.duration < 0.0 {
            return Err(inval(format!(
                "Invalid duration {}: expected a non-negative number of seconds",
                self.op.duration
            )));
        }
        if !self.op.on_nodes.is_empty() || self.op.on_node_uuids.is_some() {
            return Err(inval(
                "Delays on nodes (on_nodes) are not supported by ganeti-rs yet",
            ));
        }
        Ok(())
    }

    fn locks(&mut self, _cfg: &ConfigData) -> Result<LockRequest, Error> {
        Ok(if self.op.no_locks {
            LockRequest::new()
        } else {
            LockRequest::new().bgl(Mode::Shared)
        })
    }

    fn check_prereq(&mut self, _cfg: &ConfigData) -> Result<(), Error> {
        Ok(())
    }

    fn exec<'a>(&'a mut self, ctx: &'a Ctx) -> ExecFuture<'a> {
        Box::pin(async move {
            let rounds = self.op.repeat.max(1);
            for i in 0..rounds {
                if self.op.repeat > 0 {
                    ctx.feedback(format!("Test delay iteration {}/{}", i + 1, rounds));
                }
                if self.op.on_master && self.op.duration > 0.0 {
                    tokio::time::sleep(Duration::from_secs_f64(self.op.duration)).await;
                }
            }
            Ok(Value::Null)
        })
    }
}
