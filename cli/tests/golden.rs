//! The gnt-* binaries against what Ganeti 3.0's own Python tools do: each
//! file in tests/golden/ holds a command, the master's canned replies, and
//! the requests, output and exit code recorded from Ganeti's tools with the
//! same replies (see tests/golden/generate.py).

// An integration test: a failed unwrap or expect is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod fake_luxi;

use fake_luxi::{stderr, stdout, FakeMaster};
use serde_json::Value;

/// Sets the nanosecond timestamps of reason trails to 0.
fn mask_reason(v: &mut Value) {
    match v {
        Value::Object(m) => {
            for (k, x) in m.iter_mut() {
                if k == "reason" {
                    if let Value::Array(trail) = x {
                        for entry in trail.iter_mut() {
                            if let Some(ts) = entry.get_mut(2) {
                                *ts = Value::from(0);
                            }
                        }
                        continue;
                    }
                }
                mask_reason(x);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(mask_reason),
        _ => {}
    }
}

fn check(path: &std::path::Path) -> Result<(), String> {
    let case: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let m = FakeMaster::start();
    for (method, reply) in case["replies"].as_object().unwrap() {
        match reply.get("seq") {
            Some(Value::Array(seq)) => seq.iter().for_each(|r| {
                m.raw(method, r.clone());
            }),
            _ => {
                m.raw(method, reply.clone());
            }
        }
    }
    let args: Vec<&str> = case["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    let o = m.run(case["bin"].as_str().unwrap(), &args);
    // Paths under the temporary directory are recorded as BASE.
    let base = m.base.path().display().to_string();
    let stdout = |o: &std::process::Output| stdout(o).replace(&base, "BASE");
    let stderr = |o: &std::process::Output| stderr(o).replace(&base, "BASE");
    let mut problems = Vec::new();
    if stdout(&o) != case["stdout"].as_str().unwrap() {
        problems.push(format!(
            "stdout:\n--- ganeti\n{}--- ours\n{}",
            case["stdout"].as_str().unwrap(),
            stdout(&o)
        ));
    }
    if stderr(&o) != case["stderr"].as_str().unwrap() {
        problems.push(format!(
            "stderr:\n--- ganeti\n{}--- ours\n{}",
            case["stderr"].as_str().unwrap(),
            stderr(&o)
        ));
    }
    if o.status.code().map(i64::from) != case["rc"].as_i64() {
        problems.push(format!(
            "exit code {:?}, ganeti {}",
            o.status.code(),
            case["rc"]
        ));
    }
    let mut ours: Vec<Value> = m
        .requests()
        .into_iter()
        .map(|(method, args)| Value::Array(vec![Value::from(method), args]))
        .collect();
    ours.iter_mut().for_each(mask_reason);
    let theirs = case["requests"].as_array().unwrap();
    if &ours != theirs {
        problems.push(format!(
            "requests:\n--- ganeti\n{}\n--- ours\n{}",
            serde_json::to_string_pretty(theirs).unwrap(),
            serde_json::to_string_pretty(&ours).unwrap()
        ));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!("{}: {}", path.display(), problems.join("\n")))
    }
}

#[test]
fn commands_behave_like_ganeti_python_tools() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.extension().is_some_and(|e| e == "json")
                && p.file_name().is_some_and(|n| n != "cases.json")
        })
        .collect();
    files.sort();
    assert!(
        files.len() >= 40,
        "golden files missing in {}",
        dir.display()
    );
    let failures: Vec<String> = files.iter().filter_map(|f| check(f).err()).collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases differ:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n\n")
    );
}
