//! Job filter rules (Ganeti 2.13's design, `doc/design-optables.rst`): what
//! the scheduler does with a queued job, decided by the first rule (in
//! order of priority, watermark, UUID) whose predicates all match the job
//! and whose action is not `CONTINUE`.
//!
//! - `ACCEPT`: the job runs as usual;
//! - `PAUSE`: the job stays queued;
//! - `REJECT`: the job is canceled (also when it was queued before the rule);
//! - `RATE_LIMIT n`: the job starts only while fewer than `n` running jobs
//!   have this rule as the one that applies to them.
//!
//! Besides the rules, Ganeti's ad-hoc rate limiting: a reason of the form
//! `rate-limit:n:label` puts a job in the bucket `n:label`, of which at
//! most `n` jobs run at once.
//!
//! Predicates: `["jobid", filter]` (field `id`; the string `watermark`
//! stands for the rule's watermark), `["opcode", filter]` (any opcode of
//! the job; every opcode field, dotted paths into nested objects) and
//! `["reason", filter]` (any reason trail entry of any opcode; fields
//! `source`, `reason`, `timestamp`). Filters are in the query language.

use std::cmp::Ordering;

use luxi::query::{Filter, FilterValue};
use luxi::GanetiError;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::job::Job;
use super::JobId;

/// What a rule does with the jobs it applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Accept,
    Pause,
    Reject,
    Continue,
    RateLimit(u64),
}

impl Action {
    /// Reads Ganeti's JSON form: `"ACCEPT"`, ..., `["RATE_LIMIT", n]`.
    pub fn from_json(v: &Value) -> Result<Action, String> {
        match v {
            Value::String(s) => match s.as_str() {
                "ACCEPT" => Ok(Action::Accept),
                "PAUSE" => Ok(Action::Pause),
                "REJECT" => Ok(Action::Reject),
                "CONTINUE" => Ok(Action::Continue),
                _ => Err(format!("malformed FilterAction JSON: {v}")),
            },
            Value::Array(items) if items.first() == Some(&json!("RATE_LIMIT")) => {
                match &items[1..] {
                    [n] => match n.as_u64() {
                        Some(n) if n > 0 => Ok(Action::RateLimit(n)),
                        _ => Err("RATE_LIMIT argument must be a positive integer".into()),
                    },
                    _ => Err("RATE_LIMIT argument must be a positive integer".into()),
                }
            }
            _ => Err(format!("malformed FilterAction JSON: {v}")),
        }
    }

    pub fn to_json(self) -> Value {
        match self {
            Action::Accept => json!("ACCEPT"),
            Action::Pause => json!("PAUSE"),
            Action::Reject => json!("REJECT"),
            Action::Continue => json!("CONTINUE"),
            Action::RateLimit(n) => json!(["RATE_LIMIT", n]),
        }
    }
}

/// What a predicate looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PredicateKind {
    JobId,
    OpCode,
    Reason,
}

impl PredicateKind {
    fn name(self) -> &'static str {
        match self {
            PredicateKind::JobId => "jobid",
            PredicateKind::OpCode => "opcode",
            PredicateKind::Reason => "reason",
        }
    }
}

/// One predicate: a kind and a query-language filter.
#[derive(Debug, Clone, PartialEq)]
pub struct Predicate {
    pub kind: PredicateKind,
    pub filter: Filter,
}

impl Predicate {
    pub fn from_json(v: &Value) -> Result<Predicate, String> {
        let items = match v {
            Value::Array(items) => items,
            _ => return Err(BAD_PREDICATE.into()),
        };
        let Some((Value::String(name), params)) = items.split_first() else {
            return Err(BAD_PREDICATE.into());
        };
        let kind = match name.as_str() {
            "jobid" => PredicateKind::JobId,
            "opcode" => PredicateKind::OpCode,
            "reason" => PredicateKind::Reason,
            _ => {
                return Err(format!(
                    "malformed FilterPredicate: unknown predicate '{name}' \
                     (known: jobid, opcode, reason)"
                ))
            }
        };
        let [expr] = params else {
            return Err(format!(
                "malformed FilterPredicate: bad parameter list for '{name}' predicate: {}",
                Value::Array(params.to_vec())
            ));
        };
        let filter = Filter::from_json(expr)
            .map_err(|e| format!("malformed FilterPredicate '{name}': {e}"))?;
        Ok(Predicate { kind, filter })
    }

