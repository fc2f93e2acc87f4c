//! The lock manager: Ganeti's lock levels, shared and exclusive modes.
//!
//! A logical unit asks for all its locks at once, one request per level;
//! the request is granted atomically, when every lock in it is free, so two
//! jobs can never hold part of what the other needs and wait on each other.
//! Levels are still ordered (cluster < instance < node group < node <
//! node-res < network), which keeps requests comparable to Ganeti's.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

/// A lock level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// The big ganeti lock (one lock named `BGL`).
    Cluster = 0,
    Instance = 1,
    NodeGroup = 2,
    Node = 3,
    NodeRes = 4,
    Network = 5,
}

const LEVELS: usize = 6;

impl Level {
    pub fn name(self) -> &'static str {
        match self {
            Level::Cluster => "cluster",
            Level::Instance => "instance",
            Level::NodeGroup => "nodegroup",
            Level::Node => "node",
            Level::NodeRes => "node-res",
            Level::Network => "network",
        }
    }
}

/// Shared or exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Shared,
    Exclusive,
}

/// Which locks of a level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Names {
    /// Every lock of the level, including ones added while held.
    All,
    /// These locks (by object UUID or, for the cluster level, `BGL`).
    Some(Vec<String>),
}

/// What a logical unit asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LockRequest {
    items: Vec<(Level, Names, Mode)>,
}

impl LockRequest {
    pub fn new() -> Self {
        LockRequest::default()
    }

    /// The big ganeti lock in `mode`.
    pub fn bgl(mut self, mode: Mode) -> Self {
        self.items
            .push((Level::Cluster, Names::Some(vec!["BGL".into()]), mode));
        self
    }

    /// Some locks of a level.
    pub fn some(mut self, level: Level, names: Vec<String>, mode: Mode) -> Self {
        let mut names = names;
        names.sort();
        names.dedup();
        if !names.is_empty() {
            self.items.push((level, Names::Some(names), mode));
        }
        self
    }

    /// All locks of a level.
    pub fn all(mut self, level: Level, mode: Mode) -> Self {
        self.items.push((level, Names::All, mode));
        self
    }

    /// The requested items, in level order.
    pub fn items(&self) -> &[(Level, Names, Mode)] {
        &self.items
    }

    fn normalized(mut self) -> Self {
        self.items.sort_by_key(|(l, _, _)| *l);
        self
    }
}

#[derive(Debug, Default, Clone, Copy)]
struct One {
    exclusive: bool,
    shared: usize,
}

#[derive(Debug, Default)]
struct LevelState {
    locks: HashMap<String, One>,
    /// Held "all" in exclusive mode.
    all_exclusive: bool,
    /// Holders of "all" in shared mode.
    all_shared: usize,
    /// Holders of individual locks, and of those the exclusive ones.
    some_holders: usize,
    some_exclusive: usize,
}

impl LevelState {
    fn can_grant(&self, names: &Names, mode: Mode) -> bool {
        if self.all_exclusive {
            return false;
        }
        match (names, mode) {
            (Names::All, Mode::Exclusive) => self.all_shared == 0 && self.some_holders == 0,
            (Names::All, Mode::Shared) => self.some_exclusive == 0,
            (Names::Some(ns), Mode::Exclusive) => {
                self.all_shared == 0
                    && ns.iter().all(|n| {
                        self.locks
                            .get(n)
                            .is_none_or(|l| !l.exclusive && l.shared == 0)
                    })
            }
            (Names::Some(ns), Mode::Shared) => ns
                .iter()
                .all(|n| self.locks.get(n).is_none_or(|l| !l.exclusive)),
        }
    }

