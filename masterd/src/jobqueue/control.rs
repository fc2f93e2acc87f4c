//! What LUXI asks of the queue besides submitting: job queries and
//! `WaitForJobChange`, cancel, priority changes, archiving, the drain flag.

use super::*;

impl JobQueue {
    /// Looks a job up, in memory or among the archived ones.
    fn lookup<R>(&self, id: JobId, f: impl FnOnce(&Job) -> R) -> Result<Option<R>, QueueError> {
        {
            let st = self.lock();
            if let Some(e) = st.jobs.get(&id) {
                return Ok(Some(f(&e.job)));
            }
        }
        Ok(self.store.read_job(id)?.map(|j| f(&j)))
    }

    fn check_fields(fields: &[String]) -> Result<(), GanetiError> {
        let unknown: Vec<&str> = fields
            .iter()
            .map(String::as_str)
            .filter(|f| !job::JOB_FIELDS.contains(f))
            .collect();
        if unknown.is_empty() {
            Ok(())
        } else {
            Err(GanetiError::prereq(
                format!("Unknown output fields selected: {}", unknown.join(",")),
                ErrorCode::Inval,
            ))
        }
    }

    fn fields_of(job: &Job, fields: &[String]) -> Vec<Value> {
        fields
            .iter()
            .map(|f| job.field(f).unwrap_or(Value::Null))
            .collect()
    }

    /// The legacy `QueryJobs` result: per job the values of `fields`, `None`
    /// for an unknown job. Without ids: all jobs not archived.
    pub fn query_jobs(
        &self,
        ids: Option<&[JobId]>,
        fields: &[String],
    ) -> Result<Vec<Option<Vec<Value>>>, GanetiError> {
        Self::check_fields(fields)?;
        match ids {
            None => {
                let st = self.lock();
                Ok(st
                    .jobs
                    .values()
                    .filter(|e| !e.job.archived)
                    .map(|e| Some(Self::fields_of(&e.job, fields)))
                    .collect())
            }
            Some(ids) => ids
                .iter()
                .map(|&id| {
                    self.lookup(id, |j| Self::fields_of(j, fields))
                        .map_err(GanetiError::from)
                })
                .collect(),
        }
    }

    /// The ids of the jobs, optionally with the archived ones, ascending.
    pub fn job_ids(&self, include_archived: bool) -> Vec<JobId> {
        let mut ids: Vec<JobId> = {
            let st = self.lock();
            st.jobs
                .values()
                .filter(|e| !e.job.archived)
                .map(|e| e.job.id)
                .collect()
        };
        if include_archived {
            match self.store.archived_ids() {
                Ok(a) => ids.extend(a),
                Err(e) => tracing::error!(error = %e, "listing archived jobs failed"),
            }
            ids.sort_unstable();
            ids.dedup();
        }
        ids
    }

    /// One field of one job (archived jobs included), for `Query("job")`.
    pub fn job_field(&self, id: JobId, field: &str) -> Option<Value> {
        match self.lookup(id, |j| j.field(field)) {
            Ok(v) => v.flatten(),
            Err(e) => {
                tracing::error!(job = id, error = %e, "reading job failed");
                None
            }
        }
    }

