//! The https, udp, dns and ping checks against real servers in a lab: the
//! servers run in backend be1's namespace (10.77.1.101), the checks in the
//! router's, each test in a lab of its own. Every check is shown passing,
//! and failing the way it should.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use control::health::{probe_once, BodyDigest, CheckResult, HttpGet, Probe, QType, Tls};
use viplab::{Lab, LabProcess, LabSpec};

const BACKEND: Ipv4Addr = Ipv4Addr::new(10, 77, 1, 101);
/// On the backend segment, answered by nobody.
const NOBODY: Ipv4Addr = Ipv4Addr::new(10, 77, 1, 199);
/// be1 and nobody on the backend segment's IPv6 prefix (see [`ipv6_on`]).
const BACKEND6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x77, 1, 0, 0, 0, 0x101);
const NOBODY6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x77, 1, 0, 0, 0, 0x199);
const ROUTER6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x77, 1, 0, 0, 0, 1);
const PYTHON: &str = "/usr/bin/python3";
/// Generous: the lab servers share a busy machine with other tests.
const TIMEOUT: Duration = Duration::from_millis(3000);
const READY: Duration = Duration::from_secs(20);

fn lab(test: &str) -> Lab {
    Lab::up(LabSpec {
        name: viplab::unique_name(test),
        backends: 1,
        ..LabSpec::default()
    })
    .expect("lab up")
}

/// Runs one check from the router's namespace, on a thread of its own (a
/// thread that entered a namespace stays in it).
fn check(lab: &Lab, probe: &Probe) -> CheckResult {
    std::thread::scope(|s| {
        s.spawn(|| {
            lab.enter("sw").expect("enter the router namespace");
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime")
                .block_on(probe_once(probe, TIMEOUT))
        })
        .join()
        .expect("check thread")
    })
}

fn assert_ok(r: &CheckResult, detail: &str) {
    assert!(r.ok, "check failed: {r:?}");
    assert!(r.detail.contains(detail), "{r:?} lacks {detail:?}");
}

fn assert_fails(r: &CheckResult, detail: &str) {
    assert!(!r.ok, "check passed, expected {detail:?}: {r:?}");
    assert!(r.detail.contains(detail), "{r:?} lacks {detail:?}");
}

/// Waits until `process` has written `marker` to its log.
fn wait_for_log(lab: &Lab, process: &LabProcess, marker: &str) {
    lab.wait_until(
        &format!("{} logs {marker:?}", process.what()),
        READY,
        || process.log().contains(marker),
    )
    .unwrap_or_else(|e| panic!("{e}\nlog:\n{}", process.log()));
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// A self-signed certificate for `backend.test` and 10.77.1.101 (or
/// another name), made by openssl; returns (certificate, key).
fn certificate(dir: &Path, tag: &str, name: &str) -> (PathBuf, PathBuf) {
    let conf = dir.join(format!("{tag}.cnf"));
    write(
        &conf,
        &format!(
            "[req]\ndistinguished_name = dn\nx509_extensions = ext\nprompt = no\n\
             [dn]\nCN = {name}\n\
             [ext]\nbasicConstraints = critical,CA:FALSE\nkeyUsage = digitalSignature\n\
             extendedKeyUsage = serverAuth\nsubjectAltName = DNS:{name},IP:{BACKEND}\n"
        ),
    );
    let (cert, key) = (
        dir.join(format!("{tag}.crt")),
        dir.join(format!("{tag}.key")),
    );
    let out = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args(["-nodes", "-days", "2", "-config", path_str(&conf)])
        .args(["-keyout", path_str(&key), "-out", path_str(&cert)])
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "openssl req failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (cert, key)
}

const HTTPS_SERVER: &str = r#"
import functools, http.server, ssl, sys
root, cert, key, port, sni_log = sys.argv[1:6]
def note_sni(sock, name, ctx):
    with open(sni_log, "a") as f:
        f.write((name or "-") + "\n")
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
ctx.sni_callback = note_sni
handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=root)
srv = http.server.ThreadingHTTPServer(("10.77.1.101", int(port)), handler)
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
print("listening", flush=True)
srv.serve_forever()
"#;

fn https_probe(path: &str, status: u16, digest: Option<BodyDigest>) -> Probe {
    https_probe_at(8443, path, status, digest)
}

