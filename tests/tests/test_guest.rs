//! The test guest of the KVM hypervisor's tests (`scripts/build-test-guest.sh`)
//! boots under QEMU (TCG: no KVM needed), prints its boot line and then an
//! increasing counter on the serial console, and powers off on the ACPI
//! power button; no QEMU is left behind.

// An integration test: a failed unwrap or expect is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use tests::test_guest;

use tests::guest::BOOT_LINE;
/// Generous: the guest boots in about 4 s under TCG on a busy machine.
const BOOT_DEADLINE: Duration = Duration::from_secs(90);

/// A QEMU running the test guest, serial console on its stdout; killed and
/// reaped when dropped, so a failing test leaves no QEMU behind.
struct Guest {
    child: Child,
    /// Lines of the serial console, read by a thread.
    serial: Receiver<String>,
    /// Everything seen on the console so far, for error messages.
    seen: Vec<String>,
    dir: tempfile::TempDir,
}

impl Guest {
    fn start() -> Guest {
        Guest::start_in(tempfile::tempdir().unwrap(), None)
    }

    /// A guest in `dir` whose first disk is the file `disk` (keeping its
    /// counter there: `counter_disk=/dev/vda`).
    fn start_in(dir: tempfile::TempDir, disk: Option<&std::path::Path>) -> Guest {
        let (kernel, initrd) = test_guest();
        let qmp = dir.path().join("qmp.sock");
        let stderr = std::fs::File::create(dir.path().join("qemu.stderr")).unwrap();
        let mut child = Command::new("qemu-system-x86_64")
            .args(["-machine", "accel=tcg", "-m", "256", "-nographic"])
            .args(["-no-reboot", "-monitor", "none", "-serial", "stdio"])
            .arg("-qmp")
            .arg(format!("unix:{},server=on,wait=off", qmp.display()))
            .arg("-pidfile")
            .arg(dir.path().join("qemu.pid"))
            .arg("-kernel")
            .arg(&kernel)
            .arg("-initrd")
            .arg(&initrd)
            .args(match disk {
                Some(disk) => vec![
                    "-append".to_string(),
                    "console=ttyS0 panic=-1 quiet counter_disk=/dev/vda".to_string(),
                    "-drive".to_string(),
                    format!(
                        "file={},format=raw,if=none,id=d0,cache=none",
                        disk.display()
                    ),
                    "-device".to_string(),
                    "virtio-blk-pci,drive=d0".to_string(),
                ],
                None => vec![
                    "-append".to_string(),
                    "console=ttyS0 panic=-1 quiet".to_string(),
                ],
            })
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start qemu-system-x86_64 ({e}): run scripts/install-deps.sh")
            });
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, serial) = mpsc::channel();
        std::thread::spawn(move || {
            let mut r = BufReader::new(stdout);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match r.read_until(b'\n', &mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {
                        let line = String::from_utf8_lossy(&buf).trim_end().to_string();
                        if tx.send(line).is_err() {
                            return;
                        }
                    }
                }
            }
        });
        Guest {
            child,
            serial,
            seen: Vec::new(),
            dir,
        }
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("qemu.stderr")).unwrap_or_default()
    }

    /// Reads console lines until `pred` matches one (returned), failing at
    /// `deadline` or when QEMU closes the console.
    fn wait_line(&mut self, what: &str, deadline: Instant, pred: impl Fn(&str) -> bool) -> String {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.serial.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if pred(&line) {
                        return line;
                    }
                }
                Err(e) => {
                    let why = match e {
                        RecvTimeoutError::Timeout => "timed out",
                        RecvTimeoutError::Disconnected => "QEMU closed the console",
                    };
                    panic!(
                        "waiting for {what}: {why}; console:\n{}\nQEMU stderr:\n{}",
                        self.seen.join("\n"),
                        self.stderr()
                    );
                }
            }
        }
    }

    /// The guest's counter on this console line, if it is one.
    fn counter(line: &str) -> Option<u64> {
        line.split_once("counter ")?.1.trim().parse().ok()
    }

    /// Waits until QEMU exits by itself, failing at `deadline`.
    fn wait_exit(&mut self, deadline: Instant) -> ExitStatus {
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "QEMU did not exit; console:\n{}",
                self.seen.join("\n")
            );
            // Keep draining the console so the guest never blocks on it.
            while let Ok(line) = self.serial.try_recv() {
                self.seen.push(line);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Processes whose command line names this guest's directory: its QEMU.
    fn qemus_left(&self) -> Vec<String> {
        let tag = self.dir.path().to_string_lossy().into_owned();
        let mut left = Vec::new();
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            if !entry
                .file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
            {
                continue;
            }
            let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
                continue;
            };
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if cmdline.contains(&tag) {
                left.push(format!(
                    "{}: {cmdline}",
                    entry.file_name().to_string_lossy()
                ));
            }
        }
        left
    }
}

