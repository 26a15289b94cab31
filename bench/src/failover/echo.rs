//! The UDP echo servers behind the VIP: each reply tells the client which
//! backend answered and which address the backend saw the packet from.

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Context, Result};
use viplab::Lab;

use super::{ECHO_PORT, SEQ_LEN};
use viplab::netns;

/// UDP echo servers on backends: each answers a datagram with its first
/// [`SEQ_LEN`] bytes, the source address it came from and the backend's
/// name. Dropping this stops them.
pub(super) struct Echo {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Echo {
    pub(super) fn start(lab: &Lab, roles: &[&str]) -> Result<Echo> {
        let mut echo = Echo {
            stop: Arc::new(AtomicBool::new(false)),
            threads: Vec::new(),
        };
        for role in roles {
            let sock = netns::in_ns(&lab.ns(role), || {
                let s = UdpSocket::bind(("0.0.0.0", ECHO_PORT))?;
                // Bounds how long a stop request waits.
                s.set_read_timeout(Some(Duration::from_millis(50)))?;
                Ok(s)
            })
            .with_context(|| format!("UDP echo server on {role} port {ECHO_PORT}"))?;
            let stop = echo.stop.clone();
            let name = role.as_bytes().to_vec();
            echo.threads.push(
                std::thread::Builder::new()
                    .name(format!("echo-{role}"))
                    .spawn(move || serve_echo(&sock, &name, &stop))
                    .context("starting an echo thread")?,
            );
        }
        Ok(echo)
    }
}

fn serve_echo(sock: &UdpSocket, name: &[u8], stop: &AtomicBool) {
    let mut buf = [0u8; 2048];
    let mut reply = Vec::with_capacity(SEQ_LEN + 4 + name.len());
    while !stop.load(Ordering::Relaxed) {
        let Ok((n, from)) = sock.recv_from(&mut buf) else {
            continue;
        };
        // Anything shorter carries no sequence number: not the client's.
        let seq = buf.get(..n).and_then(|b| b.get(..SEQ_LEN));
        let (Some(seq), SocketAddr::V4(from)) = (seq, from) else {
            continue;
        };
        reply.clear();
        reply.extend_from_slice(seq);
        reply.extend_from_slice(&from.ip().octets());
        reply.extend_from_slice(name);
        let _ = sock.send_to(&reply, from);
    }
}

impl Drop for Echo {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}