fn https_probe_at(port: u16, path: &str, status: u16, digest: Option<BodyDigest>) -> Probe {
    Probe::Http {
        addr: SocketAddr::new(BACKEND.into(), port),
        get: HttpGet {
            path: path.into(),
            host: None,
            expect_status: status,
            digest,
            tls: Some(Tls::default()),
        },
    }
}

fn with_tls(probe: Probe, sni: Option<&str>, ca: Option<&Path>) -> Probe {
    match probe {
        Probe::Http { addr, get } => Probe::Http {
            addr,
            get: HttpGet {
                tls: Some(Tls {
                    sni: sni.map(str::to_string),
                    ca_file: ca.map(Path::to_path_buf),
                }),
                ..get
            },
        },
        other => other,
    }
}

fn last_sni(log: &Path) -> String {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .last()
        .unwrap_or_default()
        .to_string()
}

#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "lab: needs root and network namespaces; scripts/test runs it"
)]
fn https_check_against_a_tls_server() {
    let lab = lab("https");
    let dir = lab.dir().to_path_buf();
    let (cert, key) = certificate(&dir, "backend", "backend.test");
    let (other_ca, _) = certificate(&dir, "other", "other.test");
    let root = dir.join("www");
    std::fs::create_dir_all(&root).expect("web root");
    let body = "vipd backend ok\n";
    write(&root.join("health"), body);
    let sni_log = dir.join("sni.log");
    let script = dir.join("https_server.py");
    write(&script, HTTPS_SERVER);
    let server = lab
        .spawn(
            "be1",
            &[
                PYTHON,
                path_str(&script),
                path_str(&root),
                path_str(&cert),
                path_str(&key),
                "8443",
                path_str(&sni_log),
            ],
        )
        .expect("https server");
    wait_for_log(&lab, &server, "listening");

    let sha: BodyDigest = sha256_hex(body.as_bytes()).parse().expect("sha-256");
    let md5: BodyDigest = "00112233445566778899aabbccddeeff".parse().expect("md5");

    // Not verified (the default): the self-signed certificate is taken, and
    // no SNI is sent for an address.
    let plain = https_probe("/health", 200, Some(sha));
    assert_ok(&check(&lab, &plain), "HTTP 200, body digest ok");
    assert_eq!(last_sni(&sni_log), "-");
    // Verified against the certificate itself, by name and by address.
    let by_name = with_tls(plain.clone(), Some("backend.test"), Some(&cert));
    assert_ok(&check(&lab, &by_name), "HTTP 200, body digest ok");
    assert_eq!(last_sni(&sni_log), "backend.test");
    let by_address = with_tls(plain.clone(), None, Some(&cert));
    assert_ok(&check(&lab, &by_address), "HTTP 200");

    // Failures: status, digest, a certificate from another CA, another name.
    assert_fails(
        &check(&lab, &https_probe("/missing", 200, None)),
        "HTTP 404 (expected 200)",
    );
    assert_fails(
        &check(&lab, &https_probe("/health", 200, Some(md5))),
        "body digest mismatch",
    );
    let untrusted = with_tls(plain.clone(), Some("backend.test"), Some(&other_ca));
    let r = check(&lab, &untrusted);
    assert_fails(&r, "TLS handshake failed: invalid peer certificate");
    assert!(r.detail.contains("UnknownIssuer"), "{r:?}");
    let wrong_name = with_tls(plain.clone(), Some("www.other.test"), Some(&cert));
    assert_fails(
        &check(&lab, &wrong_name),
        "TLS handshake failed: invalid peer certificate",
    );
    // A plain HTTP server is no TLS server.
    assert_fails(&check(&lab, &https_probe_at(8080, "/", 200, None)), "TLS");
    // Stopped: refused.
    drop(server);
    assert_fails(&check(&lab, &plain), "connect refused");
}

