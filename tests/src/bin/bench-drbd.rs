//! Benchmark of `drbd` disks against a local file, on this machine (two
//! node roots on two loopback addresses, real storage daemons):
//!
//! - 4 KiB synchronous writes (a write, then a flush, one at a time): the
//!   latency of a local file (`pwrite` + `fdatasync`, what QEMU does for a
//!   guest's synchronous write to a `file` disk) and of a `drbd` disk (an
//!   NBD write and flush with TLS to the primary's storage daemon, which
//!   copies the write to the secondary before it answers: what the guest's
//!   QEMU does), and their ratio;
//! - sequential writes of 1 MiB, flushed at the end: MiB/s, both;
//! - the sync of a 1 GiB disk full of data to a new secondary, and the
//!   resync of what a secondary missed while its daemon was down: MiB/s.
//!
//! It prints the figures and the design goals; it fails nothing.
//! `BENCH_DRBD_OPS` (default 2000) sets the number of 4 KiB writes,
//! `BENCH_DRBD_SIZE_MIB` (default 1024) the size of the synced disk.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use objects::paths::Paths;
use rpc::storage::{DrbdEndpoint, DrbdLink};
use storage::drbd::{self, DrbdDevice};
use storage::{DiskMode, DiskSpec, DiskTemplate, StorageContext};

const MIB: u64 = 1 << 20;

struct Node {
    _root: tempfile::TempDir,
    ctx: StorageContext,
    name: String,
    ip: Ipv4Addr,
}

impl Drop for Node {
    fn drop(&mut self) {
        storage::testing::kill_drbd_daemons(self.ctx.paths());
    }
}

fn node(k: u8, ca: &rpc::tls::ClusterCa) -> Result<Node> {
    // Under /var/tmp: a disk, not a memory file system.
    let root = tempfile::Builder::new()
        .prefix("bench-drbd-")
        .tempdir_in("/var/tmp")?;
    let paths = Paths::new(root.path());
    let name = format!("node{k}");
    let ip = Ipv4Addr::new(127, 0, 77, k);
    rpc::tls::write_cluster_ca(&paths, ca, false)?;
    rpc::tls::write_node_cert(&paths, &rpc::tls::create_node_cert(ca, &name, ip.into())?)?;
    let ctx = StorageContext::new(
        paths.clone(),
        paths.file_storage_dir(),
        paths.shared_file_storage_dir(),
    )
    .with_node_name(&name);
    Ok(Node {
        _root: root,
        ctx,
        name,
        ip,
    })
}

fn disk(a: &Node, b: &Node, uuid: &str, size_mib: u64) -> Result<DiskSpec> {
    let port = loop {
        let l = TcpListener::bind((a.ip, 0))?;
        let port = l.local_addr()?.port();
        if TcpListener::bind((b.ip, port)).is_ok() {
            break port;
        }
    };
    Ok(DiskSpec {
        uuid: uuid.into(),
        index: 0,
        size: size_mib,
        dev_type: DiskTemplate::Drbd,
        logical_id: None,
        mode: DiskMode::Rw,
        name: None,
        params: Default::default(),
        children: Vec::new(),
        drbd: Some(DrbdLink {
            nodes: [
                DrbdEndpoint {
                    node: a.name.clone(),
                    ip: a.ip.to_string(),
                },
                DrbdEndpoint {
                    node: b.name.clone(),
                    ip: b.ip.to_string(),
                },
            ],
            port,
        }),
    })
}

fn data_file(n: &Node, d: &DiskSpec) -> std::path::PathBuf {
    n.ctx
        .file_storage_dir()
        .join("bench")
        .join(format!("{}_data", d.uuid))
}

