//! The client's side of a failover run: a paced, numbered UDP stream to
//! the VIP, the replies by sequence number, and the analysis of one event.

use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};

use super::{REPLY_GRACE, SEQ_LEN};
use crate::rate::per_second;
use viplab::netns;

/// Names the server of a reply from the source address the backend saw and
/// the backend's name.
pub(super) type Classifier = Box<dyn Fn(Ipv4Addr, &str) -> String + Send>;

/// Replies by sequence number.
#[derive(Debug, Default)]
pub(super) struct Answers {
    /// Per sequence number: 0 unanswered, else 1 + index into `servers`.
    by_seq: Vec<u8>,
    servers: Vec<String>,
    pub(super) count: u64,
    /// Highest answered sequence number.
    last: Option<u64>,
}

impl Answers {
    fn server_of(&self, seq: u64) -> Option<&String> {
        let id = *self.by_seq.get(usize::try_from(seq).ok()?)?;
        self.servers.get(usize::from(id).checked_sub(1)?)
    }

    pub(super) fn last_server(&self) -> Option<String> {
        self.server_of(self.last?).cloned()
    }

    /// First answered sequence number from `from` on whose server is not
    /// `not`.
    pub(super) fn first_from_other(&self, from: u64, not: &str) -> Option<u64> {
        let start = usize::try_from(from).ok()?;
        let later = self.by_seq.get(start..)?;
        let at = later.iter().position(|&id| {
            usize::from(id)
                .checked_sub(1)
                .and_then(|i| self.servers.get(i))
                .is_some_and(|s| s != not)
        })?;
        Some(from + at as u64)
    }

    pub(super) fn count_since(&self, from: u64) -> u64 {
        let start = usize::try_from(from).unwrap_or(usize::MAX);
        self.by_seq
            .get(start..)
            .map_or(0, |v| v.iter().filter(|&&id| id != 0).count() as u64)
    }

    fn record(&mut self, seq: u64, server: String) {
        let Ok(i) = usize::try_from(seq) else {
            return;
        };
        if self.by_seq.len() <= i {
            self.by_seq.resize(i + 1, 0);
        }
        if self.by_seq[i] != 0 {
            return;
        }
        let id = match self.servers.iter().position(|s| *s == server) {
            Some(p) => p + 1,
            None => {
                self.servers.push(server);
                self.servers.len()
            }
        };
        // More distinct servers than fit would be a broken lab; they are
        // not recorded rather than misattributed.
        let Ok(id) = u8::try_from(id) else {
            return;
        };
        self.by_seq[i] = id;
        self.count += 1;
        self.last = Some(self.last.map_or(seq, |l| l.max(seq)));
    }
}

/// A paced stream from the client: a sender thread and a receiver thread on
/// one connected UDP socket created in the client namespace.
pub(super) struct Load {
    stop_send: Arc<AtomicBool>,
    stop_recv: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
    answers: Arc<Mutex<Answers>>,
    sender: Option<JoinHandle<Vec<u64>>>,
    receiver: Option<JoinHandle<()>>,
    interval_ns: u64,
}

impl Load {
    pub(super) fn start(ns: &str, target: SocketAddrV4, pps: u64, who: Classifier) -> Result<Load> {
        let sock = netns::in_ns(ns, move || {
            let s = UdpSocket::bind(("0.0.0.0", 0))?;
            s.connect(target)?;
            s.set_read_timeout(Some(Duration::from_millis(20)))?;
            Ok(s)
        })
        .with_context(|| format!("client socket to {target}"))?;
        let rx = sock.try_clone().context("cloning the client socket")?;
        let interval_ns = (1_000_000_000 / pps.max(1)).max(1);
        let mut load = Load {
            stop_send: Arc::new(AtomicBool::new(false)),
            stop_recv: Arc::new(AtomicBool::new(false)),
            sent: Arc::new(AtomicU64::new(0)),
            answers: Arc::new(Mutex::new(Answers::default())),
            sender: None,
            receiver: None,
            interval_ns,
        };
        let (stop, sent) = (load.stop_send.clone(), load.sent.clone());
        load.sender = Some(
            std::thread::Builder::new()
                .name("failover-send".into())
                .spawn(move || send_paced(&sock, interval_ns, &stop, &sent))
                .context("starting the sender")?,
        );
        let (stop, sent, answers) = (
            load.stop_recv.clone(),
            load.sent.clone(),
            load.answers.clone(),
        );
        load.receiver = Some(
            std::thread::Builder::new()
                .name("failover-recv".into())
                .spawn(move || receive(&rx, &who, &stop, &sent, &answers))
                .context("starting the receiver")?,
        );
        Ok(load)
    }

