//! The LUXI methods and their arguments, typed: what the master's server
//! reads from a request and what the client writes. The arguments are
//! positional on the wire, as in Ganeti 3.0 (`lib/luxi.py`).

use serde_json::{json, Value};

use crate::error::GanetiError;
use crate::query::{ClassicQueryRequest, ItemType, QueryFieldsRequest, QueryRequest};

/// One LUXI request.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// A job: its opcodes as dicts (the job queue parses them).
    SubmitJob(Vec<Value>),
    SubmitJobToDrainedQueue(Vec<Value>),
    SubmitManyJobs(Vec<Vec<Value>>),
    WaitForJobChange {
        job: u64,
        fields: Vec<String>,
        prev_job_info: Value,
        prev_log_serial: Value,
        /// Seconds, 0 to 3600.
        timeout: f64,
    },
    QueryJobs {
        /// `None`: every job.
        ids: Option<Vec<u64>>,
        fields: Vec<String>,
    },
    Query(QueryRequest),
    QueryFields(QueryFieldsRequest),
    /// `QueryInstances`, `QueryNodes`, `QueryGroups` or `QueryNetworks`.
    Classic(ItemType, ClassicQueryRequest),
    QueryExports {
        nodes: Vec<String>,
        use_locking: bool,
    },
    QueryFilters {
        uuids: Option<Vec<String>>,
        fields: Vec<String>,
    },
    /// `ReplaceFilter(uuid, priority, predicates, action, reason)`: adds a
    /// job filter rule (`uuid` `None`) or replaces one; answers with its
    /// UUID.
    ReplaceFilter {
        uuid: Option<String>,
        priority: i64,
        predicates: Value,
        action: Value,
        reason: Value,
    },
    DeleteFilter(String),
    QueryClusterInfo,
    QueryConfigValues(Vec<String>),
    QueryTags {
        kind: String,
        /// `None` for the cluster.
        name: Option<String>,
    },
    CancelJob {
        job: u64,
        kill: bool,
    },
    ArchiveJob(u64),
    AutoArchiveJobs {
        age: i64,
        timeout: i64,
    },
    ChangeJobPriority {
        job: u64,
        priority: i64,
    },
    SetDrainFlag(bool),
    /// Until when (seconds since the epoch); `None` ends the pause.
    SetWatcherPause(Option<f64>),
}

fn args_n<'a>(method: &str, args: &'a Value, n: usize) -> Result<&'a [Value], GanetiError> {
    match args.as_array() {
        Some(a) if a.len() == n => Ok(a),
        Some(a) => Err(GanetiError::luxi(format!(
            "{method}: expected {n} arguments, got {}",
            a.len()
        ))),
        None => Err(GanetiError::luxi(format!(
            "{method}: arguments must be a list, got {args}"
        ))),
    }
}

/// Job ids travel as numbers or numeric strings.
fn job_id(method: &str, v: &Value) -> Result<u64, GanetiError> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
    .ok_or_else(|| GanetiError::luxi(format!("{method}: invalid job id {v}")))
}

fn ops_list(method: &str, v: &Value) -> Result<Vec<Value>, GanetiError> {
    v.as_array().cloned().ok_or_else(|| {
        GanetiError::luxi(format!(
            "{method}: a job must be a list of opcodes, got {v}"
        ))
    })
}

/// A list of strings; `null` counts as empty.
fn strings(method: &str, v: &Value) -> Result<Vec<String>, GanetiError> {
    let bad = || GanetiError::luxi(format!("{method}: expected a list of strings, got {v}"));
    match v {
        Value::Null => Ok(Vec::new()),
        Value::Array(a) => a
            .iter()
            .map(|x| x.as_str().map(str::to_string).ok_or_else(bad))
            .collect(),
        _ => Err(bad()),
    }
}

fn flag(method: &str, what: &str, v: &Value) -> Result<bool, GanetiError> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::Null => Ok(false),
        other => Err(GanetiError::luxi(format!(
            "{method}: {what} must be a boolean, got {other}"
        ))),
    }
}

