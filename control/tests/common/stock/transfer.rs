//! Byte-exact transfers through the lab: a file server, random files and
//! their digests, and downloads.

use std::path::{Path, PathBuf};
use std::time::Duration;

use viplab::{Lab, LabProcess};

/// Where the file server listens, on the backends (behind the VIP) and on
/// the client.
pub const FILE_PORT: u16 = 8000;

/// argv: PORT DIR. `GET /NAME` sends DIR/NAME with sendfile(2); `PUT` or
/// `POST` reads the body and answers `{"bytes": N, "sha256": HEX}`.
/// TCPServer rather than HTTPServer: no name lookup at bind time.
pub const FILE_SERVER: &str = r#"
import hashlib, http.server, json, os, socketserver, sys
port, root = int(sys.argv[1]), sys.argv[2]
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        try:
            f = open(os.path.join(root, os.path.basename(self.path)), 'rb')
        except OSError:
            self.send_error(404)
            return
        with f:
            self.send_response(200)
            self.send_header('Content-Length', str(os.fstat(f.fileno()).st_size))
            self.end_headers()
            self.connection.sendfile(f)
    def receive(self):
        n, got, h = int(self.headers.get('Content-Length', '0')), 0, hashlib.sha256()
        while got < n:
            b = self.rfile.read(min(1 << 16, n - got))
            if not b:
                break
            h.update(b)
            got += len(b)
        body = json.dumps({'bytes': got, 'sha256': h.hexdigest()}).encode()
        self.send_response(200)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    do_PUT = receive
    do_POST = receive
    def log_message(self, *args):
        pass
class S(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True
S(('0.0.0.0', port), H).serve_forever()
"#;

/// Whether something in `role` listens on TCP `port`.
pub fn listening(lab: &Lab, role: &str, port: u16) -> bool {
    lab.exec_ok(role, &["ss", "-Hltn", &format!("sport = :{port}")])
        .is_ok_and(|out| !out.trim().is_empty())
}

pub fn spawn_listening(lab: &Lab, role: &str, port: u16, argv: &[&str]) -> LabProcess {
    let process = lab.spawn(role, argv).expect("server starts");
    lab.wait_until(
        &format!("{role} listens on port {port}"),
        Duration::from_secs(10),
        || listening(lab, role, port),
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", process.log()));
    process
}

/// The file server in `role`, serving `dir`.
pub fn file_server(lab: &Lab, role: &str, dir: &Path) -> LabProcess {
    let dir = dir.to_str().expect("utf-8 path");
    let port = FILE_PORT.to_string();
    spawn_listening(
        lab,
        role,
        FILE_PORT,
        &["/usr/bin/python3", "-c", FILE_SERVER, &port, dir],
    )
}

/// A file of `bytes` random bytes at `dir/name`; returns its path and
/// SHA-256.
pub fn random_file(lab: &Lab, dir: &Path, name: &str, bytes: u64) -> (PathBuf, String) {
    std::fs::create_dir_all(dir).expect("create directory");
    let path = dir.join(name);
    let p = path.to_str().expect("utf-8 path");
    lab.exec_ok(
        "client",
        &["sh", "-c", &format!("head -c {bytes} /dev/urandom > '{p}'")],
    )
    .expect("random file");
    let sha = sha256(lab, &path);
    (path, sha)
}

pub fn sha256(lab: &Lab, path: &Path) -> String {
    let out = lab
        .exec_ok("client", &["sha256sum", path.to_str().expect("utf-8 path")])
        .expect("sha256sum");
    out.split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

/// `curl` in `role` fetching `url` into `path` within `max_seconds`;
/// returns the byte count curl reports.
pub fn download(
    lab: &Lab,
    role: &str,
    url: &str,
    path: &Path,
    max_seconds: u32,
) -> anyhow::Result<u64> {
    let out = lab.curl(
        role,
        Duration::from_secs(u64::from(max_seconds)),
        &[
            "-o",
            path.to_str().unwrap_or_default(),
            "-w",
            "%{size_download}",
            url,
        ],
    )?;
    Ok(out.trim().parse()?)
}

/// Removes its files when dropped, also while a panic unwinds.
pub struct RemoveOnDrop(pub Vec<PathBuf>);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        for path in &self.0 {
            let _ = std::fs::remove_file(path);
        }
    }
}