    fn grant(&mut self, names: &Names, mode: Mode) {
        match (names, mode) {
            (Names::All, Mode::Exclusive) => self.all_exclusive = true,
            (Names::All, Mode::Shared) => self.all_shared += 1,
            (Names::Some(ns), m) => {
                self.some_holders += 1;
                if m == Mode::Exclusive {
                    self.some_exclusive += 1;
                }
                for n in ns {
                    let l = self.locks.entry(n.clone()).or_default();
                    match m {
                        Mode::Exclusive => l.exclusive = true,
                        Mode::Shared => l.shared += 1,
                    }
                }
            }
        }
    }

    fn release(&mut self, names: &Names, mode: Mode) {
        match (names, mode) {
            (Names::All, Mode::Exclusive) => self.all_exclusive = false,
            (Names::All, Mode::Shared) => self.all_shared -= 1,
            (Names::Some(ns), m) => {
                self.some_holders -= 1;
                if m == Mode::Exclusive {
                    self.some_exclusive -= 1;
                }
                for n in ns {
                    if let Some(l) = self.locks.get_mut(n) {
                        match m {
                            Mode::Exclusive => l.exclusive = false,
                            Mode::Shared => l.shared -= 1,
                        }
                        if !l.exclusive && l.shared == 0 {
                            self.locks.remove(n);
                        }
                    }
                }
            }
        }
    }
}

#[derive(Default)]
struct State {
    levels: [LevelState; LEVELS],
}

/// The lock manager of the master daemon.
#[derive(Default)]
pub struct LockManager {
    state: Mutex<State>,
    changed: Notify,
}

/// Why an acquisition did not complete.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LockError {
    #[error("canceled while waiting for locks")]
    Canceled,
}

/// Locks held by one logical unit; released when dropped.
pub struct LockGuard {
    manager: Arc<LockManager>,
    request: LockRequest,
}

impl std::fmt::Debug for LockGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LockGuard")
            .field("request", &self.request)
            .finish()
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        {
            let mut st = self.manager.state.lock().unwrap_or_else(|e| e.into_inner());
            for (level, names, mode) in &self.request.items {
                st.levels[*level as usize].release(names, *mode);
            }
        }
        self.manager.changed.notify_waiters();
    }
}

impl LockManager {
    pub fn new() -> Arc<Self> {
        Arc::new(LockManager::default())
    }

    fn try_grant(&self, req: &LockRequest) -> bool {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let ok = req
            .items
            .iter()
            .all(|(l, n, m)| st.levels[*l as usize].can_grant(n, *m));
        if ok {
            for (l, n, m) in &req.items {
                st.levels[*l as usize].grant(n, *m);
            }
        }
        ok
    }

