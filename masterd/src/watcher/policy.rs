//! What the watcher decides, apart from how it observes and acts: which
//! instances to restart, when to wait, when to give up, and how many
//! repairs a minute it may start. Everything here is a pure function of
//! what it is told and of the notepad it keeps, so it is tested with made
//! up observations and times.
//!
//! The rules:
//! - An instance whose status is `ERROR_down` (admin state up, not running
//!   on its primary node) is restarted. As Ganeti's watcher, it gets
//!   [`Limits::max_tries`] (5) attempts; at the next sighting after the
//!   last one the watcher logs that it gives up and leaves it alone.
//! - Between two attempts it waits [`Limits::backoff`] doubled for each
//!   attempt made (capped at [`Limits::backoff_max`]), so that an instance
//!   that dies again and again, seen within seconds, does not restart in a
//!   loop.
//! - The attempts are forgotten when the instance has run without a break
//!   for [`Limits::stable`], or, if the watcher gave up, as soon as it is
//!   seen running (someone else started it: Ganeti's rule), or when the
//!   last attempt is older than [`Limits::retry_expiration`] (Ganeti's 8
//!   hours), or when the instance is stopped by its admin or removed.
//! - An instance whose node is down or offline keeps its record as it is:
//!   nothing can be done for it, and a flapping node must not reset it.
//! - At most [`Limits::max_repairs_per_minute`] repair jobs (restarts and
//!   disk activations) start in any 60 s.
//! - While a repair job of an instance has not finished, nothing more is
//!   started for it.

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};

/// Ganeti's `MAXTRIES`: restart attempts before the watcher gives up.
pub const MAX_TRIES: u32 = 5;

/// The window of the repair rate cap, in seconds.
const RATE_WINDOW: f64 = 60.0;

/// The watcher's limits (times in seconds).
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    pub max_tries: u32,
    /// The wait after the first attempt; doubled after each further one.
    pub backoff: f64,
    pub backoff_max: f64,
    /// How long an instance must run to have its attempts forgotten.
    pub stable: f64,
    /// How old the last attempt may get before it is forgotten.
    pub retry_expiration: f64,
    pub max_repairs_per_minute: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_tries: MAX_TRIES,
            backoff: 15.0,
            backoff_max: 300.0,
            stable: 600.0,
            retry_expiration: 8.0 * 3600.0,
            max_repairs_per_minute: 30,
        }
    }
}

impl Limits {
    /// How long to wait after attempt `n` (1-based) before the next.
    pub fn backoff_after(&self, n: u32) -> f64 {
        if n == 0 {
            return 0.0;
        }
        let factor = 2f64.powi(n.saturating_sub(1).min(30) as i32);
        (self.backoff * factor).min(self.backoff_max)
    }
}

/// What the watcher remembers of one instance.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InstanceRecord {
    /// Attempts made; `max_tries + 1` once the watcher gave up.
    pub restart_count: u32,
    /// When the last attempt was made.
    pub restart_when: f64,
    /// Since when it has been seen running without a break.
    #[serde(default)]
    pub running_since: Option<f64>,
    /// The restart job not finished yet.
    #[serde(default)]
    pub job: Option<u64>,
}

/// What the watcher remembers between passes (kept as JSON in
/// `watcher.data` in the data directory, as Ganeti keeps its state file).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Notepad {
    /// By instance name.
    #[serde(default)]
    pub instance: BTreeMap<String, InstanceRecord>,
    /// Boot id by node name.
    #[serde(default)]
    pub node: BTreeMap<String, String>,
    /// Disk activation jobs not finished yet, by instance name.
    #[serde(default)]
    pub disk_jobs: BTreeMap<String, u64>,
    /// When the repairs of the last minute started.
    #[serde(default)]
    pub repairs: VecDeque<f64>,
    /// Passes made since the master started, and when the last ended.
    #[serde(default)]
    pub passes: u64,
    #[serde(default)]
    pub last_pass: f64,
}

