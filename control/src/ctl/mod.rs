//! The control socket: a Unix socket speaking [`ctlproto`], served on the
//! control runtime. Each client has its own task with a bounded line length,
//! an idle timeout and a write timeout, so a slow or hostile client stalls
//! nobody else and holds at most one request and one reply in memory.
//! Clients are counted per user (SO_PEERCRED): one user cannot take every
//! slot, and root always has slots of its own.

pub mod human;
mod ops;
pub(crate) mod views;

use std::collections::HashMap;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use log::{debug, warn};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::node::Node;
use ctlproto::request::MAX_REQUEST;
use ctlproto::Reply;

/// A client that sends no request for this long is disconnected; `vipctl`
/// sends its request as soon as it connects.
pub const IDLE: Duration = Duration::from_secs(5);
/// A reply the client does not take within this long closes the client.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections one user other than root may hold at once. A user at the
/// limit who connects again displaces their own longest-idle connection,
/// so nobody locks themselves out by leaving connections open.
pub(crate) const PER_USER: usize = 16;
/// Connections root may hold at once: enough for bursts of scripts, with
/// the same displacement at the limit.
pub(crate) const ROOT_SLOTS: usize = 64;
/// Connections all users other than root may hold together; root is not
/// counted here, so it always finds a slot.
pub(crate) const MAX_CLIENTS: usize = 64;
/// Pause after a failed accept (out of file descriptors), so the loop does
/// not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Binds the socket (mode and group from the config) and serves it.
pub(crate) async fn serve(node: Arc<Node>) -> anyhow::Result<JoinHandle<()>> {
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
    let clients = Arc::new(Mutex::new(Clients::default()));
    Ok(tokio::spawn(async move {
        loop {
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                Err(e) => {
                    warn!("control socket accept failed: {e}");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            };
            let uid = match stream.peer_cred() {
                Ok(cred) => cred.uid(),
                Err(e) => {
                    debug!("control client without peer credentials: {e}");
                    continue;
                }
            };
            let admitted = lock(&clients).admit(uid);
            match admitted {
                Ok(slot) => {
                    let node = node.clone();
                    let clients = clients.clone();
                    tokio::spawn(async move {
                        client(&node, stream, &clients, &slot).await;
                        lock(&clients).leave(&slot);
                    });
                }
                Err(why) => {
                    tokio::spawn(refuse(stream, why));
                }
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

/// Why a connection was not admitted; sent to the client before closing.
#[derive(Debug, thiserror::Error)]
enum Refusal {
    #[error(
        "user {uid} already has {limit} control requests running; try again when one has finished"
    )]
    UserBusy { uid: u32, limit: usize },
    #[error("vipd is already serving {MAX_CLIENTS} control clients of other users than root; try again when one has finished, or as root")]
    Full,
}

/// Tells a client over the limit why it is closed.
async fn refuse(stream: UnixStream, why: Refusal) {
    let (_, mut wr) = stream.into_split();
    write_reply(&mut wr, &Reply::err(why.to_string())).await;
}

/// One admitted connection.
struct Slot {
    uid: u32,
    id: u64,
    /// Told when a newer connection of the same user takes this slot.
    evict: Arc<Notify>,
}

struct Entry {
    id: u64,
    /// Since when the connection waits for a request; `None` while one runs.
    idle_since: Option<Instant>,
    evict: Arc<Notify>,
}

/// The admitted connections, by the uid of the peer process.
#[derive(Default)]
struct Clients {
    by_uid: HashMap<u32, Vec<Entry>>,
    next_id: u64,
}

fn lock(c: &Mutex<Clients>) -> std::sync::MutexGuard<'_, Clients> {
    c.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Clients {
    /// Admits a connection from `uid`, displacing that user's longest-idle
    /// connection at the per-user limit, or says why not.
    fn admit(&mut self, uid: u32) -> Result<Slot, Refusal> {
        let others: usize = self
            .by_uid
            .iter()
            .filter(|(u, _)| **u != 0)
            .map(|(_, e)| e.len())
            .sum();
        let limit = if uid == 0 { ROOT_SLOTS } else { PER_USER };
        let mine = self.by_uid.entry(uid).or_default();
        if mine.len() >= limit {
            let oldest = mine
                .iter()
                .enumerate()
                .filter_map(|(i, e)| Some((i, e.idle_since?)))
                .min_by_key(|(_, since)| *since)
                .map(|(i, _)| i);
            let Some(i) = oldest else {
                return Err(Refusal::UserBusy { uid, limit });
            };
            let gone = mine.swap_remove(i);
            gone.evict.notify_one();
            debug!("control: user {uid} at {limit} connections: closed their longest-idle one");
        } else if uid != 0 && others >= MAX_CLIENTS {
            return Err(Refusal::Full);
        }
        self.next_id += 1;
        let evict = Arc::new(Notify::new());
        mine.push(Entry {
            id: self.next_id,
            idle_since: Some(Instant::now()),
            evict: evict.clone(),
        });
        Ok(Slot {
            uid,
            id: self.next_id,
            evict,
        })
    }

    fn set_idle(&mut self, slot: &Slot, idle: bool) {
        if let Some(e) = self
            .by_uid
            .get_mut(&slot.uid)
            .and_then(|v| v.iter_mut().find(|e| e.id == slot.id))
        {
            e.idle_since = idle.then(Instant::now);
        }
    }

    fn leave(&mut self, slot: &Slot) {
        if let Some(v) = self.by_uid.get_mut(&slot.uid) {
            v.retain(|e| e.id != slot.id);
            if v.is_empty() {
                self.by_uid.remove(&slot.uid);
            }
        }
    }
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

/// Decodes, validates and executes one request line.
pub async fn handle(node: &Node, line: &[u8]) -> Reply {
    match ctlproto::parse(line) {
        Ok(cmd) => ops::execute(node, cmd).await,
        Err(e) => Reply::err(e.to_string()),
    }
}

async fn client(node: &Node, stream: UnixStream, clients: &Mutex<Clients>, slot: &Slot) {
    let (rd, mut wr) = stream.into_split();
    let mut rd = BufReader::new(rd).take(MAX_REQUEST as u64 + 1);
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = tokio::select! {
            read = tokio::time::timeout(IDLE, rd.read_until(b'\n', &mut line)) => match read {
                Ok(Ok(n)) => n,
                Ok(Err(e)) => {
                    debug!("control client read error: {e}");
                    return;
                }
                Err(_) => return,
            },
            () = slot.evict.notified() => {
                let r = Reply::err(format!(
                    "connection closed: user {} opened more than the limit and this one was the longest idle",
                    slot.uid
                ));
                write_reply(&mut wr, &r).await;
                return;
            }
        };
        if n == 0 {
            return;
        }
        if line.len() > MAX_REQUEST || line.last() != Some(&b'\n') && rd.limit() == 0 {
            let r = Reply::err(format!("request longer than {MAX_REQUEST} bytes"));
            write_reply(&mut wr, &r).await;
            return;
        }
        lock(clients).set_idle(slot, false);
        let reply = handle(node, &line).await;
        if !write_reply(&mut wr, &reply).await {
            return;
        }
        lock(clients).set_idle(slot, true);
        rd.set_limit(MAX_REQUEST as u64 + 1);
    }
}

async fn write_reply(wr: &mut tokio::net::unix::OwnedWriteHalf, reply: &Reply) -> bool {
    let mut text = serde_json::to_string(reply)
        .unwrap_or_else(|e| format!(r#"{{"v":1,"ok":false,"error":"{e}"}}"#));
    text.push('\n');
    matches!(
        tokio::time::timeout(WRITE_TIMEOUT, wr.write_all(text.as_bytes())).await,
        Ok(Ok(()))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(c: &Clients, uid: u32) -> Vec<u64> {
        c.by_uid
            .get(&uid)
            .map(|v| v.iter().map(|e| e.id).collect())
            .unwrap_or_default()
    }

    #[test]
    fn a_user_at_the_limit_displaces_their_longest_idle_connection() {
        let mut c = Clients::default();
        let slots: Vec<Slot> = (0..PER_USER)
            .map(|_| c.admit(1000).expect("under the limit"))
            .collect();
        // The first is busy with a request, so the second is the oldest idle.
        c.set_idle(&slots[0], false);
        let newer = c.admit(1000).expect("displaces an idle one");
        let now = ids(&c, 1000);
        assert_eq!(now.len(), PER_USER);
        assert!(now.contains(&slots[0].id) && now.contains(&newer.id));
        assert!(!now.contains(&slots[1].id), "longest idle kept: {now:?}");
        // Another user is not touched by it.
        let other = c.admit(1001).expect("another user");
        assert_eq!(ids(&c, 1001), vec![other.id]);
    }

    #[test]
    fn busy_connections_are_never_displaced() {
        let mut c = Clients::default();
        for _ in 0..ROOT_SLOTS {
            let s = c.admit(0).expect("under the limit");
            c.set_idle(&s, false);
        }
        let e = c.admit(0).err().expect("refused").to_string();
        assert!(e.contains("user 0") && e.contains("running"), "{e}");
    }

    #[test]
    fn root_finds_a_slot_when_other_users_hold_them_all() {
        let mut c = Clients::default();
        let users = MAX_CLIENTS.div_ceil(PER_USER) as u32;
        for uid in 1..=users {
            for _ in 0..PER_USER {
                let s = c.admit(uid).expect("within the total");
                c.set_idle(&s, false);
            }
        }
        let e = c.admit(users + 1).err().expect("total reached").to_string();
        assert!(e.contains(&MAX_CLIENTS.to_string()), "{e}");
        let root = c.admit(0).expect("root always has a slot");
        c.leave(&root);
        assert!(ids(&c, 0).is_empty());
    }
}
