//! QEMU's command line for an instance: from its launch spec (the virtual
//! hardware, the same on every node) and the node's own files and taps.

use std::path::{Path, PathBuf};

use crate::error::{HypervisorError, Result};
use crate::kvm::params::{KvmFlag, KvmParams};
use crate::kvm::process::qmp_arg;
use crate::kvm::runtime::{DevSlot, LaunchSpec};
use crate::NicMode;

/// Where the node keeps this QEMU's files.
#[derive(Debug, Clone)]
pub struct NodeFiles {
    pub pidfile: PathBuf,
    pub qmp: PathBuf,
    pub serial: PathBuf,
    /// Where the serial console is logged.
    pub serial_log: PathBuf,
}

/// How this QEMU starts.
#[derive(Debug, Clone, Default)]
pub struct LaunchMode {
    /// Stopped (`-S`) until a `cont`.
    pub paused: bool,
    /// Waiting for a migration on this `tcp:<ip>:<port>` address.
    pub incoming: Option<String>,
}

/// QEMU's arguments (without the binary) for `launch` on this node.
pub fn build(
    launch: &LaunchSpec,
    params: &KvmParams,
    node: &NodeFiles,
    taps: &[String],
    mode: &LaunchMode,
) -> Result<Vec<String>> {
    let mut a = Args::default();
    a.push(["-name", &launch.name]);
    if is_uuid(&launch.uuid) {
        a.push(["-uuid", &launch.uuid]);
    }
    a.push(["-daemonize"]);
    a.path("-pidfile", &node.pidfile);
    a.push(["-qmp", &qmp_arg(&node.qmp)]);
    a.push(["-monitor", "none", "-parallel", "none"]);

    match params.kvm_flag {
        KvmFlag::Enabled => a.push(["-enable-kvm"]),
        KvmFlag::Disabled => a.push(["-accel", "tcg"]),
    }
    // `-machine acpi=off` rather than the deprecated `-no-acpi`.
    let mut machine = Vec::new();
    if !params.machine_version.is_empty() {
        machine.push(params.machine_version.clone());
    }
    if !params.acpi {
        machine.push("acpi=off".to_string());
    }
    if !machine.is_empty() {
        a.push(["-machine", &machine.join(",")]);
    }
    if !params.cpu_type.is_empty() {
        a.push(["-cpu", &params.cpu_type]);
    }
    if launch.ram_pad_kib == 0 {
        a.push(["-m", &launch.maxmem.to_string()]);
    } else {
        a.push([
            "-m",
            &format!("{}k", launch.maxmem * 1024 + launch.ram_pad_kib),
        ]);
    }
    a.push(["-smp", &smp(launch.vcpus, params)]);
    if params.reboot_exits {
        a.push(["-no-reboot"]);
    }
    if params.user_shutdown {
        // The guest's power-off leaves QEMU in state "shutdown" for us to
        // see (Ganeti's user shutdown), not gone.
        a.push(["-no-shutdown"]);
    }
    a.push(["-device", "virtio-balloon-pci,id=balloon0"]);

    if params.serial_console {
        // A chardev of its own, so that what the guest prints is logged
        // even while no console is connected.
        a.push([
            "-chardev",
            &format!(
                "socket,id=serial0,path={},server=on,wait=off,logfile={},logappend=on",
                escape(&node.serial),
                escape(&node.serial_log)
            ),
        ]);
        a.push(["-serial", "chardev:serial0"]);
    } else {
        a.push(["-serial", "none"]);
    }
    display(&mut a, params)?;

    if !params.kernel_path.is_empty() {
        a.push(["-kernel", &params.kernel_path]);
        if !params.initrd_path.is_empty() {
            a.push(["-initrd", &params.initrd_path]);
        }
        let mut append = Vec::new();
        if !params.root_path.is_empty() {
            append.push(format!("root={}", params.root_path));
        }
        if !params.kernel_args.is_empty() {
            append.push(params.kernel_args.clone());
        }
        if params.serial_console {
            append.push(format!("console=ttyS0,{}", params.serial_speed));
        }
        a.push(["-append", &append.join(" ")]);
    } else {
        let boot = match params.boot_order.as_str() {
            "cdrom" => "d",
            "network" => "n",
            "floppy" => "a",
            _ => "c",
        };
        a.push(["-boot", boot]);
    }

    disks(&mut a, launch, params)?;
    nics(&mut a, launch, params, taps)?;

    if let Some(addr) = &mode.incoming {
        a.push(["-incoming", addr]);
    }
    if mode.paused {
        a.push(["-S"]);
    }
    let extra =
        shell_split(&params.kvm_extra).map_err(|reason| HypervisorError::InvalidParameter {
            name: "kvm_extra".into(),
            reason,
        })?;
    a.0.extend(extra);
    Ok(a.0)
}

