//! The fields every opcode carries (`dry_run`, `priority`, `depends`, ...).

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{bad_input, is_common_field};
use crate::error::GanetiError;

/// The most urgent opcode priority.
pub const PRIORITY_HIGHEST: i32 = -20;
/// The least urgent opcode priority.
pub const PRIORITY_LOWEST: i32 = 19;
/// The priority of an opcode that does not say.
pub const PRIORITY_DEFAULT: i32 = 0;
/// The priorities an opcode may be submitted with (Ganeti's
/// `OP_PRIO_SUBMIT_VALID`: high, normal, low); the others are for
/// changes of a queued job's priority.
pub const SUBMIT_PRIORITIES: [i32; 3] = [-10, 0, 10];

/// Fields every opcode carries.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Common {
    #[serde(default)]
    pub dry_run: bool,
    #[serde(default)]
    pub debug_level: i64,
    #[serde(default)]
    pub priority: i32,
    /// `[[job_id, [status, ...]], ...]`, as submitted (relative ids are
    /// resolved by the job queue).
    #[serde(default)]
    pub depends: Option<Vec<Dependency>>,
    #[serde(default)]
    pub comment: Option<String>,
    #[serde(default)]
    pub reason: Vec<Value>,
}

impl Common {
    /// Reads the common fields of an opcode dict, ignoring the others. A
    /// `null` field takes its default; the priority must be one of
    /// [`SUBMIT_PRIORITIES`].
    pub fn from_dict(op_id: &str, obj: &Map<String, Value>) -> Result<Common, GanetiError> {
        let fields: Map<String, Value> = obj
            .iter()
            .filter(|(k, v)| k.as_str() != "OP_ID" && is_common_field(k) && !v.is_null())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let common: Common = serde_json::from_value(Value::Object(fields))
            .map_err(|e| bad_input(format!("Invalid common parameters for {op_id}: {e}")))?;
        if !SUBMIT_PRIORITIES.contains(&common.priority) {
            return Err(bad_input(format!(
                "Opcode priority {} is invalid, expected one of -10 (high), 0 (normal) or 10 (low)",
                common.priority
            )));
        }
        Ok(common)
    }
}

/// A job named in `depends`: absolute (`0` and up, a number or a string of
/// digits, as Ganeti accepts) or relative (negative: `-1` is the job
/// submitted just before in the same submission).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct JobRef(pub i64);

impl<'de> Deserialize<'de> for JobRef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::Number(n) => n
                .as_i64()
                .map(JobRef)
                .ok_or_else(|| de::Error::custom(format!("job id {n} is not an integer"))),
            Value::String(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => s
                .parse()
                .map(JobRef)
                .map_err(|_| de::Error::custom(format!("job id '{s}' is out of range"))),
            other => Err(de::Error::custom(format!(
                "job id {other} is invalid, expected an integer"
            ))),
        }
    }
}

/// A final job status a dependency may ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FinalStatus {
    Success,
    Error,
    Canceled,
}

impl FinalStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            FinalStatus::Success => "success",
            FinalStatus::Error => "error",
            FinalStatus::Canceled => "canceled",
        }
    }
}

/// One entry of `depends`: the job must end in one of the statuses (in
/// any final status when the list is empty).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dependency(pub JobRef, pub Vec<FinalStatus>);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn common(v: Value) -> Result<Common, GanetiError> {
        Common::from_dict("OP_TEST_DELAY", v.as_object().unwrap())
    }

    #[test]
    fn depends_take_numbers_digit_strings_and_final_statuses() {
        let c = common(json!({"depends": [[-1, ["success"]], ["12", []]]})).unwrap();
        assert_eq!(
            c.depends,
            Some(vec![
                Dependency(JobRef(-1), vec![FinalStatus::Success]),
                Dependency(JobRef(12), vec![]),
            ])
        );
    }

    #[test]
    fn a_status_that_is_not_final_is_refused() {
        let e = common(json!({"depends": [[3, ["running"]]]})).unwrap_err();
        assert!(e.message().contains("running"), "{e}");
    }

    #[test]
    fn a_job_id_that_is_not_a_number_is_refused() {
        let e = common(json!({"depends": [["x1", []]]})).unwrap_err();
        assert!(e.message().contains("x1"), "{e}");
    }

    #[test]
    fn priority_out_of_range_is_refused_and_null_is_the_default() {
        for bad in [20, -20, 19, 1, -9, 11] {
            let e = common(json!({"priority": bad})).unwrap_err();
            assert!(e.message().contains(&format!("priority {bad} ")), "{e}");
        }
        assert_eq!(common(json!({"priority": null})).unwrap().priority, 0);
        assert_eq!(common(json!({"priority": -10})).unwrap().priority, -10);
        assert_eq!(common(json!({"priority": 10})).unwrap().priority, 10);
    }
}