    pub fn to_json(&self) -> Value {
        json!([self.kind.name(), self.filter.to_json()])
    }

    /// Whether the predicate holds for `job`, with `watermark` standing in
    /// for the string `watermark` of a `jobid` filter.
    fn matches(&self, job: &Job, watermark: JobId) -> bool {
        match self.kind {
            PredicateKind::JobId => eval_leaves(&self.filter, &mut |leaf| {
                let Filter::Compare(c, field, value) = leaf else {
                    return None;
                };
                let ord = match (field.as_str(), value) {
                    ("id", FilterValue::Number(n)) => i128::from(job.id).cmp(&i128::from(*n)),
                    ("id", FilterValue::String(s)) if s == "watermark" => job.id.cmp(&watermark),
                    _ => return None,
                };
                Some(c.holds(ord))
            }),
            PredicateKind::OpCode => job
                .ops
                .iter()
                .any(|op| eval_leaves(&self.filter, &mut |leaf| json_leaf(leaf, &op.input))),
            PredicateKind::Reason => job.ops.iter().any(|op| {
                reasons(&op.input).any(|(source, reason, ts)| {
                    eval_leaves(&self.filter, &mut |leaf| {
                        let text = |field: &str| match field {
                            "source" => Some(source),
                            "reason" => Some(reason),
                            _ => None,
                        };
                        match leaf {
                            Filter::Compare(c, field, FilterValue::String(s)) => {
                                Some(c.holds(text(field)?.cmp(s.as_str())))
                            }
                            Filter::Compare(c, field, FilterValue::Number(n))
                                if field == "timestamp" =>
                            {
                                Some(c.holds(ts.cmp(&i128::from(*n))))
                            }
                            // Beyond Ganeti 3.0 (which judges only
                            // comparisons here), as its design's example
                            // of a maintenance reason expects.
                            Filter::Regex(field, re) => Some(re.is_match(text(field)?)),
                            _ => None,
                        }
                    })
                })
            }),
        }
    }
}

const BAD_PREDICATE: &str = "malformed FilterPredicate: must be a list with the first entry \
                             being a string describing the predicate type";

/// The reason trail entries `(source, reason, timestamp)` of an opcode.
fn reasons(input: &Value) -> impl Iterator<Item = (&str, &str, i128)> {
    input
        .get("reason")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|e| {
            let e = e.as_array()?;
            let source = e.first()?.as_str()?;
            let reason = e.get(1)?.as_str()?;
            let ts = e
                .get(2)
                .and_then(|t| {
                    t.as_i64()
                        .map(i128::from)
                        .or_else(|| t.as_f64().map(|f| f as i128))
                })
                .unwrap_or(0);
            Some((source, reason, ts))
        })
}

/// Evaluates a filter whose leaves are judged by `leaf` (`None`: the leaf
/// cannot be judged). A leaf that cannot be judged makes the whole filter
/// false (Ganeti's `evaluateFilterComparator`).
fn eval_leaves(filter: &Filter, leaf: &mut dyn FnMut(&Filter) -> Option<bool>) -> bool {
    fn go(f: &Filter, leaf: &mut dyn FnMut(&Filter) -> Option<bool>) -> Option<bool> {
        Some(match f {
            Filter::Empty => true,
            Filter::And(fs) => {
                for x in fs {
                    if !go(x, leaf)? {
                        return Some(false);
                    }
                }
                true
            }
            Filter::Or(fs) => {
                for x in fs {
                    if go(x, leaf)? {
                        return Some(true);
                    }
                }
                false
            }
            Filter::Not(x) => !go(x, leaf)?,
            other => leaf(other)?,
        })
    }
    go(filter, leaf).unwrap_or(false)
}