fn sha256_hex(data: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Answers datagrams on a port: `echo` with "pong:" and the request,
/// `silent` not at all, `dns-wrong-id` with the query turned into a reply
/// under another id.
const UDP_SERVER: &str = r#"
import socket, sys
port, mode, host = int(sys.argv[1]), sys.argv[2], sys.argv[3]
s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
s.bind((host, port))
print("bound", flush=True)
while True:
    data, peer = s.recvfrom(65535)
    if mode == "echo":
        s.sendto(b"pong:" + data, peer)
    elif mode == "dns-wrong-id" and len(data) >= 12:
        wrong = ((data[0] << 8 | data[1]) + 1) & 0xffff
        s.sendto(bytes([wrong >> 8, wrong & 0xff, data[2] | 0x80, 0x80]) + data[4:], peer)
"#;

fn udp_server(lab: &Lab, port: u16, mode: &str) -> LabProcess {
    udp_server_on(lab, BACKEND.into(), port, mode)
}

fn udp_server_on(lab: &Lab, ip: IpAddr, port: u16, mode: &str) -> LabProcess {
    let script = lab.dir().join("udp_server.py");
    write(&script, UDP_SERVER);
    let p = lab
        .spawn(
            "be1",
            &[
                PYTHON,
                path_str(&script),
                &port.to_string(),
                mode,
                &ip.to_string(),
            ],
        )
        .expect("udp server");
    wait_for_log(lab, &p, "bound");
    p
}

fn udp_probe(port: u16, payload: &[u8], expect: Option<&[u8]>) -> Probe {
    udp_probe_to(BACKEND.into(), port, payload, expect)
}

fn udp_probe_to(ip: IpAddr, port: u16, payload: &[u8], expect: Option<&[u8]>) -> Probe {
    Probe::Udp {
        addr: SocketAddr::new(ip, port),
        payload: payload.to_vec(),
        expect: expect.map(<[u8]>::to_vec),
    }
}

#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "lab: needs root and network namespaces; scripts/test runs it"
)]
fn udp_check_against_an_echo_server() {
    let lab = lab("udp");
    let echo = udp_server(&lab, 7000, "echo");
    let _silent = udp_server(&lab, 7001, "silent");

    assert_ok(
        &check(&lab, &udp_probe(7000, b"ping", Some(b"pong:ping"))),
        "UDP reply of 9 bytes, as expected",
    );
    assert_ok(
        &check(&lab, &udp_probe(7000, &[0, 0xff, 0x10], None)),
        "UDP reply of 8 bytes",
    );
    assert_fails(
        &check(&lab, &udp_probe(7000, b"ping", Some(b"PONG"))),
        "lacks \"PONG\": \"pong:ping\"",
    );
    // No answer: the timeout.
    let r = check(&lab, &udp_probe(7001, b"ping", None));
    assert_fails(&r, "timeout after 3000 ms waiting for a UDP reply");
    // Nothing listening: the port unreachable ends the check at once.
    drop(echo);
    let r = check(&lab, &udp_probe(7000, b"ping", None));
    assert_fails(&r, "port unreachable");
    assert!(r.duration < TIMEOUT / 2, "{r:?}");
}

fn dns_probe(port: u16, name: &str, qtype: QType) -> Probe {
    dns_probe_to(BACKEND.into(), port, name, qtype)
}

fn dns_probe_to(ip: IpAddr, port: u16, name: &str, qtype: QType) -> Probe {
    Probe::Dns {
        addr: SocketAddr::new(ip, port),
        name: name.into(),
        qtype,
    }
}

/// dnsmasq on be1 at `ip`:5353, answering svc.test with an A record, and
/// an AAAA record too when it listens on IPv6.
fn dnsmasq(lab: &Lab, ip: IpAddr) -> LabProcess {
    let pid = lab.dir().join(format!("dnsmasq-{}.pid", ip.is_ipv6()));
    let p = lab
        .spawn(
            "be1",
            &[
                "dnsmasq",
                "--keep-in-foreground",
                "--conf-file=/dev/null",
                "--no-resolv",
                "--no-hosts",
                "--bind-interfaces",
                &format!("--listen-address={ip}"),
                "--port=5353",
                if ip.is_ipv6() {
                    "--host-record=svc.test,10.77.1.7,2001:db8:77:1::7"
                } else {
                    "--host-record=svc.test,10.77.1.7"
                },
                "--local=/test/",
                "--user=root",
                "--log-facility=-",
                &format!("--pid-file={}", path_str(&pid)),
            ],
        )
        .expect("dnsmasq");
    wait_for_log(lab, &p, "started");
    p
}

