//! The RAPI backend (`-m CLUSTER`): the cluster as a RAPI server reports
//! it, read as Ganeti's htools read it: `/2/groups?bulk=1`,
//! `/2/nodes?bulk=1`, `/2/instances?bulk=1` and `/2/info` over HTTPS on
//! port 5080 (`-m host`, `-m host:port`, `-m https://host:port`), without
//! checking the server's certificate, as Ganeti's htools do not; or, with
//! `-m file://DIR`, the same answers saved as `groups.json`, `nodes.json`,
//! `instances.json` and `info.json` in `DIR` (Ganeti's offline test data).
//!
//! The answers are turned into the LUXI backend's query rows, so both
//! backends build the cluster the same way.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use serde_json::{json, Map, Value};

use super::luxi::{from_answers, GROUP_FIELDS, INSTANCE_FIELDS, NODE_FIELDS};
use crate::error::{Error, Result};
use crate::model::Cluster;

/// RAPI's port.
pub const RAPI_PORT: u16 = 5080;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
const QUERY_TIMEOUT: Duration = Duration::from_secs(60);
/// Largest answer read (bytes).
const MAX_ANSWER: usize = 512 * 1024 * 1024;

/// The four answers the backend reads.
#[derive(Debug, Clone)]
pub struct Answers {
    pub groups: String,
    pub nodes: String,
    pub instances: String,
    pub info: String,
}

/// Where a RAPI server is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub tls: bool,
    pub host: String,
    pub port: u16,
}

/// Reads `-m`'s argument: `host` (HTTPS on 5080), `host:port`,
/// `[v6addr]:port`, or a URL `https://host[:port]` (`http://` for a
/// server run with `--no-ssl`).
pub fn endpoint(master: &str) -> Result<Endpoint> {
    let bad = || Error::Invalid(format!("invalid RAPI server '{master}'"));
    let (tls, rest) = if let Some(r) = master.strip_prefix("https://") {
        (true, r)
    } else if let Some(r) = master.strip_prefix("http://") {
        (false, r)
    } else {
        (true, master)
    };
    let rest = rest.trim_end_matches('/');
    let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
        let (h, after) = v6.split_once(']').ok_or_else(bad)?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().map_err(|_| bad())?,
            None if after.is_empty() => RAPI_PORT,
            None => return Err(bad()),
        };
        (h.to_string(), port)
    } else if rest.matches(':').count() > 1 {
        // A bare IPv6 address.
        (rest.to_string(), RAPI_PORT)
    } else {
        match rest.split_once(':') {
            Some((h, p)) => (h.to_string(), p.parse().map_err(|_| bad())?),
            None => (rest.to_string(), RAPI_PORT),
        }
    };
    if host.is_empty() {
        return Err(bad());
    }
    Ok(Endpoint { tls, host, port })
}

/// Accepts any server certificate (Ganeti's htools do not verify RAPI's
/// self-signed certificate either); handshake signatures are checked.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn tls_config() -> Result<Arc<ClientConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Invalid(format!("TLS configuration: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The position just after the header of an HTTP answer, if complete.
fn header_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4)
}

/// Decodes a chunked body; `None` while it is incomplete.
fn dechunk(mut body: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = body.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&body[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        body = &body[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        if body.len() < size + 2 {
            return None;
        }
        out.extend_from_slice(&body[..size]);
        body = &body[size + 2..];
    }
}

/// The status and body of an answer, once `buf` holds all of it.
fn parse_answer(buf: &[u8], at_eof: bool) -> Option<Result<(u16, Vec<u8>)>> {
    let end = header_end(buf)?;
    let head = String::from_utf8_lossy(&buf[..end]);
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok());
    let Some(status) = status else {
        return Some(Err(Error::Invalid(format!(
            "invalid HTTP answer: {}",
            head.lines().next().unwrap_or_default()
        ))));
    };
    let header = |name: &str| {
        head.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    };
    let body = &buf[end..];
    if header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        return dechunk(body).map(|b| Ok((status, b)));
    }
    match header("content-length").and_then(|v| v.parse::<usize>().ok()) {
        Some(n) if body.len() >= n => Some(Ok((status, body[..n].to_vec()))),
        Some(_) => None,
        None => at_eof.then(|| Ok((status, body.to_vec()))),
    }
}

/// Reads one answer from `stream`.
fn read_answer(stream: &mut impl Read, what: &str) -> Result<(u16, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 64 * 1024];
    loop {
        let n = match stream.read(&mut chunk) {
            Ok(n) => n,
            // A server that closes without TLS close_notify.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => 0,
            Err(e) => return Err(Error::Invalid(format!("{what}: reading the answer: {e}"))),
        };
        buf.extend_from_slice(&chunk[..n]);
        if let Some(r) = parse_answer(&buf, n == 0) {
            return r;
        }
        if n == 0 {
            return Err(Error::Invalid(format!("{what}: the answer ended early")));
        }
        if buf.len() > MAX_ANSWER {
            return Err(Error::Invalid(format!("{what}: the answer is too large")));
        }
    }
}