#[derive(Default)]
struct Args(Vec<String>);

impl Args {
    fn push<const N: usize>(&mut self, args: [&str; N]) {
        self.0.extend(args.iter().map(|s| s.to_string()));
    }

    fn path(&mut self, flag: &str, path: &Path) {
        self.0.push(flag.to_string());
        self.0.push(path.display().to_string());
    }
}

/// A path as a QEMU option value (commas doubled).
fn escape(path: &Path) -> String {
    path.display().to_string().replace(',', ",,")
}

fn is_uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn smp(vcpus: u32, p: &KvmParams) -> String {
    let mut s = vcpus.to_string();
    for (name, v) in [
        ("cores", p.cpu_cores),
        ("threads", p.cpu_threads),
        ("sockets", p.cpu_sockets),
    ] {
        if v > 0 {
            s.push_str(&format!(",{name}={v}"));
        }
    }
    s
}

fn display(a: &mut Args, p: &KvmParams) -> Result<()> {
    let addr = p.vnc_bind_address.as_str();
    if addr.is_empty() {
        a.push(["-display", "none"]);
    } else if addr.starts_with('/') {
        a.push(["-vnc", &format!("unix:{addr}")]);
    } else if addr.parse::<std::net::IpAddr>().is_ok() {
        // The first free display from :0 on; the console asks QEMU which.
        let host = if addr.contains(':') {
            format!("[{addr}]")
        } else {
            addr.to_string()
        };
        a.push(["-vnc", &format!("{host}:0,to=99")]);
    } else {
        return Err(HypervisorError::InvalidParameter {
            name: "vnc_bind_address".into(),
            reason: format!("'{addr}' is neither an IP address nor an absolute path"),
        });
    }
    Ok(())
}

fn disks(a: &mut Args, launch: &LaunchSpec, p: &KvmParams) -> Result<()> {
    let mut scsi_controller = false;
    for (boot_index, disk) in launch.disks.iter().enumerate() {
        // QEMU's -drive separates options by commas: double them in values.
        let mut drive = match (&disk.path, &disk.uri) {
            (_, Some(uri)) if uri.starts_with("nbd://") => {
                let tls_id = format!("disk{}-tls", disk.index);
                if let Some(tls) = &disk.tls {
                    a.push([
                        "-object",
                        &format!(
                            "tls-creds-x509,id={tls_id},dir={},endpoint=client",
                            escape(&tls.creds_dir)
                        ),
                    ]);
                }
                nbd_drive(uri, disk.tls.as_ref().map(|t| (tls_id.as_str(), t))).map_err(
                    |reason| {
                        HypervisorError::Failed(format!(
                            "disk {} of instance '{}': {reason}",
                            disk.index, launch.name
                        ))
                    },
                )?
            }
            (_, Some(uri)) => format!("file={},format=raw", uri.replace(',', ",,")),
            (Some(path), None) => format!("file={},format=raw", escape(path)),
            (None, None) => {
                return Err(HypervisorError::Failed(format!(
                    "disk {} of instance '{}' has neither a path nor a URI",
                    disk.index, launch.name
                )))
            }
        };
        if p.disk_cache != "default" {
            drive.push_str(&format!(",cache={}", p.disk_cache));
        }
        if disk.mode == objects::DiskMode::Ro {
            drive.push_str(",readonly=on");
        }
        let dev = launch.disk_dev(boot_index);
        let id = format!("disk{}", dev.suffix);
        let addr = pci_addr(&dev);
        let boot = if boot_index == 0 && p.boot_order == "disk" && p.kernel_path.is_empty() {
            ",bootindex=0"
        } else {
            ""
        };
        match p.disk_type.as_str() {
            "paravirtual" => {
                a.push(["-drive", &format!("{drive},if=none,id={id}")]);
                a.push([
                    "-device",
                    &format!("virtio-blk-pci,drive={id},id={id}-dev{addr}{boot}"),
                ]);
            }
            "scsi" => {
                if !scsi_controller {
                    a.push(["-device", "virtio-scsi-pci,id=scsi0"]);
                    scsi_controller = true;
                }
                a.push(["-drive", &format!("{drive},if=none,id={id}")]);
                a.push(["-device", &format!("scsi-hd,drive={id},id={id}-dev{boot}")]);
            }
            other => {
                a.push([
                    "-drive",
                    &format!("{drive},if={other},index={}", disk.index),
                ]);
            }
        }
    }
    Ok(())
}