/// What to do about one instance seen in one pass.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Nothing to do.
    Leave,
    /// Start it; this is attempt number `.0`.
    Restart(u32),
    /// A repair job of it has not finished.
    Pending(u64),
    /// Wait until `.0` before the next attempt.
    Backoff(f64),
    /// The repair rate cap is reached; try again later.
    RateLimited,
    /// The last attempt failed: give up (logged once).
    GiveUp,
    /// Given up before.
    GivenUp,
    /// It runs again after restarts: the attempts are forgotten.
    Recovered,
}

impl Notepad {
    /// Decides about instance `name`, whose status is `status` at `now`.
    /// A [`Verdict::Restart`] must be followed by [`Notepad::restarted`]
    /// once the job is submitted.
    pub fn observe(&mut self, limits: &Limits, name: &str, status: &str, now: f64) -> Verdict {
        match status {
            "ERROR_down" => self.observe_down(limits, name, now),
            "running" => {
                let Some(rec) = self.instance.get_mut(name) else {
                    return Verdict::Leave;
                };
                if rec.restart_count > limits.max_tries {
                    self.instance.remove(name);
                    return Verdict::Recovered;
                }
                let since = *rec.running_since.get_or_insert(now);
                if rec.job.is_none() && now - since >= limits.stable {
                    self.instance.remove(name);
                    return Verdict::Recovered;
                }
                Verdict::Leave
            }
            // Nothing can be done, and a flapping node resets nothing.
            "ERROR_nodedown" | "ERROR_nodeoffline" => Verdict::Leave,
            // Stopped, taken offline or moved by someone: their business.
            _ => {
                if self.instance.get(name).is_some_and(|r| r.job.is_none()) {
                    self.instance.remove(name);
                }
                Verdict::Leave
            }
        }
    }

    fn observe_down(&mut self, limits: &Limits, name: &str, now: f64) -> Verdict {
        let rate_limited = self.rate_limited(limits, now);
        let rec = self.instance.entry(name.to_string()).or_default();
        rec.running_since = None;
        if let Some(job) = rec.job {
            return Verdict::Pending(job);
        }
        let n = rec.restart_count;
        if n > limits.max_tries {
            return Verdict::GivenUp;
        }
        if n == limits.max_tries {
            rec.restart_count += 1;
            rec.restart_when = now;
            return Verdict::GiveUp;
        }
        let next = rec.restart_when + limits.backoff_after(n);
        if n > 0 && now < next {
            return Verdict::Backoff(next);
        }
        if rate_limited {
            if n == 0 {
                // Nothing to remember yet.
                self.instance.remove(name);
            }
            return Verdict::RateLimited;
        }
        Verdict::Restart(n + 1)
    }

    /// Records that job `job` restarts `name` (attempt made at `now`).
    pub fn restarted(&mut self, name: &str, job: u64, now: f64) {
        let rec = self.instance.entry(name.to_string()).or_default();
        rec.restart_count += 1;
        rec.restart_when = now;
        rec.running_since = None;
        rec.job = Some(job);
        self.repairs.push_back(now);
    }

    /// Whether a disk activation of `name` may start now; if so, the
    /// caller submits it and calls [`Notepad::disks_activated`].
    pub fn may_activate_disks(&mut self, limits: &Limits, name: &str, now: f64) -> bool {
        !self.disk_jobs.contains_key(name) && !self.rate_limited(limits, now)
    }

    /// Records that job `job` activates the disks of `name`.
    pub fn disks_activated(&mut self, name: &str, job: u64, now: f64) {
        self.disk_jobs.insert(name.to_string(), job);
        self.repairs.push_back(now);
    }

    /// Forgets the repair jobs that `finished` says are over.
    pub fn jobs_finished(&mut self, finished: impl Fn(u64) -> bool) {
        for rec in self.instance.values_mut() {
            if rec.job.is_some_and(&finished) {
                rec.job = None;
            }
        }
        self.disk_jobs.retain(|_, j| !finished(*j));
    }