    /// Ganeti's `WaitForJobChange`: `[job_info, log_entries]` as soon as the
    /// job's `fields` differ from `prev_job_info`, it has log entries newer
    /// than `prev_log_serial`, or it is finished; `"nochange"` after
    /// `timeout` (at most [`WFJC_MAX_TIMEOUT`]). `JobLost` for a job not in
    /// the queue (unknown or archived).
    pub async fn wait_for_job_change(
        &self,
        id: JobId,
        fields: &[String],
        prev_job_info: Value,
        prev_log_serial: Value,
        timeout: Duration,
    ) -> Result<Value, GanetiError> {
        Self::check_fields(fields)?;
        let newer_than = prev_log_serial.as_i64().and_then(|s| u64::try_from(s).ok());
        let deadline = Instant::now() + timeout.min(WFJC_MAX_TIMEOUT);
        loop {
            let (info, logs, finalized, last_write, mut rx) = {
                let st = self.lock();
                let Some(e) = st.jobs.get(&id).filter(|e| !e.job.archived) else {
                    return Err(GanetiError::job_lost(not_found(id)));
                };
                (
                    Value::Array(Self::fields_of(&e.job, fields)),
                    e.job.log_entries(newer_than),
                    e.job.is_finalized(),
                    e.last_write,
                    e.changed.subscribe(),
                )
            };
            if finalized {
                // Report a final status only once it is committed.
                self.store.wait_durable(last_write).await?;
                return Ok(json!([info, logs]));
            }
            if info != prev_job_info || !logs.is_empty() {
                return Ok(json!([info, logs]));
            }
            match tokio::time::timeout_at(deadline.into(), rx.changed()).await {
                Err(_) => return Ok(json!("nochange")),
                Ok(_) => continue,
            }
        }
    }

    /// Cancels a job that has not started running: a queued job is canceled
    /// at once; a job waiting for locks is marked canceling and its opcode
    /// sees [`OpContext::is_canceled`]. With `kill`, the running (or
    /// waiting) opcode's task is also stopped: a killed running opcode fails
    /// with "Job N was killed by request".
    pub async fn cancel(&self, id: JobId, kill: bool) -> Result<(bool, String), GanetiError> {
        let now = Timestamp::now();
        let outcome = {
            let mut st = self.lock();
            let Some(entry) = st.jobs.get_mut(&id).filter(|e| !e.job.archived) else {
                return Ok((false, not_found(id)));
            };
            let prio = entry.job.priority();
            match entry.job.status() {
                JobStatus::Queued => {
                    let seq = self.cancel_queued(&mut st, id, prio, now);
                    Some((seq, (true, format!("Job {id} canceled"))))
                }
                JobStatus::Waiting => {
                    entry
                        .job
                        .mark_unfinished(OpStatus::Canceling, Value::Null, now);
                    entry.cancel.store(true, Ordering::Release);
                    entry.last_write = self.store.write_job(&entry.job);
                    entry.changed.send_replace(());
                    if kill {
                        if let Some(abort) = &entry.abort {
                            abort.abort();
                        }
                    }
                    Some((
                        entry.last_write,
                        (true, format!("Job {id} will be canceled")),
                    ))
                }
                JobStatus::Running if kill => match &entry.abort {
                    Some(abort) => {
                        // Like Ganeti's SIGKILL: the opcode stops at its next
                        // await point and fails; its locks are released.
                        abort.abort();
                        tracing::warn!(job = id, "killing running job");
                        return Ok((true, format!("Job {id} will be killed")));
                    }
                    None => None,
                },
                _ => None,
            }
        };
        tracing::debug!(job = id, kill, "cancel requested");
        match outcome {
            Some((seq, answer)) => {
                self.store.wait_durable(seq).await?;
                self.schedule.notify_one();
                Ok(answer)
            }
            None => Ok((false, format!("Job {id} is no longer waiting in the queue"))),
        }
    }

    /// Cancels job `id`, which is queued (not started) with priority
    /// `prio`; returns the sequence number of the write.
    pub(super) fn cancel_queued(
        &self,
        st: &mut State,
        id: JobId,
        prio: i32,
        now: Timestamp,
    ) -> u64 {
        let Some(entry) = st.jobs.get_mut(&id) else {
            return 0;
        };
        entry
            .job
            .mark_unfinished(OpStatus::Canceled, json!(job::CANCELED_RESULT), now);
        entry.job.end = Some(now);
        entry.last_write = self.store.write_job(&entry.job);
        entry.changed.send_replace(());
        let seq = entry.last_write;
        if st.queued.remove(&(prio, id)) {
            // Not started: the scheduler no longer knows it.
            st.unfinished = st.unfinished.saturating_sub(1);
        }
        seq
    }