/// Waits (supervising both nodes) until both copies are in sync.
fn wait_in_sync(a: &Node, b: &Node, d: &DiskSpec) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(3600);
    loop {
        drbd::supervise(&a.ctx);
        drbd::supervise(&b.ctx);
        let done = [a, b].iter().all(|n| {
            DrbdDevice::open(&n.ctx, "bench", d)
                .and_then(|dev| dev.status())
                .ok()
                .flatten()
                .is_some_and(|s| !s.is_degraded && s.sync_percent.is_none())
        });
        if done {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("the disk did not sync within an hour");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A minimal NBD client (fixed newstyle, TLS, simple replies).
struct Nbd {
    s: rustls::StreamOwned<rustls::ClientConnection, TcpStream>,
    handle: u64,
}

const IHAVEOPT: u64 = 0x4948_4156_454F_5054;
const OPT_REPLY: u64 = 0x0003_e889_0455_65a9;

fn opt(tcp: &mut impl Write, option: u32, data: &[u8]) -> Result<()> {
    let mut m = Vec::new();
    m.extend(IHAVEOPT.to_be_bytes());
    m.extend(option.to_be_bytes());
    m.extend((data.len() as u32).to_be_bytes());
    m.extend(data);
    tcp.write_all(&m)?;
    tcp.flush()?;
    Ok(())
}

/// Reads option replies until the final one (ACK); fails on an error.
fn opt_replies(r: &mut impl Read) -> Result<()> {
    loop {
        let mut h = [0u8; 20];
        r.read_exact(&mut h)?;
        let magic = u64::from_be_bytes(h[0..8].try_into()?);
        let kind = u32::from_be_bytes(h[12..16].try_into()?);
        let len = u32::from_be_bytes(h[16..20].try_into()?) as usize;
        let mut data = vec![0u8; len];
        r.read_exact(&mut data)?;
        if magic != OPT_REPLY {
            bail!("bad NBD option reply");
        }
        match kind {
            1 => return Ok(()),
            k if k & 0x8000_0000 != 0 => {
                bail!(
                    "NBD option refused ({k:#x}): {}",
                    String::from_utf8_lossy(&data)
                )
            }
            _ => {}
        }
    }
}

impl Nbd {
    fn connect(paths: &Paths, node: &str, ip: Ipv4Addr, port: u16, export: &str) -> Result<Nbd> {
        let mut tcp = TcpStream::connect((ip, port))?;
        tcp.set_nodelay(true)?;
        let mut hello = [0u8; 18];
        tcp.read_exact(&mut hello)?;
        if &hello[0..8] != b"NBDMAGIC" {
            bail!("not an NBD server");
        }
        // Fixed newstyle, no zeroes.
        tcp.write_all(&3u32.to_be_bytes())?;
        opt(&mut tcp, 5, &[])?; // STARTTLS
        opt_replies(&mut tcp)?;
        let mut config = (*rpc::tls::client_config(paths)?).clone();
        config.alpn_protocols.clear();
        let name = rustls::pki_types::ServerName::try_from(node.to_string())?;
        let conn = rustls::ClientConnection::new(Arc::new(config), name)?;
        let mut s = rustls::StreamOwned::new(conn, tcp);
        let mut go = Vec::new();
        go.extend((export.len() as u32).to_be_bytes());
        go.extend(export.as_bytes());
        go.extend(0u16.to_be_bytes());
        opt(&mut s, 7, &go)?; // GO
        opt_replies(&mut s)?;
        Ok(Nbd { s, handle: 0 })
    }

    fn request(&mut self, kind: u16, offset: u64, data: &[u8], len: u32) -> Result<()> {
        self.handle += 1;
        let mut m = Vec::with_capacity(28 + data.len());
        m.extend(0x2560_9513u32.to_be_bytes());
        m.extend(0u16.to_be_bytes());
        m.extend(kind.to_be_bytes());
        m.extend(self.handle.to_be_bytes());
        m.extend(offset.to_be_bytes());
        m.extend(len.to_be_bytes());
        m.extend(data);
        self.s.write_all(&m)?;
        self.s.flush()?;
        let mut r = [0u8; 16];
        self.s.read_exact(&mut r)?;
        let err = u32::from_be_bytes(r[4..8].try_into()?);
        if err != 0 {
            bail!("NBD request failed with error {err}");
        }
        Ok(())
    }

    fn write(&mut self, offset: u64, data: &[u8]) -> Result<()> {
        self.request(1, offset, data, data.len() as u32)
    }

    fn flush(&mut self) -> Result<()> {
        self.request(3, 0, &[], 0)
    }
}

struct Latency {
    mean: Duration,
    p50: Duration,
    p99: Duration,
}

fn latency(mut samples: Vec<Duration>) -> Latency {
    samples.sort();
    let n = samples.len().max(1);
    Latency {
        mean: samples.iter().sum::<Duration>() / n as u32,
        p50: samples.get(n / 2).copied().unwrap_or_default(),
        p99: samples.get(n * 99 / 100).copied().unwrap_or_default(),
    }
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn print_latency(what: &str, l: &Latency) {
    println!(
        "  {what:<28} mean {:>7.1} us   p50 {:>7.1} us   p99 {:>7.1} us",
        us(l.mean),
        us(l.p50),
        us(l.p99)
    );
}

fn block(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len / 8)
        .flat_map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()
        })
        .collect()
}

fn local_file(path: &Path, ops: usize, seq_mib: u64) -> Result<(Latency, f64)> {
    std::fs::create_dir_all(path.parent().context("a parent directory")?)?;
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(path)?;
    f.set_len(seq_mib * MIB)?;
    let buf = block(1, 4096);
    let mut samples = Vec::with_capacity(ops);
    for i in 0..ops as u64 {
        let t = Instant::now();
        f.write_all_at(&buf, (i % 4096) * 4096)?;
        f.sync_data()?;
        samples.push(t.elapsed());
    }
    let big = block(2, MIB as usize);
    let t = Instant::now();
    for i in 0..seq_mib {
        f.write_all_at(&big, i * MIB)?;
    }
    f.sync_data()?;
    let mibs = seq_mib as f64 / t.elapsed().as_secs_f64();
    Ok((latency(samples), mibs))
}