/// The `-drive` options of a disk served over NBD (`nbd://host:port/export`,
/// the export of a `drbd` disk's storage daemon), with TLS when `tls`
/// names the credentials object and the server's expected name.
fn nbd_drive(
    uri: &str,
    tls: Option<(&str, &crate::DiskTls)>,
) -> std::result::Result<String, String> {
    let rest = uri
        .strip_prefix("nbd://")
        .ok_or_else(|| format!("'{uri}' is not an nbd:// URI"))?;
    let (hostport, export) = rest
        .split_once('/')
        .ok_or_else(|| format!("'{uri}' names no export"))?;
    let (host, port) = match hostport.strip_prefix('[') {
        Some(v6) => {
            let (host, port) = v6
                .split_once("]:")
                .ok_or_else(|| format!("'{uri}' has no port"))?;
            (host, port)
        }
        None => hostport
            .rsplit_once(':')
            .ok_or_else(|| format!("'{uri}' has no port"))?,
    };
    port.parse::<u16>()
        .map_err(|_| format!("'{uri}' has an invalid port"))?;
    if host.is_empty() || export.is_empty() {
        return Err(format!("'{uri}' lacks a host or an export"));
    }
    let e = |v: &str| v.replace(',', ",,");
    let mut drive = format!(
        "driver=raw,file.driver=nbd,file.server.type=inet,file.server.host={},\
         file.server.port={port},file.export={}",
        e(host),
        e(export)
    );
    if let Some((id, t)) = tls {
        drive.push_str(&format!(
            ",file.tls-creds={id},file.tls-hostname={}",
            e(&t.hostname)
        ));
    }
    Ok(drive)
}

fn nics(a: &mut Args, launch: &LaunchSpec, p: &KvmParams, taps: &[String]) -> Result<()> {
    if taps.len() != launch.nics.len() {
        return Err(HypervisorError::Failed(format!(
            "instance '{}' has {} NICs but {} tap devices",
            launch.name,
            launch.nics.len(),
            taps.len()
        )));
    }
    let model = match p.nic_type.as_str() {
        "paravirtual" => "virtio-net-pci",
        "ne2k_isa" => "ne2k_isa",
        "i82551" | "i82557b" | "i82559er" | "e1000" | "rtl8139" | "pcnet" | "ne2k_pci" => {
            p.nic_type.as_str()
        }
        other => other,
    };
    if launch.nics.is_empty() {
        // Else QEMU makes a NIC of its own (user networking), which also
        // takes a PCI slot a NIC hotplugged later would not have on a
        // migration target.
        a.push(["-net", "none"]);
    }
    for (i, (nic, tap)) in launch.nics.iter().zip(taps).enumerate() {
        if nic.mode == NicMode::Openvswitch {
            return Err(HypervisorError::Failed(format!(
                "NIC {i} of instance '{}': openvswitch mode is not supported by the kvm hypervisor yet",
                launch.name
            )));
        }
        let dev = launch.nic_dev(i);
        let (s, addr) = (&dev.suffix, pci_addr(&dev));
        a.push([
            "-netdev",
            &format!("tap,id=net{s},ifname={tap},script=no,downscript=no"),
        ]);
        a.push([
            "-device",
            &format!("{model},netdev=net{s},mac={},id=nic{s}{addr}", nic.mac),
        ]);
    }
    Ok(())
}