    /// Acquires every lock of `req`, waiting while any is held in a
    /// conflicting mode. `canceled` is checked whenever locks change hands
    /// (and at least every `poll`), and ends the wait with an error.
    pub async fn acquire(
        self: &Arc<Self>,
        req: LockRequest,
        canceled: impl Fn() -> bool,
        poll: Duration,
    ) -> Result<LockGuard, LockError> {
        let req = req.normalized();
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.try_grant(&req) {
                return Ok(LockGuard {
                    manager: self.clone(),
                    request: req,
                });
            }
            if canceled() {
                return Err(LockError::Canceled);
            }
            let _ = tokio::time::timeout(poll, notified).await;
        }
    }

    /// Tries once, without waiting.
    pub fn try_acquire(self: &Arc<Self>, req: LockRequest) -> Option<LockGuard> {
        let req = req.normalized();
        self.try_grant(&req).then(|| LockGuard {
            manager: self.clone(),
            request: req,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn never() -> bool {
        false
    }

    #[tokio::test]
    async fn shared_locks_coexist_exclusive_waits() {
        let lm = LockManager::new();
        let a = lm
            .try_acquire(LockRequest::new().some(Level::Instance, vec!["i1".into()], Mode::Shared))
            .unwrap();
        let _b = lm
            .try_acquire(LockRequest::new().some(Level::Instance, vec!["i1".into()], Mode::Shared))
            .unwrap();
        assert!(lm
            .try_acquire(LockRequest::new().some(
                Level::Instance,
                vec!["i1".into()],
                Mode::Exclusive
            ))
            .is_none());
        drop(a);
        drop(_b);
        assert!(lm
            .try_acquire(LockRequest::new().some(
                Level::Instance,
                vec!["i1".into()],
                Mode::Exclusive
            ))
            .is_some());
    }

    #[tokio::test]
    async fn all_exclusive_excludes_every_name() {
        let lm = LockManager::new();
        let all = lm
            .try_acquire(LockRequest::new().all(Level::Node, Mode::Exclusive))
            .unwrap();
        assert!(lm
            .try_acquire(LockRequest::new().some(Level::Node, vec!["n1".into()], Mode::Shared))
            .is_none());
        // Other levels are unaffected.
        assert!(lm
            .try_acquire(LockRequest::new().some(
                Level::Instance,
                vec!["i".into()],
                Mode::Exclusive
            ))
            .is_some());
        drop(all);
        assert!(lm
            .try_acquire(LockRequest::new().some(Level::Node, vec!["n1".into()], Mode::Shared))
            .is_some());
    }

    #[tokio::test]
    async fn all_shared_conflicts_with_an_exclusive_name() {
        let lm = LockManager::new();
        let one = lm
            .try_acquire(LockRequest::new().some(Level::Node, vec!["n1".into()], Mode::Exclusive))
            .unwrap();
        assert!(lm
            .try_acquire(LockRequest::new().all(Level::Node, Mode::Shared))
            .is_none());
        drop(one);
        let _all = lm
            .try_acquire(LockRequest::new().all(Level::Node, Mode::Shared))
            .unwrap();
        assert!(lm
            .try_acquire(LockRequest::new().some(Level::Node, vec!["n2".into()], Mode::Shared))
            .is_some());
        assert!(lm
            .try_acquire(LockRequest::new().some(Level::Node, vec!["n2".into()], Mode::Exclusive))
            .is_none());
    }

    #[tokio::test]
    async fn waiter_is_woken_when_the_lock_is_released() {
        let lm = LockManager::new();
        let held = lm
            .try_acquire(LockRequest::new().bgl(Mode::Exclusive))
            .unwrap();
        let lm2 = lm.clone();
        let waiter = tokio::spawn(async move {
            lm2.acquire(
                LockRequest::new().bgl(Mode::Shared),
                never,
                Duration::from_secs(3600),
            )
            .await
            .map(|_| ())
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        drop(held);
        assert_eq!(waiter.await.unwrap(), Ok(()));
    }

    #[tokio::test]
    async fn cancel_ends_the_wait() {
        let lm = LockManager::new();
        let _held = lm
            .try_acquire(LockRequest::new().bgl(Mode::Exclusive))
            .unwrap();
        let r = lm
            .acquire(
                LockRequest::new().bgl(Mode::Shared),
                || true,
                Duration::from_millis(10),
            )
            .await;
        assert_eq!(r.unwrap_err(), LockError::Canceled);
    }

    #[tokio::test]
    async fn many_jobs_on_crossing_locks_all_finish() {
        // Jobs lock pairs of nodes in opposite orders; atomic grants mean
        // none can deadlock.
        let lm = LockManager::new();
        let mut tasks = Vec::new();
        for i in 0..200 {
            let lm = lm.clone();
            tasks.push(tokio::spawn(async move {
                let (a, b) = if i % 2 == 0 {
                    ("n1", "n2")
                } else {
                    ("n2", "n1")
                };
                let g = lm
                    .acquire(
                        LockRequest::new().bgl(Mode::Shared).some(
                            Level::Node,
                            vec![a.into(), b.into()],
                            Mode::Exclusive,
                        ),
                        never,
                        Duration::from_secs(3600),
                    )
                    .await
                    .unwrap();
                tokio::task::yield_now().await;
                drop(g);
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let st = lm.state.lock().unwrap();
        assert!(st
            .levels
            .iter()
            .all(|l| l.locks.is_empty() && l.some_holders == 0));
    }
}
