//! Submitting jobs: each opcode parsed once, dependencies resolved, the
//! job committed before its id is returned.

use super::*;

/// Appends the queue's entry to an opcode's reason trail, as Ganeti does:
/// `["gnt:opcode:<op id in lower case>", "job=<id>;index=<idx>", <ns>]`.
fn append_reason(
    op: &mut serde_json::Map<String, Value>,
    id: JobId,
    idx: usize,
    received: Timestamp,
) {
    let op_id = op.get("OP_ID").and_then(Value::as_str).unwrap_or_default();
    let src = format!(
        "gnt:opcode:{}",
        op_id.strip_prefix("OP_").unwrap_or(op_id).to_lowercase()
    );
    let ns = i128::from(received.0) * 1_000_000_000 + i128::from(received.1) * 1000;
    let entry = json!([src, format!("job={id};index={idx}"), ns as i64]);
    match op.get_mut("reason") {
        Some(Value::Array(trail)) => trail.push(entry),
        Some(Value::Null) | None => {
            op.insert("reason".into(), json!([entry]));
        }
        // A malformed trail is left for the opcode's own validation.
        Some(_) => {}
    }
}

/// What the queue keeps and shows of a private or secret value.
pub const REDACTED: &str = "<redacted>";

/// Replaces the values of an opcode's private and secret OS parameters by
/// `<redacted>` in what the queue stores and shows (job queries, the
/// database); the parsed opcode, which runs, keeps them. As in Ganeti, a
/// secret does not survive a restart of the master: a job queued then
/// runs with `<redacted>` values.
fn redact_secrets(op: &mut serde_json::Map<String, Value>) {
    for field in ["osparams_private", "osparams_secret"] {
        if let Some(Value::Object(params)) = op.get_mut(field) {
            for v in params.values_mut() {
                *v = json!(REDACTED);
            }
        }
    }
}

impl JobQueue {
    /// Submits one job; it is durable when its id is returned.
    pub async fn submit(&self, ops: Vec<Value>) -> Result<JobId, GanetiError> {
        self.submit_many(vec![ops])
            .await
            .pop()
            .unwrap_or_else(|| Err(GanetiError::programmer("no job submitted")))
    }

    /// Submits several jobs; relative (negative) job ids in `depends` count
    /// back from each job's own id, so `-1` is the job just before in `jobs`.
    pub async fn submit_many(&self, jobs: Vec<Vec<Value>>) -> Vec<Result<JobId, GanetiError>> {
        self.submit_jobs(jobs, false, false).await
    }

    /// Submits several jobs only if every one of them is valid (LUXI's
    /// `SubmitManyJobs`, as Ganeti's luxid, which refuses the whole call
    /// when one opcode does not parse): the first error otherwise, and no
    /// job is submitted.
    pub async fn submit_all_or_none(
        &self,
        jobs: Vec<Vec<Value>>,
    ) -> Result<Vec<JobId>, GanetiError> {
        self.submit_jobs(jobs, false, true)
            .await
            .into_iter()
            .collect()
    }

    /// Submits one job even when the queue is drained (LUXI's
    /// `SubmitJobToDrainedQueue`, for jobs that must run during a drain).
    pub async fn submit_to_drained_queue(&self, ops: Vec<Value>) -> Result<JobId, GanetiError> {
        self.submit_jobs(vec![ops], true, false)
            .await
            .pop()
            .unwrap_or_else(|| Err(GanetiError::programmer("no job submitted")))
    }