impl Request {
    /// The method's name on the wire.
    pub fn method(&self) -> &'static str {
        match self {
            Request::SubmitJob(_) => "SubmitJob",
            Request::SubmitJobToDrainedQueue(_) => "SubmitJobToDrainedQueue",
            Request::SubmitManyJobs(_) => "SubmitManyJobs",
            Request::WaitForJobChange { .. } => "WaitForJobChange",
            Request::QueryJobs { .. } => "QueryJobs",
            Request::Query(_) => "Query",
            Request::QueryFields(_) => "QueryFields",
            Request::Classic(ItemType::Instance, _) => "QueryInstances",
            Request::Classic(ItemType::Node, _) => "QueryNodes",
            Request::Classic(ItemType::Network, _) => "QueryNetworks",
            Request::Classic(_, _) => "QueryGroups",
            Request::QueryExports { .. } => "QueryExports",
            Request::QueryFilters { .. } => "QueryFilters",
            Request::ReplaceFilter { .. } => "ReplaceFilter",
            Request::DeleteFilter(_) => "DeleteFilter",
            Request::QueryClusterInfo => "QueryClusterInfo",
            Request::QueryConfigValues(_) => "QueryConfigValues",
            Request::QueryTags { .. } => "QueryTags",
            Request::CancelJob { .. } => "CancelJob",
            Request::ArchiveJob(_) => "ArchiveJob",
            Request::AutoArchiveJobs { .. } => "AutoArchiveJobs",
            Request::ChangeJobPriority { .. } => "ChangeJobPriority",
            Request::SetDrainFlag(_) => "SetDrainFlag",
            Request::SetWatcherPause(_) => "SetWatcherPause",
        }
    }

    /// Reads a request from its method name and positional arguments; an
    /// unknown method or malformed arguments are a LUXI error that says
    /// what was wrong.
    pub fn parse(method: &str, args: &Value) -> Result<Request, GanetiError> {
        let m = method;
        Ok(match method {
            "SubmitJob" => Request::SubmitJob(ops_list(m, &args_n(m, args, 1)?[0])?),
            "SubmitJobToDrainedQueue" => {
                Request::SubmitJobToDrainedQueue(ops_list(m, &args_n(m, args, 1)?[0])?)
            }
            "SubmitManyJobs" => {
                let a = args_n(m, args, 1)?;
                let jobs = a[0]
                    .as_array()
                    .ok_or_else(|| GanetiError::luxi("SubmitManyJobs: expected a list of jobs"))?
                    .iter()
                    .map(|j| ops_list(m, j))
                    .collect::<Result<Vec<_>, _>>()?;
                Request::SubmitManyJobs(jobs)
            }
            "WaitForJobChange" => {
                let a = args_n(m, args, 5)?;
                Request::WaitForJobChange {
                    job: job_id(m, &a[0])?,
                    fields: strings(m, &a[1])?,
                    prev_job_info: a[2].clone(),
                    prev_log_serial: a[3].clone(),
                    timeout: a[4].as_f64().unwrap_or(0.0).clamp(0.0, 3600.0),
                }
            }
            "QueryJobs" => {
                let a = args_n(m, args, 2)?;
                let ids = match &a[0] {
                    Value::Null => None,
                    Value::Array(v) => Some(
                        v.iter()
                            .map(|x| job_id(m, x))
                            .collect::<Result<Vec<_>, _>>()?,
                    ),
                    other => {
                        return Err(GanetiError::luxi(format!(
                            "QueryJobs: invalid job ids {other}"
                        )))
                    }
                };
                Request::QueryJobs {
                    ids,
                    fields: strings(m, &a[1])?,
                }
            }
            "Query" => Request::Query(QueryRequest::from_args(args)?),
            "QueryFields" => Request::QueryFields(QueryFieldsRequest::from_args(args)?),
            "QueryInstances" | "QueryNodes" | "QueryGroups" | "QueryNetworks" => {
                let what = match method {
                    "QueryInstances" => ItemType::Instance,
                    "QueryNodes" => ItemType::Node,
                    "QueryNetworks" => ItemType::Network,
                    _ => ItemType::Group,
                };
                Request::Classic(what, ClassicQueryRequest::from_args(m, args)?)
            }
            "QueryExports" => {
                let a = args_n(m, args, 2)?;
                Request::QueryExports {
                    nodes: strings(m, &a[0])?,
                    use_locking: flag(m, "use_locking", &a[1])?,
                }
            }
            "QueryFilters" => {
                let a = args_n(m, args, 2)?;
                Request::QueryFilters {
                    uuids: (!a[0].is_null()).then(|| strings(m, &a[0])).transpose()?,
                    fields: strings(m, &a[1])?,
                }
            }
            "ReplaceFilter" => {
                let a = args_n(m, args, 5)?;
                Request::ReplaceFilter {
                    uuid: match &a[0] {
                        Value::Null => None,
                        Value::String(s) => Some(s.clone()),
                        other => {
                            return Err(GanetiError::luxi(format!(
                                "ReplaceFilter: uuid must be a string or null, got {other}"
                            )))
                        }
                    },
                    priority: a[1].as_i64().ok_or_else(|| {
                        GanetiError::luxi("ReplaceFilter: priority must be an integer")
                    })?,
                    predicates: a[2].clone(),
                    action: a[3].clone(),
                    reason: a[4].clone(),
                }
            }
            "DeleteFilter" => Request::DeleteFilter(
                args_n(m, args, 1)?[0]
                    .as_str()
                    .ok_or_else(|| GanetiError::luxi("DeleteFilter: uuid must be a string"))?
                    .to_string(),
            ),
            "QueryClusterInfo" => Request::QueryClusterInfo,
            "QueryConfigValues" => Request::QueryConfigValues(strings(m, &args_n(m, args, 1)?[0])?),
            "QueryTags" => {
                let a = args_n(m, args, 2)?;
                Request::QueryTags {
                    kind: a[0]
                        .as_str()
                        .ok_or_else(|| GanetiError::luxi("QueryTags: kind must be a string"))?
                        .to_string(),
                    name: a[1].as_str().filter(|s| !s.is_empty()).map(str::to_string),
                }
            }
            "CancelJob" => {
                let a = args
                    .as_array()
                    .filter(|a| !a.is_empty() && a.len() <= 2)
                    .ok_or_else(|| {
                        GanetiError::luxi("CancelJob: expected [job_id] or [job_id, kill]")
                    })?;
                Request::CancelJob {
                    job: job_id(m, &a[0])?,
                    kill: a.get(1).map_or(Ok(false), |k| flag(m, "kill", k))?,
                }
            }
            "ArchiveJob" => Request::ArchiveJob(job_id(m, &args_n(m, args, 1)?[0])?),
            "AutoArchiveJobs" => {
                let a = args_n(m, args, 2)?;
                Request::AutoArchiveJobs {
                    age: a[0].as_i64().ok_or_else(|| {
                        GanetiError::luxi("AutoArchiveJobs: age must be an integer")
                    })?,
                    timeout: a[1].as_i64().unwrap_or(60),
                }
            }
            "ChangeJobPriority" => {
                let a = args_n(m, args, 2)?;
                Request::ChangeJobPriority {
                    job: job_id(m, &a[0])?,
                    priority: a[1].as_i64().ok_or_else(|| {
                        GanetiError::luxi("ChangeJobPriority: priority must be an integer")
                    })?,
                }
            }
            "SetDrainFlag" => Request::SetDrainFlag(
                args_n(m, args, 1)?[0]
                    .as_bool()
                    .ok_or_else(|| GanetiError::luxi("SetDrainFlag: flag must be a boolean"))?,
            ),
            "SetWatcherPause" => {
                let until = &args_n(m, args, 1)?[0];
                Request::SetWatcherPause(match until {
                    Value::Null => None,
                    v => Some(v.as_f64().ok_or_else(|| {
                        GanetiError::luxi(format!(
                            "SetWatcherPause: until must be a number or null, got {v}"
                        ))
                    })?),
                })
            }
            other => return Err(GanetiError::luxi(format!("Unknown LUXI method '{other}'"))),
        })
    }

    /// The positional arguments on the wire.
    pub fn to_args(&self) -> Value {
        match self {
            Request::SubmitJob(ops) | Request::SubmitJobToDrainedQueue(ops) => json!([ops]),
            Request::SubmitManyJobs(jobs) => json!([jobs]),
            Request::WaitForJobChange {
                job,
                fields,
                prev_job_info,
                prev_log_serial,
                timeout,
            } => json!([job, fields, prev_job_info, prev_log_serial, timeout]),
            Request::QueryJobs { ids, fields } => json!([ids, fields]),
            Request::Query(q) => q.to_args(),
            Request::QueryFields(q) => q.to_args(),
            Request::Classic(_, q) => q.to_args(),
            Request::QueryExports { nodes, use_locking } => json!([nodes, use_locking]),
            Request::QueryFilters { uuids, fields } => json!([uuids, fields]),
            Request::ReplaceFilter {
                uuid,
                priority,
                predicates,
                action,
                reason,
            } => json!([uuid, priority, predicates, action, reason]),
            Request::DeleteFilter(uuid) => json!([uuid]),
            Request::QueryClusterInfo => json!([]),
            Request::QueryConfigValues(fields) => json!([fields]),
            Request::QueryTags { kind, name } => json!([kind, name.as_deref().unwrap_or("")]),
            Request::CancelJob { job, kill } => json!([job, kill]),
            Request::ArchiveJob(job) => json!([job]),
            Request::AutoArchiveJobs { age, timeout } => json!([age, timeout]),
            Request::ChangeJobPriority { job, priority } => json!([job, priority]),
            Request::SetDrainFlag(flag) => json!([flag]),
            Request::SetWatcherPause(until) => json!([until]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::Filter;

    /// What the client writes, the server reads back as the same request.
    #[test]
    fn every_request_reads_back_from_its_arguments() {
        let reqs = vec![
            Request::SubmitJob(vec![json!({"OP_ID": "OP_TEST_DELAY"})]),
            Request::SubmitJobToDrainedQueue(vec![json!({"OP_ID": "OP_TEST_DELAY"})]),
            Request::SubmitManyJobs(vec![vec![json!({"OP_ID": "OP_TEST_DELAY"})], vec![]]),
            Request::WaitForJobChange {
                job: 3,
                fields: vec!["status".into()],
                prev_job_info: Value::Null,
                prev_log_serial: json!(4),
                timeout: 10.0,
            },
            Request::QueryJobs {
                ids: Some(vec![1, 2]),
                fields: vec!["id".into()],
            },
            Request::QueryJobs {
                ids: None,
                fields: vec![],
            },
            Request::Query(QueryRequest {
                what: ItemType::Node,
                fields: vec!["name".into()],
                filter: Filter::from_json(&Value::Null).unwrap(),
            }),
            Request::QueryFields(QueryFieldsRequest {
                what: ItemType::Instance,
                fields: vec![],
            }),
            Request::Classic(
                ItemType::Group,
                ClassicQueryRequest {
                    names: vec!["default".into()],
                    fields: vec!["name".into()],
                    use_locking: false,
                },
            ),
            Request::QueryExports {
                nodes: vec!["node1".into()],
                use_locking: false,
            },
            Request::QueryFilters {
                uuids: None,
                fields: vec!["uuid".into()],
            },
            Request::ReplaceFilter {
                uuid: None,
                priority: 10,
                predicates: json!([["jobid", [">", "id", "watermark"]]]),
                action: json!("REJECT"),
                reason: json!([["gnt:client", "", 1]]),
            },
            Request::DeleteFilter("0f3a".into()),
            Request::QueryClusterInfo,
            Request::QueryConfigValues(vec!["cluster_name".into()]),
            Request::QueryTags {
                kind: "instance".into(),
                name: Some("i1".into()),
            },
            Request::CancelJob { job: 5, kill: true },
            Request::ArchiveJob(6),
            Request::AutoArchiveJobs {
                age: 3600,
                timeout: 30,
            },
            Request::ChangeJobPriority {
                job: 7,
                priority: -5,
            },
            Request::SetDrainFlag(true),
            Request::SetWatcherPause(Some(1.5e9)),
            Request::SetWatcherPause(None),
        ];
        for r in reqs {
            let back = Request::parse(r.method(), &r.to_args())
                .unwrap_or_else(|e| panic!("{}: {e}", r.method()));
            assert_eq!(back, r);
        }
    }

    #[test]
    fn bad_arguments_name_the_method_and_what_was_wrong() {
        let e = Request::parse("SubmitJob", &json!([])).unwrap_err();
        assert_eq!(e.message(), "SubmitJob: expected 1 arguments, got 0");
        let e = Request::parse("ArchiveJob", &json!(["x"])).unwrap_err();
        assert_eq!(e.message(), "ArchiveJob: invalid job id \"x\"");
        let e = Request::parse("CancelJob", &json!([1, "yes"])).unwrap_err();
        assert_eq!(
            e.message(),
            "CancelJob: kill must be a boolean, got \"yes\""
        );
        let e = Request::parse("NoSuchMethod", &json!([])).unwrap_err();
        assert_eq!(e.message(), "Unknown LUXI method 'NoSuchMethod'");
    }
}