/// The rank of a JSON value's type in Ganeti's (Haskell's) order of JSON
/// values: null, booleans, numbers, strings, arrays, objects.
fn rank(v: &Value) -> u8 {
    match v {
        Value::Null => 0,
        Value::Bool(_) => 1,
        Value::Number(_) => 2,
        Value::String(_) => 3,
        Value::Array(_) => 4,
        Value::Object(_) => 5,
    }
}

fn cmp_json(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(x), Some(y)) => x.cmp(&y),
            _ => {
                let (x, y) = (x.as_f64().unwrap_or(0.0), y.as_f64().unwrap_or(0.0));
                x.partial_cmp(&y).unwrap_or(Ordering::Equal)
            }
        },
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Array(x), Value::Array(y)) => {
            for (p, q) in x.iter().zip(y) {
                match cmp_json(p, q) {
                    Ordering::Equal => {}
                    o => return o,
                }
            }
            x.len().cmp(&y.len())
        }
        _ => rank(a).cmp(&rank(b)),
    }
}

/// `key.sub.leaf` in a JSON object.
fn dotted<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.')
        .try_fold(v, |cur, key| cur.as_object()?.get(key))
}

/// Judges one leaf of a filter against an opcode's JSON (Ganeti's
/// `evaluateFilterJSON`): `None` when the field is missing or its value
/// does not suit the operator, which makes the opcode not match.
fn json_leaf(leaf: &Filter, op: &Value) -> Option<bool> {
    Some(match leaf {
        Filter::True(field) => dotted(op, field)?.as_bool()?,
        Filter::Compare(c, field, value) => c.holds(cmp_json(dotted(op, field)?, &value.to_json())),
        Filter::Regex(field, re) => re.is_match(dotted(op, field)?.as_str()?),
        Filter::Contains(field, value) => {
            let list = dotted(op, field)?.as_array()?;
            let want = value.to_json();
            // Ganeti reads the list as a list of the value's type.
            let same_type = |v: &Value| rank(v) == rank(&want);
            if !list.iter().all(same_type) {
                return None;
            }
            list.iter().any(|v| cmp_json(v, &want) == Ordering::Equal)
        }
        // `eval_leaves` handles the connectives itself.
        Filter::Empty | Filter::And(_) | Filter::Or(_) | Filter::Not(_) => return None,
    })
}

/// A job filter rule.
#[derive(Debug, Clone, PartialEq)]
pub struct FilterRule {
    pub uuid: String,
    /// The highest job id when the rule was added.
    pub watermark: JobId,
    pub priority: u64,
    pub predicates: Vec<Predicate>,
    pub action: Action,
    pub reason_trail: Value,
}

/// A rule as stored (and as `QueryFilters` shows it).
#[derive(Serialize, Deserialize)]
struct Stored {
    uuid: String,
    watermark: JobId,
    priority: u64,
    predicates: Value,
    action: Value,
    reason_trail: Value,
}

impl FilterRule {
    /// Builds a rule from the arguments of `ReplaceFilter`, refusing a bad
    /// priority, predicate, action or reason trail with what was wrong.
    pub fn new(
        uuid: String,
        watermark: JobId,
        priority: i64,
        predicates: &Value,
        action: &Value,
        reason_trail: Value,
    ) -> Result<FilterRule, GanetiError> {
        let bad =
            |m: String| GanetiError::new("OpPrereqError", vec![json!(m), json!("wrong_input")]);
        let priority = u64::try_from(priority).map_err(|_| {
            bad(format!(
                "Filter priority must be non-negative, got {priority}"
            ))
        })?;
        let predicates = match predicates {
            Value::Array(ps) => ps
                .iter()
                .map(Predicate::from_json)
                .collect::<Result<Vec<_>, _>>()
                .map_err(bad)?,
            other => {
                return Err(bad(format!(
                    "Filter predicates must be a list, got {other}"
                )))
            }
        };
        let action = Action::from_json(action).map_err(bad)?;
        check_reason_trail(&reason_trail).map_err(bad)?;
        Ok(FilterRule {
            uuid,
            watermark,
            priority,
            predicates,
            action,
            reason_trail,
        })
    }

