//! A keepalived node beside vipd nodes.

use viplab::{Lab, LabProcess};

use super::scripts::NAME_HTTP;
use super::{vip, VRID};

/// A keepalived node: its VRRP daemon and a local HTTP server on :8080.
pub struct Keepalived {
    pub process: Option<LabProcess>,
    _http: LabProcess,
    pub role: String,
}

impl Keepalived {
    pub fn start(
        lab: &Lab,
        k: usize,
        version: u8,
        interval_ms: u64,
        priority: u8,
        extra: &str,
    ) -> Self {
        let role = format!("lb{k}");
        let dir = lab.dir();
        let conf = dir.join(format!("{role}-keepalived.conf"));
        let text = format!(
            "global_defs {{\n  router_id {role}\n}}\nvrrp_instance VI {{\n  state BACKUP\n  interface eth0\n  virtual_router_id {VRID}\n  priority {priority}\n  advert_int {}\n  version {version}\n{extra}\n  virtual_ipaddress {{\n    {}/32 dev eth0\n  }}\n}}\n",
            interval_ms as f64 / 1000.0,
            vip()
        );
        std::fs::write(&conf, text).expect("write keepalived.conf");
        let http = lab
            .spawn(
                &role,
                &[
                    "/usr/bin/python3",
                    "-c",
                    NAME_HTTP,
                    &format!("keepalived-{role}"),
                ],
            )
            .expect("http server");
        let process = spawn_keepalived(lab, &role, &conf);
        Keepalived {
            process: Some(process),
            _http: http,
            role,
        }
    }

    /// Whether keepalived has put the VIP on its interface (it is master).
    pub fn holds_vip(&self, lab: &Lab) -> bool {
        lab.exec_ok(&self.role, &["ip", "-4", "addr", "show", "dev", "eth0"])
            .is_ok_and(|o| o.contains(&format!("{}/32", vip())))
    }

    pub fn log(&self) -> String {
        self.process.as_ref().map(|p| p.log()).unwrap_or_default()
    }

    pub fn signal(&self, sig: i32) {
        if let Some(p) = &self.process {
            if let Ok(pid) = i32::try_from(p.pid()) {
                // SAFETY: signalling a child we spawned and have not reaped.
                unsafe { libc::kill(pid, sig) };
            }
        }
    }
}

/// Runs keepalived in the foreground in `role`'s namespace with `conf`,
/// its pid files in the lab's directory.
pub fn spawn_keepalived(lab: &Lab, role: &str, conf: &std::path::Path) -> LabProcess {
    let file = |name: &str| {
        lab.dir()
            .join(format!("{role}-{name}"))
            .display()
            .to_string()
    };
    lab.spawn(
        role,
        &[
            "keepalived",
            "-n",
            "-l",
            "-D",
            "-P",
            "-f",
            &conf.display().to_string(),
            "-p",
            &file("keepalived.pid"),
            "-r",
            &file("vrrp.pid"),
            "-c",
            &file("checkers.pid"),
        ],
    )
    .expect("keepalived")
}
