//! Lab shapes, servers and lookups the end-to-end tests share.

use anyhow::Result;
use viplab::Lab;

/// A lab whose backends route replies through lb1, as `nat` services need.
pub fn nat_lab(tag: &str, backends: usize, sorry_server: bool) -> Lab {
    Lab::up(viplab::LabSpec {
        name: viplab::unique_name(tag),
        backends,
        backend_gateway: viplab::Gateway::Lb(1),
        sorry_server,
        ..viplab::LabSpec::default()
    })
    .expect("lab up")
}

/// MAC address of `ifname` in `role`'s namespace.
pub fn mac_of(lab: &Lab, role: &str, ifname: &str) -> Result<String> {
    Ok(lab
        .exec_ok(role, &["cat", &format!("/sys/class/net/{ifname}/address")])?
        .trim()
        .to_string())
}

/// Runs `script` with python3 (scapy available) in `role`'s namespace with
/// `args`; returns its output.
pub fn python(lab: &Lab, role: &str, script: &str, args: &[&str]) -> Result<String> {
    let mut argv = vec!["/usr/bin/python3", "-c", script];
    argv.extend_from_slice(args);
    lab.exec_ok(role, &argv)
}

/// The MAC the client's neighbour table holds for `ip`, if any.
pub fn client_neighbour(lab: &Lab, ip: impl Into<std::net::IpAddr>) -> Option<String> {
    let ip = ip.into();
    let out = lab
        .exec_ok("client", &["ip", "neigh", "show", &ip.to_string()])
        .ok()?;
    let mut words = out.split_whitespace();
    words.find(|w| *w == "lladdr")?;
    words.next().map(str::to_string)
}

/// Whether `ip link show` lists an XDP program on the interface.
pub fn has_xdp(lab: &Lab, role: &str, ifname: &str) -> bool {
    lab.exec_ok(role, &["ip", "link", "show", ifname])
        .map(|o| o.contains("xdp"))
        .unwrap_or(false)
}

/// Answers every line with the backend's name: a TCP connection that lives
/// as long as the client keeps it.
const NAME_SERVER: &str = r#"
import socket, socketserver, sys
name, port = sys.argv[1], int(sys.argv[2])
class H(socketserver.StreamRequestHandler):
    def handle(self):
        for _ in self.rfile:
            self.wfile.write((name + "\n").encode()); self.wfile.flush()
class S(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True
S(("0.0.0.0", port), H).serve_forever()
"#;

/// Starts a name server on `port` in each of backends `be1..=beN`; they run
/// until the lab is torn down.
pub fn start_name_servers(lab: &Lab, backends: usize, port: u16) {
    for i in 1..=backends {
        lab.spawn(
            &format!("be{i}"),
            &[
                "/usr/bin/python3",
                "-c",
                NAME_SERVER,
                &format!("be{i}"),
                &port.to_string(),
            ],
        )
        .map(|p| p.detach())
        .expect("name server");
    }
}