    /// Whether every predicate matches `job`.
    pub fn matches(&self, job: &Job) -> bool {
        self.predicates
            .iter()
            .all(|p| p.matches(job, self.watermark))
    }

    /// The order rules are evaluated in: priority, watermark, UUID.
    fn order_key(&self) -> (u64, JobId, &str) {
        (self.priority, self.watermark, &self.uuid)
    }

    pub fn predicates_json(&self) -> Value {
        Value::Array(self.predicates.iter().map(Predicate::to_json).collect())
    }

    fn to_stored(&self) -> Stored {
        Stored {
            uuid: self.uuid.clone(),
            watermark: self.watermark,
            priority: self.priority,
            predicates: self.predicates_json(),
            action: self.action.to_json(),
            reason_trail: self.reason_trail.clone(),
        }
    }
}

fn check_reason_trail(v: &Value) -> Result<(), String> {
    let ok = v.as_array().is_some_and(|entries| {
        entries.iter().all(|e| {
            e.as_array().is_some_and(|e| {
                e.len() == 3 && e[0].is_string() && e[1].is_string() && e[2].is_number()
            })
        })
    });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "A reason trail must be a list of [source, reason, timestamp] entries, got {v}"
        ))
    }
}

/// The rules of a queue, kept in evaluation order.
#[derive(Debug, Clone, Default)]
pub struct FilterRules {
    rules: Vec<FilterRule>,
}

impl FilterRules {
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The rules in evaluation order.
    pub fn iter(&self) -> impl Iterator<Item = &FilterRule> {
        self.rules.iter()
    }

    pub fn get(&self, uuid: &str) -> Option<&FilterRule> {
        self.rules.iter().find(|r| r.uuid == uuid)
    }

    /// Adds `rule`, or replaces the rule of the same UUID.
    pub fn replace(&mut self, rule: FilterRule) {
        self.rules.retain(|r| r.uuid != rule.uuid);
        self.rules.push(rule);
        self.rules.sort_by(|a, b| a.order_key().cmp(&b.order_key()));
    }

    /// Removes a rule; whether it existed.
    pub fn remove(&mut self, uuid: &str) -> bool {
        let before = self.rules.len();
        self.rules.retain(|r| r.uuid != uuid);
        self.rules.len() != before
    }

    /// The rule that applies to `job`: the first matching one that is not
    /// `CONTINUE`.
    pub fn applying(&self, job: &Job) -> Option<&FilterRule> {
        self.rules
            .iter()
            .filter(|r| r.action != Action::Continue)
            .find(|r| r.matches(job))
    }

    /// The stored form (JSON), for the queue's database.
    pub fn to_stored(&self) -> String {
        let rules: Vec<Stored> = self.rules.iter().map(FilterRule::to_stored).collect();
        serde_json::to_string(&rules).unwrap_or_else(|_| "[]".to_string())
    }

    /// Reads the stored form back; rules that no longer parse are skipped
    /// (with an error in the log) so that the queue still opens.
    pub fn from_stored(s: &str) -> FilterRules {
        let stored: Vec<Stored> = match serde_json::from_str(s) {
            Ok(v) => v,
            Err(e) => {
                tracing::error!(error = %e, "job filter rules in the queue database are unreadable");
                return FilterRules::default();
            }
        };
        let mut rules = FilterRules::default();
        for st in stored {
            match FilterRule::new(
                st.uuid.clone(),
                st.watermark,
                i64::try_from(st.priority).unwrap_or(i64::MAX),
                &st.predicates,
                &st.action,
                st.reason_trail,
            ) {
                Ok(r) => rules.replace(r),
                Err(e) => {
                    tracing::error!(uuid = %st.uuid, error = %e.message(), "skipping unreadable job filter rule")
                }
            }
        }
        rules
    }
}

