//! Failure injection for tests (`--enable-test-hooks`).

use std::collections::HashMap;
use std::sync::Mutex;

use rpc::api::FailureMode;

/// Pending injected failures: call name -> (mode, remaining count).
#[derive(Debug, Default)]
pub struct TestHooks {
    failures: Mutex<HashMap<String, (FailureMode, u32)>>,
}

impl TestHooks {
    /// Makes the next `count` calls of `call` fail with `mode`.
    pub fn set(&self, call: &str, mode: FailureMode, count: u32) {
        let mut f = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if count == 0 {
            f.remove(call);
        } else {
            f.insert(call.to_string(), (mode, count));
        }
    }

    /// Whether this call of `call` must fail, and how; counts it.
    pub fn take(&self, call: &str) -> Option<FailureMode> {
        let mut f = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let (mode, remaining) = f.get_mut(call)?;
        let mode = *mode;
        *remaining -= 1;
        if *remaining == 0 {
            f.remove(call);
        }
        Some(mode)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_applies_count_times() {
        let h = TestHooks::default();
        h.set("version", FailureMode::Error, 2);
        assert_eq!(h.take("node_info"), None);
        assert_eq!(h.take("version"), Some(FailureMode::Error));
        assert_eq!(h.take("version"), Some(FailureMode::Error));
        assert_eq!(h.take("version"), None);
        h.set("version", FailureMode::Hang, 5);
        h.set("version", FailureMode::Hang, 0);
        assert_eq!(h.take("version"), None);
    }
}
