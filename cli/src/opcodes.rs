//! Opcodes as Ganeti's Python CLI serialises them: every parameter of the
//! opcode is present, with Ganeti's default where the command leaves it
//! unset (`OpCode.__getstate__` sends all slots), plus `OP_ID` and the
//! generic fields (`comment`, `debug_level`, `depends`, `dry_run`,
//! `priority`, `reason`).

use serde_json::{json, Map, Value};

/// One opcode being built.
#[derive(Debug, Clone, PartialEq)]
pub struct OpCode(pub Map<String, Value>);

impl OpCode {
    /// The opcode `op_id` with all its parameters at Ganeti's defaults
    /// (an `OP_ID` that Ganeti 3.0 does not have gets the common fields
    /// only, and the master refuses it).
    pub fn new(op_id: &str) -> OpCode {
        OpCode(luxi::opcodes::with_defaults(op_id).unwrap_or_else(|| {
            let mut m = Map::new();
            m.insert("OP_ID".into(), json!(op_id));
            for (k, d) in luxi::opcodes::COMMON_FIELDS {
                m.insert((*k).to_string(), d.to_value());
            }
            m
        }))
    }

    /// Sets a parameter.
    pub fn set(mut self, key: &str, value: impl Into<Value>) -> OpCode {
        self.0.insert(key.to_string(), value.into());
        self
    }

    /// Sets a parameter when a value is given; leaves the default otherwise.
    pub fn set_opt<T: Into<Value>>(self, key: &str, value: Option<T>) -> OpCode {
        match value {
            Some(v) => self.set(key, v),
            None => self,
        }
    }

    pub fn op_id(&self) -> &str {
        self.0.get("OP_ID").and_then(Value::as_str).unwrap_or("")
    }

    pub fn into_value(self) -> Value {
        Value::Object(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn startup_has_ganeti_defaults() {
        // As Ganeti 3.0's OpInstanceStartup(instance_name='x').__getstate__().
        let expected = json!({"OP_ID": "OP_INSTANCE_STARTUP", "beparams": {}, "comment": null,
            "debug_level": null, "depends": null, "dry_run": null, "force": false,
            "hvparams": {}, "ignore_offline_nodes": false, "instance_name": "x",
            "instance_uuid": null, "no_remember": false, "priority": 0, "reason": [],
            "shutdown_timeout": 120, "startup_paused": false});
        let op = OpCode::new("OP_INSTANCE_STARTUP").set("instance_name", "x");
        assert_eq!(op.into_value(), expected);
    }

    #[test]
    fn set_opt_keeps_default_when_absent() {
        let op = OpCode::new("OP_NODE_SET_PARAMS").set_opt("offline", None::<bool>);
        assert_eq!(op.0["offline"], Value::Null);
        let op = op.set_opt("offline", Some(true));
        assert_eq!(op.0["offline"], json!(true));
    }
}