/// The ad-hoc rate-limit buckets of a job: `(bucket, limit)` for each
/// distinct reason `rate-limit:n:label` (the bucket is `n:label`).
pub fn rate_limit_buckets(job: &Job) -> Vec<(String, u64)> {
    let mut out: Vec<(String, u64)> = Vec::new();
    for op in &job.ops {
        for (_, reason, _) in reasons(&op.input) {
            let Some(rest) = reason.strip_prefix("rate-limit:") else {
                continue;
            };
            let n = rest.split(':').next().unwrap_or("");
            let Ok(limit) = n.parse::<u64>() else {
                continue;
            };
            if limit == 0 {
                continue;
            }
            let bucket = rest.to_string();
            if !out.iter().any(|(b, _)| *b == bucket) {
                out.push((bucket, limit));
            }
        }
    }
    out
}

/// `true` when `c` holds between `a` and `b` (for tests of comparisons).
#[cfg(test)]
pub fn holds(c: luxi::query::Comparison, a: &Value, b: &Value) -> bool {
    c.holds(cmp_json(a, b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobqueue::job::{QueuedOp, Timestamp};
    use luxi::query::Comparison;

    fn job(id: JobId, ops: Vec<Value>) -> Job {
        Job {
            id,
            ops: ops
                .into_iter()
                .map(|o| QueuedOp::new(o, String::new(), 0, Vec::new()))
                .collect(),
            received: Timestamp(0, 0),
            start: None,
            end: None,
            archived: false,
        }
    }

    fn rule(prio: i64, preds: Value, action: Value) -> FilterRule {
        FilterRule::new("u".into(), 5, prio, &preds, &action, json!([])).unwrap()
    }

    #[test]
    fn jobid_predicate_compares_with_the_watermark() {
        let r = rule(
            0,
            json!([["jobid", [">", "id", "watermark"]]]),
            json!("REJECT"),
        );
        assert!(!r.matches(&job(5, vec![json!({"OP_ID": "OP_TEST_DELAY"})])));
        assert!(r.matches(&job(6, vec![json!({"OP_ID": "OP_TEST_DELAY"})])));
        let r = rule(0, json!([["jobid", ["<=", "id", 3]]]), json!("REJECT"));
        assert!(r.matches(&job(3, vec![])));
        assert!(!r.matches(&job(4, vec![])));
        // A leaf that is not a comparison makes the predicate false.
        let r = rule(0, json!([["jobid", ["?", "id"]]]), json!("REJECT"));
        assert!(!r.matches(&job(1, vec![])));
    }

    #[test]
    fn opcode_predicate_matches_any_opcode_and_dotted_fields() {
        let r = rule(
            0,
            json!([["opcode", ["=", "OP_ID", "OP_INSTANCE_CREATE"]]]),
            json!("REJECT"),
        );
        let create = json!({"OP_ID": "OP_INSTANCE_CREATE", "beparams": {"maxmem": 512}});
        let delay = json!({"OP_ID": "OP_TEST_DELAY", "duration": 3});
        assert!(r.matches(&job(1, vec![delay.clone(), create.clone()])));
        assert!(!r.matches(&job(1, vec![delay.clone()])));
        let r = rule(
            0,
            json!([["opcode", [">", "beparams.maxmem", 256]]]),
            json!("PAUSE"),
        );
        assert!(r.matches(&job(1, vec![create])));
        // A missing field: no match.
        assert!(!r.matches(&job(1, vec![delay])));
    }

    #[test]
    fn reason_predicate_looks_at_every_trail_entry() {
        let r = rule(
            0,
            json!([["reason", ["=~", "reason", "pink bunny"]]]),
            json!("ACCEPT"),
        );
        let op = json!({"OP_ID": "OP_TEST_DELAY", "reason": [["gnt:user", "maintenance pink bunny", 1]]});
        assert!(r.matches(&job(1, vec![op.clone()])));
        let other = json!({"OP_ID": "OP_TEST_DELAY", "reason": [["gnt:user", "upgrade", 1]]});
        assert!(!r.matches(&job(1, vec![other])));
        let r = rule(
            0,
            json!([[
                "reason",
                [
                    "&",
                    ["=", "reason", "maintenance pink bunny"],
                    [">", "timestamp", 0]
                ]
            ]]),
            json!("ACCEPT"),
        );
        assert!(r.matches(&job(1, vec![op.clone()])));
        // A field reasons do not have: no match.
        let r = rule(0, json!([["reason", ["=", "user", "x"]]]), json!("ACCEPT"));
        assert!(!r.matches(&job(1, vec![op])));
    }

    #[test]
    fn the_first_matching_rule_that_is_not_continue_applies_in_priority_order() {
        let mut rules = FilterRules::default();
        let all = json!([]);
        let mut a = rule(5, all.clone(), json!("PAUSE"));
        a.uuid = "a".into();
        let mut b = rule(1, all.clone(), json!("CONTINUE"));
        b.uuid = "b".into();
        let mut c = rule(3, json!([["jobid", [">", "id", 10]]]), json!("REJECT"));
        c.uuid = "c".into();
        rules.replace(a);
        rules.replace(b);
        rules.replace(c);
        assert_eq!(rules.applying(&job(11, vec![])).unwrap().uuid, "c");
        assert_eq!(rules.applying(&job(2, vec![])).unwrap().uuid, "a");
        assert!(rules.remove("a"));
        assert!(rules.applying(&job(2, vec![])).is_none());
        let back = FilterRules::from_stored(&rules.to_stored());
        assert_eq!(back.iter().map(|r| &r.uuid).collect::<Vec<_>>(), ["b", "c"]);
    }

    #[test]
    fn bad_rules_are_refused_with_what_was_wrong() {
        let err = |p: Value, a: Value, prio: i64| {
            FilterRule::new("u".into(), 0, prio, &p, &a, json!([]))
                .unwrap_err()
                .message()
        };
        assert!(err(json!([]), json!("DROP"), 0).contains("malformed FilterAction"));
        assert!(err(json!([]), json!(["RATE_LIMIT", 0]), 0).contains("positive integer"));
        assert!(err(json!([["jobs", ["=", "id", 1]]]), json!("ACCEPT"), 0).contains("'jobs'"));
        assert!(err(json!([["jobid", ["~", "id", 1]]]), json!("ACCEPT"), 0)
            .contains("Unknown filter operator '~'"));
        assert!(err(json!([["jobid"]]), json!("ACCEPT"), 0).contains("bad parameter list"));
        assert!(err(json!([]), json!("ACCEPT"), -1).contains("non-negative"));
    }

    #[test]
    fn ad_hoc_rate_limit_buckets_come_from_reasons() {
        let op = json!({"OP_ID": "OP_TEST_DELAY",
            "reason": [["gnt:user", "rate-limit:2:evacuate", 1], ["x", "rate-limit:0:no", 1],
                       ["x", "rate-limit:two:no", 1], ["y", "rate-limit:2:evacuate", 2]]});
        assert_eq!(
            rate_limit_buckets(&job(1, vec![op])),
            vec![("2:evacuate".to_string(), 2)]
        );
    }

    #[test]
    fn json_values_compare_like_ganeti() {
        assert!(holds(Comparison::Lt, &json!(2), &json!(10)));
        assert!(holds(Comparison::Lt, &json!("a"), &json!("b")));
        // A number is below any string.
        assert!(holds(Comparison::Lt, &json!(99), &json!("1")));
    }
}
