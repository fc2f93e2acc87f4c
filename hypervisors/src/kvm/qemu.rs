//! What this node's QEMU binaries are, and the workarounds their versions
//! need.
//!
//! # Lost writes in live migrations under TCG (QEMU before 9.0)
//!
//! QEMU's migration syncs the dirty-page bitmap of each RAM block; for a
//! block whose size is a multiple of 64 pages (256 KiB) it takes a fast
//! path that clears the bits a word at a time. Before QEMU 9.0 (upstream
//! "physmem: Fix migration dirty bitmap coherency with TCG memory access",
//! 2024) that fast path forgot to re-arm TCG's TLB entries, which only
//! mark a page dirty on the first write through them. A guest page written
//! through a TLB entry filled before a sync is then never sent again: the
//! target gets a stale copy of it. Debian bookworm's QEMU 7.2 has the bug.
//!
//! Guests under TCG (`kvm_flag=disabled`) then crash at random after a
//! live migration: kernel oopses at address 0x1 in a woken kthread, hangs,
//! or reboots when the oops panics. Comparing the source's and the
//! target's RAM after a migration (both paused) showed 1 differing page in
//! about one migration in ten on a loaded machine.
//!
//! Under KVM the dirty log comes from the kernel and the bug does not
//! apply. Under TCG with an affected QEMU, the guest's RAM is made 8 KiB
//! larger than `maxmem`, so that its block is not a multiple of 256 KiB
//! and every sync takes the per-page path, which does re-arm the TLB.
//! (8 KiB: QEMU rounds `-m` up to 8 KiB.)

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use tracing::warn;

use super::params::{KvmFlag, KvmParams};

/// RAM added to a TCG guest of an affected QEMU (see the module's doc).
pub const TCG_RAM_PAD_KIB: u64 = 8;

/// The first QEMU release whose TCG migrations keep every write.
const FIXED_IN: (u32, u32) = (9, 0);

/// `major.minor` from `qemu-system-* --version` output
/// ("QEMU emulator version 7.2.22 (Debian ...)").
pub fn parse_version(text: &str) -> Option<(u32, u32)> {
    let rest = text.split("version ").nth(1)?;
    let mut parts = rest.split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// Versions of QEMU binaries, asked once per binary.
#[derive(Debug, Default)]
pub struct Versions {
    known: Mutex<HashMap<PathBuf, Option<(u32, u32)>>>,
}

impl Versions {
    /// `binary`'s version, or `None` when it does not say.
    pub fn of(&self, binary: &Path) -> Option<(u32, u32)> {
        let mut known = self.known.lock().unwrap_or_else(|p| p.into_inner());
        *known.entry(binary.to_path_buf()).or_insert_with(|| {
            let version = Command::new(binary)
                .arg("--version")
                .output()
                .ok()
                .and_then(|out| parse_version(&String::from_utf8_lossy(&out.stdout)));
            if version.is_none() {
                warn!(binary = %binary.display(), "cannot tell the QEMU version");
            }
            version
        })
    }

    /// The RAM padding (KiB) a guest started now with `params` needs.
    pub fn ram_pad_kib(&self, binary: &Path, params: &KvmParams) -> u64 {
        match params.kvm_flag {
            KvmFlag::Enabled => 0,
            // An unknown version counts as affected: 8 KiB cost little.
            KvmFlag::Disabled => match self.of(binary) {
                Some(v) if v >= FIXED_IN => 0,
                _ => TCG_RAM_PAD_KIB,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_read_from_qemus_banner() {
        assert_eq!(
            parse_version("QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)\n"),
            Some((7, 2))
        );
        assert_eq!(
            parse_version("QEMU emulator version 10.0.2 (Debian 1:10.0.2+ds-2)"),
            Some((10, 0))
        );
        assert_eq!(parse_version("QEMU emulator version 9.1.0"), Some((9, 1)));
        assert_eq!(parse_version("not qemu"), None);
    }

    #[test]
    fn only_tcg_guests_of_old_qemus_are_padded() {
        let versions = Versions::default();
        let fake = |v: Option<(u32, u32)>, name: &str| {
            let path = PathBuf::from(name);
            versions.known.lock().unwrap().insert(path.clone(), v);
            path
        };
        let old = fake(Some((7, 2)), "/qemu-7.2");
        let new = fake(Some((9, 0)), "/qemu-9.0");
        let unknown = fake(None, "/qemu-unknown");
        let params = |flag: &str| {
            let hv = [("kvm_flag".to_string(), serde_json::json!(flag))]
                .into_iter()
                .collect();
            KvmParams::parse(&hv).unwrap()
        };
        let tcg = params("disabled");
        let kvm = params("enabled");
        assert_eq!(versions.ram_pad_kib(&old, &tcg), TCG_RAM_PAD_KIB);
        assert_eq!(versions.ram_pad_kib(&unknown, &tcg), TCG_RAM_PAD_KIB);
        assert_eq!(versions.ram_pad_kib(&new, &tcg), 0);
        assert_eq!(versions.ram_pad_kib(&old, &kvm), 0);
    }
}