    pub(super) fn sent(&self) -> u64 {
        self.sent.load(Ordering::Acquire)
    }

    pub(super) fn answers(&self) -> MutexGuard<'_, Answers> {
        self.answers.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Stops sending, waits [`REPLY_GRACE`] for the last replies, and
    /// returns what was sent and answered.
    pub(super) fn finish(mut self) -> Result<Trace> {
        self.stop_send.store(true, Ordering::Relaxed);
        let sent_at = self
            .sender
            .take()
            .ok_or_else(|| anyhow!("the sender is gone"))?
            .join()
            .map_err(|_| anyhow!("the sender thread panicked"))?;
        std::thread::sleep(REPLY_GRACE);
        self.stop_recv.store(true, Ordering::Relaxed);
        if let Some(r) = self.receiver.take() {
            r.join()
                .map_err(|_| anyhow!("the receiver thread panicked"))?;
        }
        let answers = std::mem::take(&mut *self.answers());
        Ok(Trace {
            sent_at,
            answers,
            interval_ns: self.interval_ns,
        })
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop_send.store(true, Ordering::Relaxed);
        self.stop_recv.store(true, Ordering::Relaxed);
        if let Some(t) = self.sender.take() {
            let _ = t.join();
        }
        if let Some(r) = self.receiver.take() {
            let _ = r.join();
        }
    }
}

/// Sends sequence numbers 0, 1, … every `interval_ns` (monotonic clock)
/// until `stop`; returns each packet's send time in ns from the start.
fn send_paced(sock: &UdpSocket, interval_ns: u64, stop: &AtomicBool, sent: &AtomicU64) -> Vec<u64> {
    let interval = Duration::from_nanos(interval_ns);
    // A stall of this thread longer than this is skipped, not replayed as a
    // burst the path would drop.
    let max_lag = Duration::from_millis(20);
    let start = Instant::now();
    let mut next = start;
    let mut times = Vec::new();
    let mut seq = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        if now < next {
            std::thread::sleep((next - now).min(Duration::from_millis(1)));
            continue;
        }
        if now - next > max_lag {
            next = now;
        }
        while next <= now {
            // Counted before sending, so the receiver never sees an answer
            // to a number not yet counted as sent.
            sent.store(seq + 1, Ordering::Release);
            times.push(u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX));
            // A failed send (e.g. an ICMP error queued on the socket) is a
            // lost packet like any other.
            let _ = sock.send(&seq.to_be_bytes());
            seq += 1;
            next += interval;
        }
    }
    times
}

fn receive(
    sock: &UdpSocket,
    who: &Classifier,
    stop: &AtomicBool,
    sent: &AtomicU64,
    answers: &Mutex<Answers>,
) {
    let mut buf = [0u8; 2048];
    while !stop.load(Ordering::Relaxed) {
        let Ok(n) = sock.recv(&mut buf) else {
            continue;
        };
        let Some(reply) = Reply::parse(buf.get(..n).unwrap_or_default()) else {
            continue;
        };
        // Only numbers this client sent: anything else is not an answer.
        if reply.seq >= sent.load(Ordering::Acquire) {
            continue;
        }
        let server = who(reply.src, &reply.name);
        answers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .record(reply.seq, server);
    }
}

/// An echo server's reply.
#[derive(Debug, PartialEq)]
struct Reply {
    seq: u64,
    src: Ipv4Addr,
    name: String,
}

impl Reply {
    fn parse(b: &[u8]) -> Option<Reply> {
        let seq = u64::from_be_bytes(b.get(..SEQ_LEN)?.try_into().ok()?);
        let src: [u8; 4] = b.get(SEQ_LEN..SEQ_LEN + 4)?.try_into().ok()?;
        let name = String::from_utf8_lossy(b.get(SEQ_LEN + 4..)?).into_owned();
        Some(Reply {
            seq,
            src: Ipv4Addr::from(src),
            name,
        })
    }
}

/// What one stream sent and got back.
pub(super) struct Trace {
    /// Send time of each sequence number, ns from the stream's start.
    sent_at: Vec<u64>,
    answers: Answers,
    interval_ns: u64,
}

/// The figures of one event.
#[derive(Debug, PartialEq)]
pub(super) struct Seen {
    pub(super) sent: u64,
    pub(super) lost: u64,
    pub(super) rate_pps: f64,
    pub(super) outage_ns: u64,
    pub(super) before: Option<String>,
    pub(super) after: Option<String>,
    pub(super) answered_after: u64,
}

impl Trace {
    fn answered(&self, seq: usize) -> bool {
        self.answers.by_seq.get(seq).is_some_and(|&id| id != 0)
    }