/// `GET path` on `ep`; the body of a 200 answer.
pub fn get(ep: &Endpoint, path: &str) -> Result<String> {
    let url = format!(
        "{}://{}:{}{path}",
        if ep.tls { "https" } else { "http" },
        ep.host,
        ep.port
    );
    let fail = |e: String| Error::Invalid(format!("Curl error for '{url}', error {e}"));
    let addr = (ep.host.as_str(), ep.port)
        .to_socket_addrs()
        .map_err(|e| fail(e.to_string()))?
        .next()
        .ok_or_else(|| fail("no address".into()))?;
    let tcp =
        TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT).map_err(|e| fail(e.to_string()))?;
    tcp.set_read_timeout(Some(QUERY_TIMEOUT))
        .and_then(|()| tcp.set_write_timeout(Some(QUERY_TIMEOUT)))
        .map_err(|e| fail(e.to_string()))?;
    let host_header = if ep.host.contains(':') {
        format!("[{}]:{}", ep.host, ep.port)
    } else {
        format!("{}:{}", ep.host, ep.port)
    };
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {host_header}\r\nAccept: application/json\r\nUser-Agent: ganeti-rs htools\r\nConnection: close\r\n\r\n"
    );
    let (status, body) = if ep.tls {
        let name = match ep.host.parse::<std::net::IpAddr>() {
            Ok(ip) => ServerName::IpAddress(ip.into()),
            Err(_) => ServerName::try_from(ep.host.clone()).map_err(|e| fail(e.to_string()))?,
        };
        let conn =
            rustls::ClientConnection::new(tls_config()?, name).map_err(|e| fail(e.to_string()))?;
        let mut s = rustls::StreamOwned::new(conn, tcp);
        s.write_all(request.as_bytes())
            .and_then(|()| s.flush())
            .map_err(|e| fail(e.to_string()))?;
        read_answer(&mut s, &url)?
    } else {
        let mut s = tcp;
        s.write_all(request.as_bytes())
            .map_err(|e| fail(e.to_string()))?;
        read_answer(&mut s, &url)?
    };
    let body = String::from_utf8(body).map_err(|_| fail("the answer is not UTF-8".into()))?;
    if status != 200 {
        return Err(fail(format!("HTTP {status}: {body}")));
    }
    Ok(body)
}

/// The four answers from a server or a directory (`file://DIR`).
pub fn read(source: &str) -> Result<Answers> {
    if let Some(dir) = source.strip_prefix("file://") {
        let file = |name: &str| {
            let p = Path::new(dir).join(name);
            std::fs::read_to_string(&p)
                .map_err(|e| Error::Invalid(format!("cannot read {}: {e}", p.display())))
        };
        return Ok(Answers {
            groups: file("groups.json")?,
            nodes: file("nodes.json")?,
            instances: file("instances.json")?,
            info: file("info.json")?,
        });
    }
    let ep = endpoint(source)?;
    Ok(Answers {
        groups: get(&ep, "/2/groups?bulk=1")?,
        nodes: get(&ep, "/2/nodes?bulk=1")?,
        instances: get(&ep, "/2/instances?bulk=1")?,
        info: get(&ep, "/2/info")?,
    })
}

fn list(text: &str, what: &str) -> Result<Vec<Map<String, Value>>> {
    let v: Value = serde_json::from_str(text)
        .map_err(|e| Error::parse(format!("{what} data"), e.to_string()))?;
    v.as_array()
        .ok_or_else(|| Error::parse(format!("{what} data"), "not a list"))?
        .iter()
        .map(|o| {
            o.as_object()
                .cloned()
                .ok_or_else(|| Error::parse(format!("{what} data"), "an entry is not a dict"))
        })
        .collect()
}

/// A query answer (`{"data": [[[status, value], ...], ...]}`) of these rows.
fn as_query(rows: Vec<Vec<Value>>) -> Value {
    Value::Array(
        rows.into_iter()
            .map(|r| {
                Value::Array(
                    r.into_iter()
                        .map(|v| {
                            if v.is_null() {
                                json!([2, null])
                            } else {
                                json!([0, v])
                            }
                        })
                        .collect(),
                )
            })
            .collect(),
    )
}

fn key(o: &Map<String, Value>, k: &str) -> Value {
    o.get(k).cloned().unwrap_or(Value::Null)
}

fn sub(o: &Map<String, Value>, dict: &str, k: &str) -> Value {
    o.get(dict)
        .and_then(|d| d.get(k))
        .cloned()
        .unwrap_or(Value::Null)
}