    async fn submit_jobs(
        &self,
        jobs: Vec<Vec<Value>>,
        ignore_drain: bool,
        all_or_none: bool,
    ) -> Vec<Result<JobId, GanetiError>> {
        let n = jobs.len();
        let first_id = {
            let mut st = self.lock();
            if st.drained && !ignore_drain {
                return (0..n).map(|_| Err(GanetiError::queue_drained())).collect();
            }
            if st.unfinished + n > self.opts.max_queued_jobs {
                return (0..n).map(|_| Err(GanetiError::queue_full())).collect();
            }
            let first = st.next_id;
            st.next_id += n as JobId;
            st.unfinished += n;
            first
        };
        let received = Timestamp::now();
        let mut results = Vec::with_capacity(n);
        let mut built = Vec::with_capacity(n);
        let mut parsed = Vec::with_capacity(n);
        for (i, ops) in jobs.into_iter().enumerate() {
            let id = first_id + i as JobId;
            match self.build_job(id, ops, received) {
                Ok((job, ops)) => {
                    results.push(Ok(id));
                    built.push(job);
                    parsed.push(ops);
                }
                Err(e) => results.push(Err(e)),
            }
        }
        let refused = n - built.len();
        if all_or_none && refused > 0 {
            let first = results
                .iter()
                .find_map(|r| r.as_ref().err().cloned())
                .unwrap_or_else(|| GanetiError::programmer("a job was refused"));
            let mut st = self.lock();
            st.unfinished = st.unfinished.saturating_sub(n);
            return (0..n).map(|_| Err(first.clone())).collect();
        }
        // Jobs that can start at once are written as started: one commit
        // covers their submission and the start of their first opcode.
        let prestarted = self.prestart(&mut built, received);
        let mut seq = 0;
        for job in &built {
            seq = self.store.write_job(job);
        }
        let durable = if seq > 0 {
            self.store.wait_durable(seq).await
        } else {
            Ok(())
        };
        let mut st = self.lock();
        st.unfinished = st.unfinished.saturating_sub(refused);
        if let Err(e) = durable {
            tracing::error!(error = %e, "job submission could not be committed");
            st.unfinished = st.unfinished.saturating_sub(built.len());
            st.running = st.running.saturating_sub(prestarted.len());
            let err = GanetiError::from(e);
            return results
                .into_iter()
                .map(|r| r.and_then(|_| Err(err.clone())))
                .collect();
        }
        for (job, parsed) in built.into_iter().zip(parsed) {
            tracing::debug!(job = job.id, ops = job.ops.len(), "job submitted");
            if !prestarted.contains(&job.id) {
                st.queued.insert((job.priority(), job.id));
            }
            let mut entry = Entry::new(job, parsed);
            entry.last_write = seq;
            st.jobs.insert(entry.job.id, entry);
        }
        drop(st);
        for &id in &prestarted {
            if let Some(q) = self.me() {
                tokio::spawn(async move { q.run_job(id).await });
            }
        }
        self.schedule.notify_one();
        results
    }

    /// Marks as started the jobs (of a submission) that the scheduler would
    /// start at once: no dependencies, a free slot, and no eligible queued
    /// job before them. They count as running; returns their ids.
    fn prestart(&self, jobs: &mut [Job], now: Timestamp) -> Vec<JobId> {
        let mut started = Vec::new();
        if !self.started.load(Ordering::Acquire) {
            return started;
        }
        let mut st = self.lock();
        for job in jobs.iter_mut() {
            if st.running >= self.opts.max_running_jobs {
                break;
            }
            // Jobs filter rules or rate limits may hold back go through
            // the scheduler.
            if job.dependencies().next().is_some()
                || !st.filters.is_empty()
                || !super::filters::rate_limit_buckets(job).is_empty()
            {
                break;
            }
            let key = (job.priority(), job.id);
            let committed = self.store.committed();
            let ahead = st.queued.range(..key).any(|&(_, qid)| {
                st.jobs.get(&qid).is_some_and(|e| {
                    !e.job
                        .dependencies()
                        .any(|d| d != qid && st.jobs.get(&d).is_some_and(|dj| dj.blocks(committed)))
                })
            });
            if ahead {
                break;
            }
            mark_started(job, 0, now);
            st.running += 1;
            started.push(job.id);
        }
        started
    }

    fn build_job(
        &self,
        id: JobId,
        ops: Vec<Value>,
        received: Timestamp,
    ) -> Result<(Job, Vec<Option<AnyOp>>), GanetiError> {
        if ops.is_empty() {
            return Err(GanetiError::new(
                "GenericError",
                vec![json!("A job needs at least one opcode")],
            ));
        }
        let mut qops = Vec::with_capacity(ops.len());
        let mut parsed_ops = Vec::with_capacity(ops.len());
        for (idx, mut op) in ops.into_iter().enumerate() {
            let Some(obj) = op.as_object_mut() else {
                return Err(GanetiError::prereq(
                    format!("Opcode {idx} of the job is not a dict: {op}"),
                    ErrorCode::Inval,
                ));
            };
            let Parsed {
                op: parsed,
                summary,
                common,
            } = self.executor.parse(&Value::Object(obj.clone()))?;
            let deps = job::resolve_depends(common.depends.as_deref().unwrap_or_default(), id)
                .map_err(|m| GanetiError::prereq(m, ErrorCode::Inval))?;
            if common.depends.is_some() {
                obj.insert("depends".into(), job::depends_value(&deps));
            }
            append_reason(obj, id, idx, received);
            redact_secrets(obj);
            qops.push(QueuedOp::new(op, summary, common.priority, deps));
            parsed_ops.push(Some(parsed));
        }
        let job = Job {
            id,
            ops: qops,
            received,
            start: None,
            end: None,
            archived: false,
        };
        Ok((job, parsed_ops))
    }

    /// Parses again the opcodes of a queued job read back from the store.
    pub(super) fn reparse(
        executor: &dyn DynExecutor,
        job: &Job,
    ) -> Result<Vec<Option<AnyOp>>, GanetiError> {
        job.ops
            .iter()
            .map(|op| {
                if op.status.is_finalized() {
                    Ok(None)
                } else {
                    executor.parse(&op.input).map(|p| Some(p.op))
                }
            })
            .collect()
    }
}
