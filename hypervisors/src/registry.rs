//! Finding a hypervisor driver by name.

use std::collections::BTreeMap;
use std::sync::Arc;

use objects::paths::Paths;

use crate::error::{HypervisorError, Result};
use crate::fake::FakeHypervisor;
use crate::kvm::KvmHypervisor;
use crate::Hypervisor;

/// The hypervisors of one node, created once and shared.
#[derive(Clone)]
pub struct Registry {
    drivers: BTreeMap<&'static str, Arc<dyn Hypervisor>>,
}

impl Registry {
    /// Every driver this build has, rooted at `paths`.
    pub fn new(paths: &Paths) -> Self {
        let mut drivers: BTreeMap<&'static str, Arc<dyn Hypervisor>> = BTreeMap::new();
        let fake = FakeHypervisor::from_env(paths);
        drivers.insert(fake.name(), Arc::new(fake));
        let kvm = KvmHypervisor::new(paths);
        drivers.insert(kvm.name(), Arc::new(kvm));
        Registry { drivers }
    }

    /// A registry of the given drivers (tests).
    pub fn with(drivers: Vec<Arc<dyn Hypervisor>>) -> Self {
        Registry {
            drivers: drivers.into_iter().map(|d| (d.name(), d)).collect(),
        }
    }

    /// The driver called `name`.
    pub fn get(&self, name: &str) -> Result<Arc<dyn Hypervisor>> {
        self.drivers
            .get(name)
            .cloned()
            .ok_or_else(|| HypervisorError::Unknown {
                name: name.to_string(),
                known: self.names().join(", "),
            })
    }

    /// Names of the drivers, sorted.
    pub fn names(&self) -> Vec<&'static str> {
        self.drivers.keys().copied().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_has_the_fake_and_kvm_drivers() {
        let reg = Registry::new(&Paths::new("/nonexistent-root"));
        assert_eq!(reg.names(), vec!["fake", "kvm"]);
        assert_eq!(reg.get("kvm").unwrap().name(), "kvm");
        let err = reg.get("xen-pvm").err().unwrap().to_string();
        assert!(err.contains("known: fake, kvm"), "{err}");
    }
}