impl Drop for Guest {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn qmp_command(conn: &mut BufReader<UnixStream>, command: &str) {
    writeln!(conn.get_mut(), r#"{{"execute": "{command}"}}"#).unwrap();
    // Events may come before the answer.
    let mut line = String::new();
    loop {
        line.clear();
        let n = conn.read_line(&mut line).unwrap();
        assert!(n > 0, "QMP closed before answering {command}");
        let answer: serde_json::Value = serde_json::from_str(&line).unwrap();
        if answer.get("return").is_some() {
            return;
        }
        assert!(
            answer.get("error").is_none(),
            "QMP {command} failed: {line}"
        );
    }
}

#[test]
fn guest_boots_then_counts_and_kill_leaves_no_qemu() {
    let started = Instant::now();
    let mut guest = Guest::start();
    let deadline = started + BOOT_DEADLINE;
    guest.wait_line("the boot line", deadline, |l| l.contains(BOOT_LINE));
    let booted = started.elapsed();
    // The counter starts at 1 and goes up by one a line.
    let mut expect = 1;
    while expect <= 5 {
        let line = guest.wait_line(&format!("counter {expect}"), deadline, |l| {
            Guest::counter(l).is_some()
        });
        assert_eq!(
            Guest::counter(&line),
            Some(expect),
            "counter out of order; console:\n{}",
            guest.seen.join("\n")
        );
        expect += 1;
    }
    eprintln!(
        "guest booted in {:.1} s (build included), counted to 5 in {:.1} s",
        booted.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );

    let pid = guest.child.id();
    let pidfile = std::fs::read_to_string(guest.dir.path().join("qemu.pid")).unwrap();
    assert_eq!(pidfile.trim(), pid.to_string(), "QEMU's pid file");
    guest.child.kill().unwrap();
    let status = guest.child.wait().unwrap();
    assert!(!status.success(), "QEMU was killed: {status}");
    let left = guest.qemus_left();
    assert!(left.is_empty(), "QEMU left after kill: {left:?}");
}

#[test]
fn power_button_powers_the_guest_off() {
    let mut guest = Guest::start();
    let deadline = Instant::now() + BOOT_DEADLINE;
    // The guest prints its boot line once acpid holds the power button open.
    guest.wait_line("the boot line", deadline, |l| l.contains(BOOT_LINE));

    let sock = UnixStream::connect(guest.dir.path().join("qmp.sock")).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut conn = BufReader::new(sock);
    let mut greeting = String::new();
    conn.read_line(&mut greeting).unwrap();
    assert!(greeting.contains("QMP"), "QMP greeting: {greeting}");
    qmp_command(&mut conn, "qmp_capabilities");
    qmp_command(&mut conn, "system_powerdown");

    let status = guest.wait_exit(Instant::now() + Duration::from_secs(60));
    assert!(
        status.success(),
        "QEMU exit after guest poweroff: {status}; stderr: {}",
        guest.stderr()
    );
    while let Ok(line) = guest.serial.try_recv() {
        guest.seen.push(line);
    }
    assert!(
        guest.seen.iter().any(|l| l.contains("power button")),
        "the guest did not report the power button; console:\n{}",
        guest.seen.join("\n")
    );
    let left = guest.qemus_left();
    assert!(left.is_empty(), "QEMU left after poweroff: {left:?}");
}

/// The guest's number on a "resumed from N" line.
fn resumed_from(line: &str) -> Option<u64> {
    line.split_once("resumed from ")?.1.trim().parse().ok()
}

#[test]
fn a_guest_with_a_counter_disk_resumes_from_the_last_counter_it_printed() {
    let disk_dir = tempfile::tempdir().unwrap();
    let disk = disk_dir.path().join("counter.img");
    std::fs::File::create(&disk)
        .unwrap()
        .set_len(16 << 20)
        .unwrap();
    let mut guest = Guest::start_in(tempfile::tempdir().unwrap(), Some(&disk));
    let deadline = Instant::now() + BOOT_DEADLINE;
    let line = guest.wait_line("resumed from", deadline, |l| resumed_from(l).is_some());
    assert_eq!(resumed_from(&line), Some(0), "a blank disk");
    let mut last = 0;
    while last < 10 {
        let line = guest.wait_line("a counter", deadline, |l| Guest::counter(l).is_some());
        last = Guest::counter(&line).unwrap();
    }
    // Killed as a crash would: every counter it printed is on the disk.
    guest.child.kill().unwrap();
    guest.child.wait().unwrap();
    while let Ok(line) = guest.serial.recv_timeout(Duration::from_secs(5)) {
        if let Some(n) = Guest::counter(&line) {
            last = last.max(n);
        }
    }
    let mut again = Guest::start_in(tempfile::tempdir().unwrap(), Some(&disk));
    let deadline = Instant::now() + BOOT_DEADLINE;
    let line = again.wait_line("resumed from", deadline, |l| resumed_from(l).is_some());
    let resumed = resumed_from(&line).unwrap();
    assert!(resumed >= last, "resumed from {resumed}, printed {last}");
    let line = again.wait_line("a counter", deadline, |l| Guest::counter(l).is_some());
    assert_eq!(Guest::counter(&line), Some(resumed + 1));
}
