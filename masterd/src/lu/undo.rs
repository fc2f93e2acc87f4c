//! Undoing a unit's work on the nodes when a later step fails.
//!
//! A unit that changes nodes in several steps records, after each step
//! that succeeded, how to take it back. If a later step fails, the unit
//! hands the error to [`Undo::unwind`], which runs the undo steps, last
//! first, and returns the error. Once the unit reaches its commit point
//! (the configuration holds what it made), [`Undo::done`] drops the undo
//! steps: from there on, what exists is accounted for.

use std::future::Future;
use std::pin::Pin;

use crate::error::Error;

use crate::lu::Ctx;

type UndoFuture<'a> = Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>>;

/// The undo steps of a unit's work so far.
pub struct Undo<'a> {
    ctx: &'a Ctx,
    steps: Vec<(String, UndoFuture<'a>)>,
}

impl<'a> Undo<'a> {
    pub fn new(ctx: &'a Ctx) -> Self {
        Undo {
            ctx,
            steps: Vec::new(),
        }
    }

    /// Records how to undo a step that succeeded: `what` says it in the job
    /// log ("remove disk 0 on node2"); `step` runs only when unwinding, and
    /// fails with what went wrong.
    pub fn push(
        &mut self,
        what: impl Into<String>,
        step: impl Future<Output = Result<(), String>> + Send + 'a,
    ) {
        self.steps.push((what.into(), Box::pin(step)));
    }

    /// How many undo steps are recorded.
    pub fn len(&self) -> usize {
        self.steps.len()
    }

    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// Undoes every recorded step, last first, and returns `err`, the
    /// failure that made the unit stop. An undo step that fails is reported
    /// as a warning in the job log and in the returned error's message, so
    /// that what is left behind is never silent.
    pub async fn unwind(self, err: Error) -> Error {
        let mut failed = Vec::new();
        for (what, step) in self.steps.into_iter().rev() {
            tracing::info!(job = self.ctx.op.job_id(), "undo: {what}");
            if let Err(e) = step.await {
                let msg = format!("could not {what}: {e}");
                tracing::warn!(job = self.ctx.op.job_id(), "undo failed: {msg}");
                self.ctx.feedback(format!("Warning: {msg}"));
                failed.push(msg);
            }
        }
        if failed.is_empty() {
            err
        } else {
            err.with_note(format!(
                "undoing the work done so far, {}; clean up by hand",
                failed.join("; ")
            ))
        }
    }

    /// The work reached its commit point: nothing is undone any more.
    pub fn done(self) {}
}
