//! The kernel's neighbour table, followed through rtnetlink events: one
//! dump at start, then every change as the kernel makes it. A change
//! reaches the node at once instead of at the next poll.

use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::time::Duration;

use log::warn;
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio::sync::watch;
use wire::MacAddr;

use super::netlink::{self, Update};

/// Room for one datagram of the dump; the kernel fills a page or two.
const DATAGRAM: usize = 64 * 1024;
/// Pause before reading again after an unexpected socket error.
const RETRY: Duration = Duration::from_secs(1);

/// Complete neighbour entries: address and interface index → MAC.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Table(HashMap<(IpAddr, u32), MacAddr>);

impl Table {
    /// The MAC of `addr` on interface `ifindex`, when the kernel has one.
    pub(crate) fn get(&self, addr: IpAddr, ifindex: u32) -> Option<MacAddr> {
        self.0.get(&(addr, ifindex)).copied()
    }

    /// Applies `u`; true when the table changed.
    fn apply(&mut self, u: Update) -> bool {
        match u {
            Update::Set { addr, ifindex, mac } => self.0.insert((addr, ifindex), mac) != Some(mac),
            Update::Remove { addr, ifindex } => self.0.remove(&(addr, ifindex)).is_some(),
            Update::DumpDone => false,
        }
    }
}

/// A view of the kernel's neighbour table that follows its changes.
#[derive(Clone)]
pub(crate) struct Neighbours(watch::Receiver<Table>);

impl Neighbours {
    /// Reads the whole table, then follows it in a task on the current
    /// runtime for as long as this handle lives.
    pub(crate) async fn follow() -> io::Result<Neighbours> {
        let sock = netlink::Socket::open()?;
        // SAFETY: the socket owns its descriptor, which stays open and the
        // same until the socket, and with it the AsyncFd, is dropped.
        let sock = unsafe { AsyncFd::register(sock) }.map_err(|e| e.into_parts().1)?;
        let mut f = Follower {
            sock,
            buf: vec![0u8; DATAGRAM],
            dump: None,
        };
        let mut table = Table::default();
        f.start_dump()?;
        while f.dump.is_some() {
            for u in f.read().await? {
                f.apply(&mut table, u);
            }
        }
        let (tx, rx) = watch::channel(table);
        tokio::spawn(f.run(tx));
        Ok(Neighbours(rx))
    }

    /// The table now; [`Neighbours::changed`] then waits for the next change.
    pub(crate) fn now(&mut self) -> Table {
        self.0.borrow_and_update().clone()
    }

    /// The link-layer address of `addr` on interface `ifindex`, as the
    /// kernel knows it now.
    pub(crate) fn get(&self, addr: IpAddr, ifindex: u32) -> Option<MacAddr> {
        self.0.borrow().get(addr, ifindex)
    }

    /// Resolves when the table changed; `false` if it is no longer followed.
    pub(crate) async fn changed(&mut self) -> bool {
        self.0.changed().await.is_ok()
    }
}

struct Follower {
    sock: AsyncFd<netlink::Socket>,
    buf: Vec<u8>,
    /// While a dump runs: what it listed so far, plus the changes since.
    dump: Option<Table>,
}

impl Follower {
    fn start_dump(&mut self) -> io::Result<()> {
        self.sock.get_mut().request_dump()?;
        self.dump = Some(Table::default());
        Ok(())
    }

    /// Applies `u` to `table`, or replaces `table` with the dump when it is
    /// complete; true when `table` changed.
    fn apply(&mut self, table: &mut Table, u: Update) -> bool {
        if u == Update::DumpDone {
            return match self.dump.take() {
                Some(fresh) if fresh != *table => {
                    *table = fresh;
                    true
                }
                _ => false,
            };
        }
        if let Some(fresh) = &mut self.dump {
            fresh.apply(u);
            return false;
        }
        table.apply(u)
    }

    /// The updates in the next datagram.
    async fn read(&mut self) -> io::Result<Vec<Update>> {
        let buf = &mut self.buf;
        let n = self
            .sock
            .async_io(Interest::READABLE, |s| s.recv(buf))
            .await?;
        let mut out = Vec::new();
        netlink::parse(self.buf.get(..n).unwrap_or_default(), &mut out)?;
        Ok(out)
    }

    async fn run(mut self, tx: watch::Sender<Table>) {
        loop {
            let read = tokio::select! {
                r = self.read() => r,
                () = tx.closed() => return,
            };
            match read {
                Ok(updates) => {
                    tx.send_if_modified(|table| {
                        updates
                            .into_iter()
                            .fold(false, |changed, u| self.apply(table, u) | changed)
                    });
                }
                Err(e) => {
                    if e.raw_os_error() != Some(libc::ENOBUFS) {
                        warn!(
                            "reading the kernel's neighbour changes failed: {e}; reading the whole table again in {RETRY:?}"
                        );
                        tokio::time::sleep(RETRY).await;
                    }
                    // Changes were lost: only a fresh dump says what holds.
                    if let Err(e) = self.start_dump() {
                        warn!(
                            "asking the kernel for its neighbour table failed: {e}; next hops keep the MACs known so far"
                        );
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn entries_are_kept_per_interface() {
        let a = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
        let mac = MacAddr([2, 0, 0, 0, 0, 1]);
        let mut t = Table::default();
        assert!(t.apply(Update::Set {
            addr: a,
            ifindex: 2,
            mac
        }));
        assert!(!t.apply(Update::Set {
            addr: a,
            ifindex: 2,
            mac
        }));
        assert!(t.apply(Update::Set {
            addr: a,
            ifindex: 3,
            mac
        }));
        assert!(t.apply(Update::Remove {
            addr: a,
            ifindex: 3
        }));
        assert_eq!(t.get(a, 2), Some(mac));
        assert_eq!(t.get(a, 3), None);
    }

    #[tokio::test]
    async fn the_kernel_answers_the_dump() {
        let mut n = Neighbours::follow()
            .await
            .expect("rtnetlink neighbour dump");
        let lo = IpAddr::V4(Ipv4Addr::LOCALHOST);
        assert_eq!(n.now().get(lo, 1), None, "loopback has no neighbour entry");
    }
}
