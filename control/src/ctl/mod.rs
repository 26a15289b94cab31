//! The control socket: a Unix socket speaking [`proto`], served on the
//! control runtime. Each client has its own task with a bounded line length
//! and an idle timeout, so a slow or hostile client stalls nobody else.

pub mod client;
pub mod human;
mod ops;
pub mod proto;
mod views;

use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use log::{debug, warn};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use crate::daemon::Node;
use proto::{Reply, MAX_REQUEST};

/// A client silent this long is disconnected.
const IDLE: Duration = Duration::from_secs(60);
/// Clients connected at once; the next one is told so and closed.
pub const MAX_CLIENTS: usize = 64;

/// Binds the socket (mode and group from the config) and serves it.
pub async fn serve(node: Arc<Node>) -> anyhow::Result<JoinHandle<()>> {
    let (path, mode, group) = {
        let st = node.state.lock().await;
        let c = &st.config.control;
        (c.socket.clone(), c.socket_mode, c.socket_group.clone())
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    if UnixStream::connect(&path).await.is_ok() {
        anyhow::bail!(
            "another vipd is already serving {}; stop it or choose another [control] socket",
            path.display()
        );
    }
    let gid = match &group {
        Some(group) => {
            Some(group_id(group).with_context(|| format!("[control] socket_group {group:?}"))?)
        }
        None => None,
    };
    let listener = bind_private(&path, mode, gid)?;
    let slots = Arc::new(Semaphore::new(MAX_CLIENTS));
    Ok(tokio::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((stream, _)) => match slots.clone().try_acquire_owned() {
                    Ok(permit) => {
                        let node = node.clone();
                        tokio::spawn(async move {
                            client(node, stream).await;
                            drop(permit);
                        });
                    }
                    Err(_) => {
                        tokio::spawn(refuse(stream));
                    }
                },
                Err(e) => warn!("control socket accept failed: {e}"),
            }
        }
    }))
}

/// Binds the socket inside a fresh directory only root can enter, sets its
/// mode and group there, then renames it into place: at no moment can
/// anyone else connect to it with looser permissions.
fn bind_private(path: &Path, mode: u32, gid: Option<u32>) -> anyhow::Result<UnixListener> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let private = dir.join(format!(".vipd-ctl.{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&private);
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&private)
        .with_context(|| format!("creating {}", private.display()))?;
    let staged = private.join("s");
    let bound = (|| {
        let listener =
            UnixListener::bind(&staged).with_context(|| format!("binding {}", staged.display()))?;
        std::fs::set_permissions(&staged, std::fs::Permissions::from_mode(mode))
            .with_context(|| format!("setting mode {mode:o} on {}", staged.display()))?;
        if let Some(gid) = gid {
            std::os::unix::fs::chown(&staged, None, Some(gid))
                .with_context(|| format!("giving {} to group {gid}", staged.display()))?;
        }
        let _ = std::fs::remove_file(path);
        std::fs::rename(&staged, path)
            .with_context(|| format!("moving the socket to {}", path.display()))?;
        Ok(listener)
    })();
    let _ = std::fs::remove_dir_all(&private);
    bound
}

/// Tells a client over the limit why it is closed.
async fn refuse(stream: UnixStream) {
    let (_, mut wr) = stream.into_split();
    let r = Reply::err(format!(
        "vipd is already serving {MAX_CLIENTS} control clients; try again when one has finished"
    ));
    write_reply(&mut wr, &r).await;
}

fn group_id(name: &str) -> anyhow::Result<u32> {
    let text = std::fs::read_to_string("/etc/group").context("reading /etc/group")?;
    text.lines()
        .filter_map(|l| {
            let mut f = l.split(':');
            Some((f.next()?, f.nth(1)?))
        })
        .find(|(n, _)| *n == name)
        .and_then(|(_, gid)| gid.parse().ok())
        .or_else(|| name.parse().ok())
        .with_context(|| format!("no group named {name} in /etc/group"))
}

async fn client(node: Arc<Node>, stream: UnixStream) {
    let (rd, mut wr) = stream.into_split();
    let mut rd = BufReader::new(rd).take(MAX_REQUEST as u64 + 1);
    let mut line = String::new();
    loop {
        line.clear();
        let n = match tokio::time::timeout(IDLE, rd.read_line(&mut line)).await {
            Ok(Ok(n)) => n,
            Ok(Err(e)) => {
                debug!("control client read error: {e}");
                return;
            }
            Err(_) => return,
        };
        if n == 0 {
            return;
        }
        let reply = if line.len() > MAX_REQUEST || !line.ends_with('\n') && rd.limit() == 0 {
            let r = Reply::err(format!("request longer than {MAX_REQUEST} bytes"));
            write_reply(&mut wr, &r).await;
            return;
        } else {
            match proto::parse(line.trim_end()) {
                Ok(cmd) => ops::execute(&node, cmd).await,
                Err(e) => Reply::err(e),
            }
        };
        if !write_reply(&mut wr, &reply).await {
            return;
        }
        rd.set_limit(MAX_REQUEST as u64 + 1);
    }
}

async fn write_reply(wr: &mut tokio::net::unix::OwnedWriteHalf, reply: &Reply) -> bool {
    let mut text = serde_json::to_string(reply)
        .unwrap_or_else(|e| format!(r#"{{"v":1,"ok":false,"error":"{e}"}}"#));
    text.push('\n');
    matches!(
        tokio::time::timeout(IDLE, wr.write_all(text.as_bytes())).await,
        Ok(Ok(()))
    )
}