    /// Figures from the first answered packet on (what was lost while the
    /// path first came up is not the failover's); `trigger` is the first
    /// sequence number sent after the failure began.
    pub(super) fn analyse(&self, trigger: usize) -> Seen {
        let n = self.sent_at.len();
        let from = (0..n).find(|&i| self.answered(i)).unwrap_or(n);
        let at = |i: usize| self.sent_at.get(i).copied().unwrap_or(0);
        let lost = (from..n).filter(|&i| !self.answered(i)).count() as u64;
        // Longest outage: from the last answered packet before a run of
        // unanswered ones to the first answered one after it; a run never
        // answered lasts until the stream's end.
        let mut outage = 0;
        let mut last_ok = None;
        let mut gap = false;
        for i in from..n {
            if self.answered(i) {
                if let (true, Some(l)) = (gap, last_ok) {
                    outage = outage.max(at(i).saturating_sub(at(l)));
                }
                last_ok = Some(i);
                gap = false;
            } else {
                gap = true;
            }
        }
        if let (true, Some(l)) = (gap, last_ok) {
            let end = at(n.saturating_sub(1)) + self.interval_ns;
            outage = outage.max(end.saturating_sub(at(l)));
        }
        let server = |i: usize| self.answers.server_of(i as u64).cloned();
        let before = (from..trigger.min(n))
            .rev()
            .find(|&i| self.answered(i))
            .and_then(server);
        let last = (trigger.min(n)..n).rev().find(|&i| self.answered(i));
        let after = last.and_then(server);
        let answered_after = (trigger.min(n)..n)
            .filter(|&i| after.is_some() && server(i) == after)
            .count() as u64;
        let span = at(n.saturating_sub(1)).saturating_sub(at(from)) + self.interval_ns;
        Seen {
            sent: (n - from) as u64,
            lost,
            rate_pps: per_second((n - from) as u64, Duration::from_nanos(span)),
            outage_ns: outage,
            before,
            after,
            answered_after,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trace(pattern: &str, trigger_servers: (&str, &str), at: usize) -> Trace {
        let mut answers = Answers::default();
        for (i, c) in pattern.chars().enumerate() {
            if c == 'x' {
                let s = if i < at {
                    trigger_servers.0
                } else {
                    trigger_servers.1
                };
                answers.record(i as u64, s.to_string());
            }
        }
        Trace {
            sent_at: (0..pattern.len() as u64).map(|i| i * 1_000_000).collect(),
            answers,
            interval_ns: 1_000_000,
        }
    }

    #[test]
    fn the_longest_run_of_losses_is_bounded_by_answers() {
        // 1 ms apart; two gaps: 2 lost (3 ms), 4 lost (5 ms).
        let t = trace("..xx..xxx....xxx", ("lb1", "lb2"), 9);
        let seen = t.analyse(9);
        assert_eq!(seen.sent, 14, "counted from the first answer on");
        assert_eq!(seen.lost, 6);
        assert_eq!(seen.outage_ns, 5_000_000);
        assert_eq!(seen.before.as_deref(), Some("lb1"));
        assert_eq!(seen.after.as_deref(), Some("lb2"));
        assert_eq!(seen.answered_after, 3);
        assert!((seen.rate_pps - 1000.0).abs() < 1e-6);
    }

    #[test]
    fn a_stream_never_answered_again_is_one_outage_to_its_end() {
        let t = trace("xx....", ("a", "b"), 2);
        let seen = t.analyse(2);
        assert_eq!(seen.lost, 4);
        assert_eq!(seen.outage_ns, 5_000_000);
        assert_eq!(seen.after, None);
        assert_eq!(seen.answered_after, 0);
    }

    #[test]
    fn replies_parse_and_short_ones_are_refused() {
        let mut b = 7u64.to_be_bytes().to_vec();
        b.extend_from_slice(&[10, 77, 1, 201]);
        b.extend_from_slice(b"be2");
        assert_eq!(
            Reply::parse(&b),
            Some(Reply {
                seq: 7,
                src: Ipv4Addr::new(10, 77, 1, 201),
                name: "be2".into()
            })
        );
        assert_eq!(Reply::parse(&b[..10]), None);
        assert_eq!(Reply::parse(&[]), None);
    }

    #[test]
    fn answers_find_the_first_reply_from_another_server() {
        let mut a = Answers::default();
        a.record(0, "lb1".into());
        a.record(1, "lb1".into());
        a.record(5, "lb2".into());
        a.record(5, "lb1".into());
        assert_eq!(a.count, 3, "a duplicate answer counts once");
        assert_eq!(a.first_from_other(1, "lb1"), Some(5));
        assert_eq!(a.first_from_other(6, "lb1"), None);
        assert_eq!(a.count_since(2), 1);
        assert_eq!(a.last_server().as_deref(), Some("lb2"));
    }
}