/// Builds the cluster from the four answers.
pub fn parse(a: &Answers) -> Result<Cluster> {
    let groups: Vec<Vec<Value>> = list(&a.groups, "group")?
        .iter()
        .map(|g| GROUP_FIELDS.iter().map(|f| key(g, f)).collect())
        .collect();
    let nodes: Vec<Vec<Value>> = list(&a.nodes, "node")?
        .iter()
        .map(|n| {
            NODE_FIELDS
                .iter()
                .map(|f| match *f {
                    "ndp/spindle_count" => sub(n, "ndparams", "spindle_count"),
                    "ndp/exclusive_storage" => sub(n, "ndparams", "exclusive_storage"),
                    "ndp/cpu_speed" => sub(n, "ndparams", "cpu_speed"),
                    f => key(n, f),
                })
                .collect()
        })
        .collect();
    let instances: Vec<Vec<Value>> = list(&a.instances, "instance")?
        .iter()
        .map(|i| {
            INSTANCE_FIELDS
                .iter()
                .map(|f| match *f {
                    // The running memory when the instance runs, as Ganeti
                    // reads it over RAPI; else the configured one.
                    "be/memory" => match i.get("oper_ram") {
                        Some(v @ Value::Number(_)) => v.clone(),
                        _ => match sub(i, "beparams", "memory") {
                            Value::Null => sub(i, "beparams", "maxmem"),
                            m => m,
                        },
                    },
                    "be/vcpus" => sub(i, "beparams", "vcpus"),
                    "be/auto_balance" => sub(i, "beparams", "auto_balance"),
                    "be/spindle_use" => sub(i, "beparams", "spindle_use"),
                    "forthcoming" => i.get("forthcoming").cloned().unwrap_or(json!(false)),
                    f => key(i, f),
                })
                .collect()
        })
        .collect();
    let info: Value = serde_json::from_str(&a.info)
        .map_err(|e| Error::parse("cluster info".to_string(), e.to_string()))?;
    from_answers(
        &json!({"data": as_query(groups)}),
        &json!({"data": as_query(nodes)}),
        &json!({"data": as_query(instances)}),
        &info,
    )
}

/// Loads the cluster from `-m`'s argument.
pub fn load(source: &str) -> Result<Cluster> {
    parse(&read(source)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_are_named_as_ganeti_names_them() {
        let ep = |s| endpoint(s).unwrap();
        assert_eq!(
            ep("cluster.example.com"),
            Endpoint {
                tls: true,
                host: "cluster.example.com".into(),
                port: 5080
            }
        );
        assert_eq!(ep("127.0.0.1:6080").port, 6080);
        assert_eq!(
            ep("http://10.0.0.1:8080/"),
            Endpoint {
                tls: false,
                host: "10.0.0.1".into(),
                port: 8080
            }
        );
        assert_eq!(ep("[::1]:5081").host, "::1");
        assert_eq!(ep("::1").port, 5080);
        assert!(endpoint("host:port").is_err());
        assert!(endpoint("https://").is_err());
    }

    #[test]
    fn answers_with_a_length_chunks_or_an_end() {
        let a = b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n[1,2";
        assert!(parse_answer(&a[..a.len() - 1], false).is_none());
        assert_eq!(
            parse_answer(a, false).unwrap().unwrap(),
            (200, b"[1,2".to_vec())
        );
        let c =
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n[1\r\n2\r\n,2\r\n0\r\n\r\n";
        assert_eq!(
            parse_answer(c, false).unwrap().unwrap(),
            (200, b"[1,2".to_vec())
        );
        let e = b"HTTP/1.0 404 Not Found\r\n\r\n{}";
        assert!(parse_answer(e, false).is_none());
        assert_eq!(
            parse_answer(e, true).unwrap().unwrap(),
            (404, b"{}".to_vec())
        );
    }

    #[test]
    fn rapi_dicts_become_the_cluster() {
        let a = Answers {
            groups: json!([{"uuid": "g1", "name": "default", "alloc_policy": "preferred",
                            "ipolicy": null, "tags": []}])
            .to_string(),
            nodes: json!([{"name": "n1", "mtotal": 4096, "mnode": 0, "mfree": 3072, "dtotal": 1000,
                           "dfree": 900, "ctotal": 4, "cnos": 0, "offline": false, "drained": false,
                           "vm_capable": true, "group.uuid": "g1", "tags": [], "sptotal": 0,
                           "spfree": 0, "ndparams": {"spindle_count": 1, "exclusive_storage": false,
                           "cpu_speed": 1.0}}])
            .to_string(),
            instances: json!([{"name": "i1", "disk_usage": 100, "oper_ram": null,
                               "beparams": {"memory": 512, "maxmem": 512, "vcpus": 2,
                                            "auto_balance": true, "spindle_use": 1},
                               "status": "ADMIN_down", "pnode": "n1", "snodes": [], "tags": ["t"],
                               "disk_template": "file", "disk.sizes": [100], "disk.spindles": [null]}])
            .to_string(),
            info: json!({"master": "n1", "tags": ["c"], "default_hypervisor": "fake"}).to_string(),
        };
        let c = parse(&a).unwrap();
        assert_eq!(c.nodes[0].name, "n1");
        assert!(c.nodes[0].is_master);
        assert_eq!(c.instances[0].name, "i1");
        assert_eq!(c.instances[0].mem, 512);
        assert_eq!(c.tags, ["c"]);
    }
}