#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "lab: needs root and network namespaces; scripts/test runs it"
)]
fn dns_check_against_dnsmasq() {
    let lab = lab("dns");
    let dnsmasq = dnsmasq(&lab, BACKEND.into());

    assert_ok(
        &check(&lab, &dns_probe(5353, "svc.test", QType::A)),
        "DNS NOERROR, 1 A record(s) in 1 answer(s)",
    );
    assert_ok(
        &check(&lab, &dns_probe(5353, "SVC.test.", QType::A)),
        "DNS NOERROR",
    );
    assert_fails(
        &check(&lab, &dns_probe(5353, "svc.test", QType::Aaaa)),
        "DNS NOERROR without answers for AAAA",
    );
    assert_fails(
        &check(&lab, &dns_probe(5353, "missing.test", QType::A)),
        "DNS NXDOMAIN",
    );
    // A server answering under another id is not answering this query.
    let _liar = udp_server(&lab, 5354, "dns-wrong-id");
    assert_fails(
        &check(&lab, &dns_probe(5354, "svc.test", QType::A)),
        "(skipped a datagram: DNS reply has the id",
    );
    drop(dnsmasq);
    let r = check(&lab, &dns_probe(5353, "svc.test", QType::A));
    assert_fails(&r, "port unreachable");
}

#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "lab: needs root and network namespaces; scripts/test runs it"
)]
fn ping_check_with_datagram_and_raw_sockets() {
    let lab = lab("ping");
    let ping = Probe::Ping { ip: BACKEND.into() };
    // A new namespace admits no group to ICMP datagram sockets: root falls
    // back to a raw socket.
    assert_ok(&check(&lab, &ping), "echo reply (ICMP raw socket)");
    lab.exec_ok(
        "sw",
        &["sysctl", "-q", "-w", "net.ipv4.ping_group_range=0 0"],
    )
    .expect("admit root's group");
    assert_ok(&check(&lab, &ping), "echo reply (ICMP datagram socket)");
    let r = check(&lab, &Probe::Ping { ip: NOBODY.into() });
    assert!(!r.ok, "{r:?}");
    assert!(
        r.detail
            .contains("timeout after 3000 ms waiting for an echo reply")
            || r.detail.contains("No route to host"),
        "{r:?}"
    );
}

/// IPv6 on the backend segment: the router's bridge and be1, without
/// duplicate address detection (the lab owns these addresses), which the
/// lab's namespaces start without.
fn ipv6_on(lab: &Lab) {
    for (role, dev, ip) in [("sw", "brb", ROUTER6), ("be1", "eth0", BACKEND6)] {
        lab.exec_ok(
            role,
            &[
                "sysctl",
                "-qw",
                &format!("net.ipv6.conf.{dev}.disable_ipv6=0"),
            ],
        )
        .expect("IPv6 on");
        lab.exec_ok(
            role,
            &[
                "ip",
                "-6",
                "addr",
                "add",
                &format!("{ip}/64"),
                "dev",
                dev,
                "nodad",
            ],
        )
        .expect("IPv6 address");
    }
}

#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "lab: needs root and network namespaces; scripts/test runs it"
)]
fn udp_dns_and_ping_checks_over_ipv6() {
    let lab = lab("hc6");
    ipv6_on(&lab);
    let echo = udp_server_on(&lab, BACKEND6.into(), 7000, "echo");
    assert_ok(
        &check(
            &lab,
            &udp_probe_to(BACKEND6.into(), 7000, b"ping", Some(b"pong:ping")),
        ),
        "UDP reply of 9 bytes, as expected",
    );
    drop(echo);
    assert_fails(
        &check(&lab, &udp_probe_to(BACKEND6.into(), 7000, b"ping", None)),
        "port unreachable",
    );

    let _dnsmasq = dnsmasq(&lab, BACKEND6.into());
    assert_ok(
        &check(
            &lab,
            &dns_probe_to(BACKEND6.into(), 5353, "svc.test", QType::Aaaa),
        ),
        "DNS NOERROR, 1 AAAA record(s) in 1 answer(s)",
    );

    let ping = Probe::Ping {
        ip: BACKEND6.into(),
    };
    assert_ok(&check(&lab, &ping), "echo reply (ICMP raw socket)");
    // The IPv4 sysctl admits groups to ICMPv6 datagram sockets too.
    lab.exec_ok(
        "sw",
        &["sysctl", "-q", "-w", "net.ipv4.ping_group_range=0 0"],
    )
    .expect("admit root's group");
    assert_ok(&check(&lab, &ping), "echo reply (ICMP datagram socket)");
    let r = check(&lab, &Probe::Ping { ip: NOBODY6.into() });
    assert!(!r.ok, "{r:?}");
    assert!(
        r.detail
            .contains("timeout after 3000 ms waiting for an echo reply")
            || r.detail.contains("unreachable")
            || r.detail.contains("No route to host"),
        "{r:?}"
    );
}
