//! BIRD as the labs' router: started in the foreground inside a namespace,
//! with its configuration and control socket in the lab directory.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::{Lab, LabProcess};

fn socket(lab: &Lab) -> PathBuf {
    lab.dir().join("bird.ctl")
}

/// Starts BIRD in `role` with configuration `conf` and waits until it
/// answers on its control socket.
pub(crate) fn start(lab: &Lab, role: &str, conf: &str) -> Result<LabProcess> {
    let path = lab.dir().join("bird.conf");
    std::fs::write(&path, conf).with_context(|| format!("writing {}", path.display()))?;
    let pid = lab.dir().join("bird.pid");
    let sock = socket(lab);
    let argv = [
        "bird",
        "-f",
        "-c",
        path.to_str().unwrap_or_default(),
        "-s",
        sock.to_str().unwrap_or_default(),
        "-P",
        pid.to_str().unwrap_or_default(),
    ];
    let mut bird = lab.spawn(role, &argv)?;
    let ready = lab.wait_until(
        "BIRD answers on its socket",
        Duration::from_secs(10),
        || bird.is_running() && birdc(lab, role, &["show", "status"]).is_ok(),
    );
    if let Err(e) = ready {
        bail!("{e}\nBIRD log:\n{}", bird.log());
    }
    Ok(bird)
}

/// Runs `birdc -s SOCK ARGS...` in `role` and returns its output.
pub(crate) fn birdc(lab: &Lab, role: &str, args: &[&str]) -> Result<String> {
    let sock = socket(lab);
    let mut argv = vec!["birdc", "-s", sock.to_str().unwrap_or_default()];
    argv.extend_from_slice(args);
    lab.exec_ok(role, &argv)
}