/// The `-device` options placing `dev` at its pinned PCI slot, if any.
fn pci_addr(dev: &DevSlot) -> String {
    dev.addr
        .map(|a| format!(",bus=pci.0,addr=0x{a:x}"))
        .unwrap_or_default()
}

/// Splits `s` into words as a POSIX shell would: whitespace separates,
/// single quotes keep everything, double quotes keep all but `\"` and
/// `\\`, a backslash outside quotes escapes the next character.
pub fn shell_split(s: &str) -> std::result::Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err(format!("unterminated single quote in '{s}'")),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '$' | '`')) => word.push(c),
                            Some(c) => {
                                word.push('\\');
                                word.push(c);
                            }
                            None => return Err(format!("unterminated double quote in '{s}'")),
                        },
                        Some(c) => word.push(c),
                        None => return Err(format!("unterminated double quote in '{s}'")),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some(c) => word.push(c),
                    None => return Err(format!("trailing backslash in '{s}'")),
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::{AttachedDisk, HvParams, NicSpec};

    fn launch(hv: &[(&str, serde_json::Value)]) -> (LaunchSpec, KvmParams) {
        let hvparams: HvParams = hv.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
        let params = KvmParams::parse(&hvparams).unwrap();
        (
            LaunchSpec {
                name: "inst1".into(),
                uuid: "0b7c6e0a-2f3e-4a39-9f43-5b7d1d3c8e21".into(),
                maxmem: 256,
                vcpus: 2,
                hvparams,
                disks: vec![],
                nics: vec![],
                ram_pad_kib: 0,
                disk_devs: vec![],
                nic_devs: vec![],
            },
            params,
        )
    }

    fn node() -> NodeFiles {
        NodeFiles {
            pidfile: "/r/pid/inst1".into(),
            qmp: "/r/ctrl/inst1.qmp".into(),
            serial: "/r/ctrl/inst1.serial".into(),
            serial_log: "/r/log/inst1.serial".into(),
        }
    }

    fn has(args: &[String], seq: &[&str]) -> bool {
        args.windows(seq.len()).any(|w| w == seq)
    }

    #[test]
    fn a_tcg_guest_with_a_kernel_and_a_serial_console() {
        let (l, p) = launch(&[
            ("kvm_flag", json!("disabled")),
            ("kernel_path", json!("/k/vmlinuz")),
            ("initrd_path", json!("/k/initrd.img")),
            ("kernel_args", json!("panic=-1 quiet")),
            ("root_path", json!("")),
            ("cpu_cores", json!(2)),
            ("acpi", json!(false)),
            ("reboot_behavior", json!("exit")),
            ("kvm_extra", json!("-rtc 'base=utc'")),
        ]);
        let args = build(&l, &p, &node(), &[], &LaunchMode::default()).unwrap();
        for seq in [
            &["-name", "inst1"][..],
            &["-uuid", "0b7c6e0a-2f3e-4a39-9f43-5b7d1d3c8e21"],
            &["-daemonize", "-pidfile", "/r/pid/inst1"],
            &["-qmp", "unix:/r/ctrl/inst1.qmp,server=on,wait=off"],
            &["-accel", "tcg"],
            &["-m", "256"],
            &["-smp", "2,cores=2"],
            &["-machine", "acpi=off"],
            &["-no-reboot"],
            &[
                "-chardev",
                "socket,id=serial0,path=/r/ctrl/inst1.serial,server=on,wait=off,\
                 logfile=/r/log/inst1.serial,logappend=on",
            ],
            &["-serial", "chardev:serial0"],
            &["-display", "none"],
            &["-kernel", "/k/vmlinuz", "-initrd", "/k/initrd.img"],
            &["-append", "panic=-1 quiet console=ttyS0,38400"],
            &["-rtc", "base=utc"],
        ] {
            assert!(has(&args, seq), "{seq:?} missing in {args:?}");
        }
        assert!(!args.contains(&"-enable-kvm".to_string()));
        assert!(!args.contains(&"-S".to_string()));
    }

    #[test]
    fn defaults_use_kvm_and_a_kernel() {
        let (l, p) = launch(&[("machine_version", json!("pc-i440fx-7.2"))]);
        let args = build(&l, &p, &node(), &[], &LaunchMode::default()).unwrap();
        for seq in [
            &["-enable-kvm"][..],
            &["-machine", "pc-i440fx-7.2"],
            &["-kernel", "/boot/vmlinuz-3-kvmU"],
            &["-append", "root=/dev/vda1 ro console=ttyS0,38400"],
        ] {
            assert!(has(&args, seq), "{seq:?} missing in {args:?}");
        }
    }

    #[test]
    fn without_a_kernel_boot_from_disk_with_devices() {
        let (mut l, p) = launch(&[("disk_cache", json!("none")), ("kernel_path", json!(""))]);
        l.uuid = "not-a-uuid".into();
        l.disks = vec![AttachedDisk {
            index: 0,
            path: Some("/dev/xen,vg/disk0".into()),
            uri: None,
            mode: objects::DiskMode::Rw,
            tls: None,
        }];
        l.nics = vec![NicSpec {
            mac: "aa:00:00:00:00:01".into(),
            ip: None,
            mode: NicMode::Bridged,
            link: "br0".into(),
            network: None,
            uuid: None,
            name: None,
            vlan: None,
        }];
        let mode = LaunchMode {
            paused: true,
            incoming: Some("tcp:127.0.0.2:8102".into()),
        };
        let args = build(&l, &p, &node(), &["gnt0".into()], &mode).unwrap();
        for seq in [
            &["-enable-kvm"][..],
            &["-boot", "c"],
            &[
                "-drive",
                "file=/dev/xen,,vg/disk0,format=raw,cache=none,if=none,id=disk0",
            ],
            &[
                "-device",
                "virtio-blk-pci,drive=disk0,id=disk0-dev,bootindex=0",
            ],
            &["-netdev", "tap,id=net0,ifname=gnt0,script=no,downscript=no"],
            &[
                "-device",
                "virtio-net-pci,netdev=net0,mac=aa:00:00:00:00:01,id=nic0",
            ],
            &["-incoming", "tcp:127.0.0.2:8102"],
            &["-S"],
        ] {
            assert!(has(&args, seq), "{seq:?} missing in {args:?}");
        }
        assert!(!args.contains(&"-uuid".to_string()));
        assert!(!args.contains(&"-kernel".to_string()));
        // One tap per NIC, or an error.
        assert!(build(&l, &p, &node(), &[], &mode).is_err());
    }

    #[test]
    fn pinned_devices_keep_their_ids_and_pci_slots() {
        let (mut l, p) = launch(&[]);
        let disk = |index| AttachedDisk {
            index,
            path: Some(format!("/d{index}").into()),
            uri: None,
            mode: objects::DiskMode::Rw,
            tls: None,
        };
        l.disks = vec![disk(0), disk(1)];
        l.nics = vec![NicSpec {
            mac: "aa:00:00:00:00:02".into(),
            ip: None,
            mode: NicMode::Bridged,
            link: "br0".into(),
            network: None,
            uuid: None,
            name: None,
            vlan: None,
        }];
        let slot = |suffix: &str, addr| DevSlot {
            suffix: suffix.into(),
            addr: Some(addr),
            blockdev: false,
        };
        l.disk_devs = vec![slot("0", 4), slot("-932df160-7a22-4067", 0x10)];
        l.nic_devs = vec![slot("-1b2c3d4e-5f60-7182", 0x11)];
        let args = build(&l, &p, &node(), &["gnt0".into()], &LaunchMode::default()).unwrap();
        for seq in [
            &[
                "-device",
                "virtio-blk-pci,drive=disk0,id=disk0-dev,bus=pci.0,addr=0x4",
            ][..],
            &[
                "-drive",
                "file=/d1,format=raw,if=none,id=disk-932df160-7a22-4067",
            ],
            &[
                "-device",
                "virtio-blk-pci,drive=disk-932df160-7a22-4067,id=disk-932df160-7a22-4067-dev,\
                 bus=pci.0,addr=0x10",
            ],
            &[
                "-netdev",
                "tap,id=net-1b2c3d4e-5f60-7182,ifname=gnt0,script=no,downscript=no",
            ],
            &[
                "-device",
                "virtio-net-pci,netdev=net-1b2c3d4e-5f60-7182,mac=aa:00:00:00:00:02,\
                 id=nic-1b2c3d4e-5f60-7182,bus=pci.0,addr=0x11",
            ],
        ] {
            assert!(has(&args, seq), "{seq:?} missing in {args:?}");
        }
    }

    #[test]
    fn hotplugged_ids_are_ganetis_uuid_prefixes() {
        assert_eq!(
            DevSlot::hotplugged("932df160-7a22-4067-a566-7e0ca8386133").suffix,
            "-932df160-7a22-4067"
        );
    }

    #[test]
    fn a_drbd_disk_is_reached_over_nbd_with_tls() {
        let (mut l, p) = launch(&[("disk_cache", json!("none"))]);
        l.disks = vec![AttachedDisk {
            index: 0,
            path: None,
            uri: Some("nbd://127.0.0.2:11000/5f0c8a4e".into()),
            mode: objects::DiskMode::Rw,
            tls: Some(crate::DiskTls {
                creds_dir: "/r/var/run/ganeti/drbd/tls".into(),
                hostname: "node2".into(),
            }),
        }];
        let args = build(&l, &p, &node(), &[], &LaunchMode::default()).unwrap();
        for seq in [
            &[
                "-object",
                "tls-creds-x509,id=disk0-tls,dir=/r/var/run/ganeti/drbd/tls,endpoint=client",
            ][..],
            &[
                "-drive",
                "driver=raw,file.driver=nbd,file.server.type=inet,file.server.host=127.0.0.2,\
                 file.server.port=11000,file.export=5f0c8a4e,file.tls-creds=disk0-tls,\
                 file.tls-hostname=node2,cache=none,if=none,id=disk0",
            ],
        ] {
            assert!(has(&args, seq), "{seq:?} missing in {args:?}");
        }
        assert_eq!(
            nbd_drive("nbd://[::1]:10/x", None).unwrap(),
            "driver=raw,file.driver=nbd,file.server.type=inet,file.server.host=::1,\
             file.server.port=10,file.export=x"
        );
        for bad in ["nbd://h/x", "nbd://h:p/x", "nbd://h:1", "nbd://:1/x"] {
            assert!(nbd_drive(bad, None).is_err(), "{bad}");
        }
    }

    #[test]
    fn padded_ram_is_given_in_kib() {
        let (mut l, p) = launch(&[]);
        assert!(has(
            &build(&l, &p, &node(), &[], &LaunchMode::default()).unwrap(),
            &["-m", "256"]
        ));
        l.ram_pad_kib = 8;
        let args = build(&l, &p, &node(), &[], &LaunchMode::default()).unwrap();
        assert!(has(&args, &["-m", "262152k"]), "{args:?}");
    }

    #[test]
    fn vnc_binds_where_asked() {
        let (l, p) = launch(&[("vnc_bind_address", json!("127.0.0.1"))]);
        let args = build(&l, &p, &node(), &[], &LaunchMode::default()).unwrap();
        assert!(has(&args, &["-vnc", "127.0.0.1:0,to=99"]), "{args:?}");
        let (l, p) = launch(&[("vnc_bind_address", json!("not an address"))]);
        let err = build(&l, &p, &node(), &[], &LaunchMode::default()).unwrap_err();
        assert!(err.to_string().contains("vnc_bind_address"), "{err}");
    }

    #[test]
    fn shell_words() {
        assert_eq!(
            shell_split(r#" -a 'b c'  "d \"e\"" f\ g "#).unwrap(),
            vec!["-a", "b c", "d \"e\"", "f g"]
        );
        assert_eq!(shell_split("").unwrap(), Vec::<String>::new());
        assert_eq!(shell_split("''").unwrap(), vec![""]);
        assert!(shell_split("'open").is_err());
        assert!(shell_split("\"open").is_err());
    }
}