    /// Drops the records of instances not in `present` and those whose
    /// last attempt is older than the retry expiration.
    pub fn maintain(&mut self, limits: &Limits, present: &dyn Fn(&str) -> bool, now: f64) {
        self.instance.retain(|name, rec| {
            present(name) && (rec.job.is_some() || now - rec.restart_when < limits.retry_expiration)
        });
        self.disk_jobs.retain(|name, _| present(name));
    }

    /// Records node `node`'s boot id; true when it changed since the last
    /// sighting (a node seen for the first time did not change).
    pub fn boot_id_changed(&mut self, node: &str, boot_id: &str) -> bool {
        if boot_id.is_empty() {
            return false;
        }
        match self.node.insert(node.to_string(), boot_id.to_string()) {
            Some(old) => old != boot_id,
            None => false,
        }
    }

    /// Whether the repairs of the last minute reach the cap.
    fn rate_limited(&mut self, limits: &Limits, now: f64) -> bool {
        while self
            .repairs
            .front()
            .is_some_and(|t| *t <= now - RATE_WINDOW)
        {
            self.repairs.pop_front();
        }
        self.repairs.len() >= limits.max_repairs_per_minute
    }

    /// When a pass should next look, for the earliest backoff to end or
    /// the rate window to free a slot (`None`: no timer needed).
    pub fn next_wakeup(&self, limits: &Limits) -> Option<f64> {
        let backoffs = self
            .instance
            .values()
            .filter(|r| {
                r.job.is_none() && r.restart_count > 0 && r.restart_count < limits.max_tries
            })
            .map(|r| r.restart_when + limits.backoff_after(r.restart_count));
        let rate = (self.repairs.len() >= limits.max_repairs_per_minute)
            .then(|| self.repairs.front().map(|t| t + RATE_WINDOW))
            .flatten();
        backoffs.chain(rate).reduce(f64::min)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            backoff: 10.0,
            ..Limits::default()
        }
    }

    /// Restarts `name` whenever allowed, seen down at each of `times`;
    /// returns the times of the restarts. Each restart job ends at once.
    fn flap(pad: &mut Notepad, l: &Limits, name: &str, times: &[f64]) -> Vec<f64> {
        let mut restarts = Vec::new();
        for (i, &t) in times.iter().enumerate() {
            if let Verdict::Restart(_) = pad.observe(l, name, "ERROR_down", t) {
                pad.restarted(name, i as u64, t);
                pad.jobs_finished(|_| true);
                restarts.push(t);
                // It runs for a moment and dies again.
                pad.observe(l, name, "running", t + 0.5);
            }
        }
        restarts
    }

    #[test]
    fn a_down_instance_is_restarted_at_once() {
        let mut pad = Notepad::default();
        assert_eq!(
            pad.observe(&limits(), "i1", "ERROR_down", 100.0),
            Verdict::Restart(1)
        );
    }

    #[test]
    fn healthy_and_stopped_instances_are_left_alone() {
        let mut pad = Notepad::default();
        for s in [
            "running",
            "ADMIN_down",
            "USER_down",
            "ERROR_up",
            "ERROR_wrongnode",
            "ADMIN_offline",
            "ERROR_nodedown",
            "ERROR_nodeoffline",
        ] {
            assert_eq!(pad.observe(&limits(), "i1", s, 1.0), Verdict::Leave, "{s}");
        }
        assert!(pad.instance.is_empty());
    }

    #[test]
    fn nothing_more_starts_while_the_restart_job_runs() {
        let l = limits();
        let mut pad = Notepad::default();
        assert_eq!(
            pad.observe(&l, "i1", "ERROR_down", 0.0),
            Verdict::Restart(1)
        );
        pad.restarted("i1", 7, 0.0);
        assert_eq!(
            pad.observe(&l, "i1", "ERROR_down", 50.0),
            Verdict::Pending(7)
        );
        pad.jobs_finished(|j| j == 7);
        assert_eq!(
            pad.observe(&l, "i1", "ERROR_down", 50.0),
            Verdict::Restart(2)
        );
    }

    #[test]
    fn a_flapping_instance_backs_off_then_the_watcher_gives_up() {
        let l = limits();
        let mut pad = Notepad::default();
        // Seen dead every second for ten minutes.
        let times: Vec<f64> = (0..600).map(f64::from).collect();
        let restarts = flap(&mut pad, &l, "i1", &times);
        // Attempt 1 at once, then waits of 10, 20, 40, 80 s.
        assert_eq!(restarts, vec![0.0, 10.0, 30.0, 70.0, 150.0]);
        assert_eq!(pad.instance["i1"].restart_count, MAX_TRIES + 1);
        assert_eq!(
            pad.observe(&l, "i1", "ERROR_down", 1000.0),
            Verdict::GivenUp
        );
    }

    #[test]
    fn giving_up_is_said_once_and_lasts_until_it_runs_again() {
        let l = limits();
        let mut pad = Notepad::default();
        pad.instance.insert(
            "i1".into(),
            InstanceRecord {
                restart_count: MAX_TRIES,
                restart_when: 0.0,
                ..Default::default()
            },
        );
        assert_eq!(pad.observe(&l, "i1", "ERROR_down", 1000.0), Verdict::GiveUp);
        assert_eq!(
            pad.observe(&l, "i1", "ERROR_down", 2000.0),
            Verdict::GivenUp
        );
        // An operator starts it: the count is forgotten at once.
        assert_eq!(pad.observe(&l, "i1", "running", 2001.0), Verdict::Recovered);
        assert_eq!(
            pad.observe(&l, "i1", "ERROR_down", 2002.0),
            Verdict::Restart(1)
        );
    }

    #[test]
    fn attempts_are_forgotten_after_running_stably() {
        let l = limits();
        let mut pad = Notepad::default();
        assert_eq!(
            pad.observe(&l, "i1", "ERROR_down", 0.0),
            Verdict::Restart(1)
        );
        pad.restarted("i1", 1, 0.0);
        pad.jobs_finished(|_| true);
        assert_eq!(pad.observe(&l, "i1", "running", 5.0), Verdict::Leave);
        assert_eq!(
            pad.observe(&l, "i1", "running", 5.0 + l.stable - 1.0),
            Verdict::Leave
        );
        assert_eq!(
            pad.observe(&l, "i1", "running", 5.0 + l.stable),
            Verdict::Recovered
        );
        assert!(pad.instance.is_empty());
    }

    #[test]
    fn a_break_in_running_restarts_the_stability_clock() {
        let l = limits();
        let mut pad = Notepad::default();
        pad.observe(&l, "i1", "ERROR_down", 0.0);
        pad.restarted("i1", 1, 0.0);
        pad.jobs_finished(|_| true);
        pad.observe(&l, "i1", "running", 1.0);
        assert_eq!(
            pad.observe(&l, "i1", "ERROR_down", 300.0),
            Verdict::Restart(2)
        );
        pad.restarted("i1", 2, 300.0);
        pad.jobs_finished(|_| true);
        pad.observe(&l, "i1", "running", 301.0);
        // 600 s after the first sighting running, but not without a break.
        assert_eq!(pad.observe(&l, "i1", "running", 601.0), Verdict::Leave);
        assert_eq!(pad.instance["i1"].restart_count, 2);
    }

    #[test]
    fn a_node_down_keeps_the_record_and_an_admin_stop_drops_it() {
        let l = limits();
        let mut pad = Notepad::default();
        pad.observe(&l, "i1", "ERROR_down", 0.0);
        pad.restarted("i1", 1, 0.0);
        pad.jobs_finished(|_| true);
        pad.observe(&l, "i1", "ERROR_nodedown", 10.0);
        assert_eq!(pad.instance["i1"].restart_count, 1);
        pad.observe(&l, "i1", "ADMIN_down", 20.0);
        assert!(pad.instance.is_empty());
    }

    #[test]
    fn the_repair_rate_is_capped_per_minute() {
        let l = Limits {
            max_repairs_per_minute: 3,
            ..limits()
        };
        let mut pad = Notepad::default();
        let mut started = Vec::new();
        for i in 0..5 {
            let name = format!("i{i}");
            match pad.observe(&l, &name, "ERROR_down", 10.0) {
                Verdict::Restart(_) => {
                    pad.restarted(&name, i, 10.0);
                    started.push(name);
                }
                v => assert_eq!(v, Verdict::RateLimited),
            }
        }
        assert_eq!(started, vec!["i0", "i1", "i2"]);
        assert!(!pad.may_activate_disks(&l, "i9", 30.0));
        assert_eq!(pad.next_wakeup(&l), Some(70.0));
        // A minute later there is room again.
        assert_eq!(
            pad.observe(&l, "i3", "ERROR_down", 70.0),
            Verdict::Restart(1)
        );
        assert!(pad.may_activate_disks(&l, "i9", 70.0));
    }

    #[test]
    fn the_next_wakeup_is_the_end_of_the_earliest_backoff() {
        let l = limits();
        let mut pad = Notepad::default();
        assert_eq!(pad.next_wakeup(&l), None);
        pad.observe(&l, "i1", "ERROR_down", 0.0);
        pad.restarted("i1", 1, 0.0);
        pad.observe(&l, "i2", "ERROR_down", 5.0);
        pad.restarted("i2", 2, 5.0);
        // Running jobs need no timer: their end triggers a pass.
        assert_eq!(pad.next_wakeup(&l), None);
        pad.jobs_finished(|_| true);
        assert_eq!(pad.next_wakeup(&l), Some(10.0));
        assert_eq!(
            pad.observe(&l, "i1", "ERROR_down", 9.0),
            Verdict::Backoff(10.0)
        );
    }

    #[test]
    fn old_and_vanished_records_are_dropped() {
        let l = limits();
        let mut pad = Notepad::default();
        for (n, t) in [("old", 0.0), ("gone", 100.0), ("kept", 100.0)] {
            pad.observe(&l, n, "ERROR_down", t);
            pad.restarted(n, 1, t);
        }
        pad.jobs_finished(|_| true);
        pad.disks_activated("gone", 9, 100.0);
        pad.maintain(&l, &|n| n != "gone", l.retry_expiration + 50.0);
        assert_eq!(pad.instance.keys().collect::<Vec<_>>(), vec!["kept"]);
        assert!(pad.disk_jobs.is_empty());
    }

    #[test]
    fn a_changed_boot_id_is_noticed_but_not_a_first_one() {
        let mut pad = Notepad::default();
        assert!(!pad.boot_id_changed("n1", "a"));
        assert!(!pad.boot_id_changed("n1", "a"));
        assert!(!pad.boot_id_changed("n1", ""));
        assert!(pad.boot_id_changed("n1", "b"));
    }

    #[test]
    fn disk_activation_waits_for_its_job() {
        let l = limits();
        let mut pad = Notepad::default();
        assert!(pad.may_activate_disks(&l, "i1", 0.0));
        pad.disks_activated("i1", 4, 0.0);
        assert!(!pad.may_activate_disks(&l, "i1", 1.0));
        pad.jobs_finished(|j| j == 4);
        assert!(pad.may_activate_disks(&l, "i1", 2.0));
    }

    #[test]
    fn the_backoff_doubles_up_to_its_cap() {
        let l = limits();
        assert_eq!(l.backoff_after(0), 0.0);
        assert_eq!(l.backoff_after(1), 10.0);
        assert_eq!(l.backoff_after(3), 40.0);
        assert_eq!(l.backoff_after(9), l.backoff_max);
    }
}