    /// Changes the priority of a job's pending opcodes.
    pub async fn change_priority(
        &self,
        id: JobId,
        priority: i32,
    ) -> Result<(bool, String), GanetiError> {
        if !(PRIORITY_HIGHEST..=PRIORITY_LOWEST).contains(&priority) {
            return Err(GanetiError::prereq(
                format!(
                    "Priority {priority} is invalid, expected an integer from {PRIORITY_HIGHEST} to {PRIORITY_LOWEST}"
                ),
                ErrorCode::Inval,
            ));
        }
        let seq = {
            let mut st = self.lock();
            let Some(entry) = st.jobs.get_mut(&id).filter(|e| !e.job.archived) else {
                return Ok((false, not_found(id)));
            };
            let status = entry.job.status();
            if status.is_finalized() {
                return Ok((false, format!("Job {id} is finished")));
            }
            if status == JobStatus::Canceling {
                return Ok((false, format!("Job {id} is cancelling")));
            }
            let old_prio = entry.job.priority();
            let mut changed = false;
            for op in entry
                .job
                .ops
                .iter_mut()
                .filter(|o| matches!(o.status, OpStatus::Queued | OpStatus::Waiting))
            {
                op.priority = priority;
                changed = true;
            }
            if !changed {
                return Ok((false, format!("Job {id} had no pending opcodes")));
            }
            let new_prio = entry.job.priority();
            entry.last_write = self.store.write_job(&entry.job);
            entry.changed.send_replace(());
            let seq = entry.last_write;
            if st.queued.remove(&(old_prio, id)) {
                st.queued.insert((new_prio, id));
            }
            seq
        };
        self.store.wait_durable(seq).await?;
        self.schedule.notify_one();
        Ok((
            true,
            format!("Priorities of pending opcodes for job {id} have been changed to {priority}"),
        ))
    }

    /// Archives a finished job; `false` for an unknown, archived or
    /// unfinished job.
    pub async fn archive(&self, id: JobId) -> Result<bool, GanetiError> {
        let seq = {
            let mut st = self.lock();
            let Some(entry) = st.jobs.get_mut(&id) else {
                return Ok(false);
            };
            if entry.job.archived || !entry.job.is_finalized() {
                return Ok(false);
            }
            entry.job.archived = true;
            entry.last_write = self.store.write_job(&entry.job);
            entry.changed.send_replace(());
            entry.last_write
        };
        self.store.wait_durable(seq).await?;
        self.lock().jobs.remove(&id);
        tracing::debug!(job = id, "job archived");
        Ok(true)
    }

    /// Archives the finished jobs that ended at least `age_secs` ago (all
    /// finished jobs when negative), for at most about `timeout_secs`.
    /// Returns (jobs archived, jobs left unexamined).
    pub async fn auto_archive(
        &self,
        age_secs: i64,
        timeout_secs: i64,
    ) -> Result<(u64, u64), GanetiError> {
        let started = Instant::now();
        let budget = Duration::from_secs(timeout_secs.max(0) as u64);
        let now = Timestamp::now();
        let mut archived = Vec::new();
        let mut remaining = 0u64;
        let mut seq = 0;
        {
            let mut st = self.lock();
            let total = st.jobs.len();
            for (n, entry) in st.jobs.values_mut().enumerate() {
                if n % 256 == 0 && started.elapsed() > budget {
                    remaining = (total - n) as u64;
                    break;
                }
                let job = &mut entry.job;
                if job.archived || !job.is_finalized() {
                    continue;
                }
                let ended = job.end.or(job.start).unwrap_or(job.received);
                if age_secs >= 0 && ended.0 > now.0 - age_secs {
                    continue;
                }
                job.archived = true;
                seq = self.store.write_job(job);
                entry.last_write = seq;
                entry.changed.send_replace(());
                archived.push(job.id);
            }
        }
        if seq > 0 {
            self.store.wait_durable(seq).await?;
        }
        {
            let mut st = self.lock();
            for id in &archived {
                st.jobs.remove(id);
            }
        }
        tracing::info!(archived = archived.len(), remaining, "auto-archived jobs");
        Ok((archived.len() as u64, remaining))
    }