fn drbd_disk(nbd: &mut Nbd, ops: usize, seq_mib: u64) -> Result<(Latency, f64)> {
    let buf = block(1, 4096);
    let mut samples = Vec::with_capacity(ops);
    for i in 0..ops as u64 {
        let t = Instant::now();
        nbd.write((i % 4096) * 4096, &buf)?;
        nbd.flush()?;
        samples.push(t.elapsed());
    }
    let big = block(2, MIB as usize);
    let t = Instant::now();
    for i in 0..seq_mib {
        nbd.write(i * MIB, &big)?;
    }
    nbd.flush()?;
    let mibs = seq_mib as f64 / t.elapsed().as_secs_f64();
    Ok((latency(samples), mibs))
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() -> Result<()> {
    let ops = env_u64("BENCH_DRBD_OPS", 2000) as usize;
    let size = env_u64("BENCH_DRBD_SIZE_MIB", 1024);
    let seq = 256.min(size);
    let ca = rpc::tls::create_cluster_ca("bench.example.com")?;
    let a = node(1, &ca)?;
    let b = node(2, &ca)?;

    println!("drbd benchmark: two nodes on 127.0.77.1 and .2, volumes in /var/tmp");
    let (local, local_seq) =
        local_file(&a.ctx.file_storage_dir().join("local/file.disk0"), ops, seq)?;

    // The first sync of a disk full of data.
    let d = disk(&a, &b, "bench-sync", size)?;
    let data = data_file(&a, &d);
    std::fs::create_dir_all(data.parent().context("a parent directory")?)?;
    {
        let f = std::fs::File::create(&data)?;
        f.set_len(size * MIB)?;
        for i in 0..size {
            f.write_all_at(&block(10 + i, MIB as usize), i * MIB)?;
        }
        f.sync_all()?;
    }
    DrbdDevice::open(&b.ctx, "bench", &d)?.create(false)?;
    let t = Instant::now();
    DrbdDevice::open(&a.ctx, "bench", &d)?.create(true)?;
    wait_in_sync(&a, &b, &d)?;
    let full_sync = size as f64 / t.elapsed().as_secs_f64();

    // Writes through the primary's daemon, as the guest's QEMU makes them.
    let port = d.drbd.as_ref().map(|l| l.port).context("a port")?;
    let mut nbd = Nbd::connect(a.ctx.paths(), &a.name, a.ip, port, &d.uuid)?;
    let (repl, repl_seq) = drbd_disk(&mut nbd, ops, seq)?;

    // The secondary's daemon dies; the primary writes; it comes back.
    let pid: i32 = std::fs::read_to_string(drbd::DrbdDirs::new(b.ctx.paths()).pid_file(&d.uuid))?
        .trim()
        .parse()?;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )?;
    while drbd::daemon_running(&drbd::DrbdDirs::new(b.ctx.paths()), &d.uuid) {
        std::thread::sleep(Duration::from_millis(10));
    }
    let missed = seq;
    let big = block(3, MIB as usize);
    for i in 0..missed {
        nbd.write(i * MIB, &big)?;
    }
    nbd.flush()?;
    drop(nbd);
    DrbdDevice::open(&b.ctx, "bench", &d)?.assemble(false)?;
    let t = Instant::now();
    wait_in_sync(&a, &b, &d)?;
    let resync = missed as f64 / t.elapsed().as_secs_f64();

    for n in [&a, &b] {
        DrbdDevice::open(&n.ctx, "bench", &d)?.remove()?;
    }

    println!("4 KiB synchronous writes ({ops}, one at a time):");
    print_latency("local file", &local);
    print_latency("drbd (NBD+TLS, replicated)", &repl);
    let ratio = repl.mean.as_secs_f64() / local.mean.as_secs_f64().max(1e-9);
    println!("  drbd / local (mean): {ratio:.2}x   (goal: at most 2x)");
    println!("sequential writes of 1 MiB ({seq} MiB, then a flush):");
    println!("  local file                   {local_seq:>8.1} MiB/s");
    println!("  drbd                         {repl_seq:>8.1} MiB/s");
    println!("  drbd / local: {:.2}", repl_seq / local_seq.max(1e-9));
    println!("sync of a {size} MiB disk full of data to its secondary:");
    println!("  {full_sync:>8.1} MiB/s   (goal: 200 MiB/s or more)");
    println!("resync of {missed} MiB a secondary missed while its daemon was down:");
    println!("  {resync:>8.1} MiB/s   (only what it missed is copied)");
    Ok(())
}