    /// Sets the drain flag (persisted): a drained queue refuses new jobs.
    pub fn set_drain_flag(&self, drain: bool) -> Result<(), QueueError> {
        let seq = {
            let mut st = self.lock();
            st.drained = drain;
            self.store
                .write_meta(store::META_DRAINED, drain.then(|| "1".to_string()))
        };
        tracing::info!(drain, "job queue drain flag set");
        self.store.wait_durable_blocking(seq)
    }

    /// The job filter rules, in evaluation order.
    pub fn filter_rules(&self) -> Vec<filters::FilterRule> {
        self.lock().filters.iter().cloned().collect()
    }

    /// `ReplaceFilter`: adds a rule (`uuid` `None`: a new UUID) or replaces
    /// the rule with that UUID, with the highest job id so far as its
    /// watermark; answers with its UUID once it is stored. The scheduler
    /// then applies it to the queued jobs.
    pub async fn replace_filter(
        &self,
        uuid: Option<String>,
        priority: i64,
        predicates: &Value,
        action: &Value,
        reason: &Value,
    ) -> Result<String, GanetiError> {
        let uuid = match uuid {
            None => objects::ids::new_uuid(),
            Some(u) if is_uuid(&u) => u,
            Some(u) => {
                return Err(GanetiError::new(
                    "GenericError",
                    vec![json!(format!("Unable to parse UUID '{u}'"))],
                ))
            }
        };
        let mut trail = match reason {
            Value::Array(r) => r.clone(),
            Value::Null => Vec::new(),
            other => {
                return Err(GanetiError::prereq(
                    format!("A reason trail must be a list, got {other}"),
                    ErrorCode::Inval,
                ))
            }
        };
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        trail.push(json!([
            "luxid",
            "",
            u64::try_from(nanos).unwrap_or(u64::MAX)
        ]));
        let seq = {
            let mut st = self.lock();
            let watermark = st.next_id.saturating_sub(1);
            let rule = filters::FilterRule::new(
                uuid.clone(),
                watermark,
                priority,
                predicates,
                action,
                Value::Array(trail),
            )?;
            st.filters.replace(rule);
            self.store
                .write_meta(store::META_FILTERS, Some(st.filters.to_stored()))
        };
        self.store.wait_durable(seq).await?;
        tracing::info!(filter = %uuid, "job filter rule set");
        self.schedule.notify_one();
        Ok(uuid)
    }

    /// `DeleteFilter`: removes the rule with that UUID.
    pub async fn delete_filter(&self, uuid: &str) -> Result<(), GanetiError> {
        let seq = {
            let mut st = self.lock();
            if !st.filters.remove(uuid) {
                return Err(GanetiError::new(
                    "GenericError",
                    vec![json!(format!(
                        "Filter rule with UUID {uuid} does not exist"
                    ))],
                ));
            }
            self.store
                .write_meta(store::META_FILTERS, Some(st.filters.to_stored()))
        };
        self.store.wait_durable(seq).await?;
        tracing::info!(filter = %uuid, "job filter rule removed");
        self.schedule.notify_one();
        Ok(())
    }

    pub fn drained(&self) -> bool {
        self.lock().drained
    }

    /// The number of jobs running now.
    pub fn running_jobs(&self) -> usize {
        self.lock().running
    }
}

/// Whether `s` is a UUID in Ganeti's form (lower-case hex, 8-4-4-4-12).
fn is_uuid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 5
        && parts
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(p, n)| p.len() == n && p.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
}
