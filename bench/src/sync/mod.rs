//! Scenario 9: connection sync between the master (the vipd under test in
//! the DUT namespace) and a backup vipd in a namespace of its own, joined
//! by a sync link.
//!
//! - Lag: at each of the plan's rates, new TCP connections (SYN, then ACK)
//!   from distinct clients through the master; per connection, the send
//!   stamp of its ACK against the backup's kernel receive stamp of the
//!   sync datagram carrying its record (both CLOCK_REALTIME, one host).
//!   Only connections seen on both sides with a right record count; the
//!   backup's own counters say how many records its workers applied.
//! - Cost: the master's NAT throughput (UDP, the plan's flows) and new
//!   connections per second (UDP, every packet a new flow), each with and
//!   without `[sync]`, back to back in the same run.

mod conns;
mod lag;
mod sniff;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use ctlproto::reply;
use dataplane::flow::ConnState;

use crate::dut::{flow_capacity, services, Dut};
use crate::frame::Proto;
use crate::plan::{Family, Forward};
use crate::rate::ratio;
use crate::report::{Measured, SyncCompare, SyncFigures, SyncLag};
use crate::run::Bench;
use crate::topo::{
    backend_ip, Backup, BACKENDS, FLOW_BASE, SYNC_BACKUP_IP, SYNC_MASTER_IP, VIP, VIP_PORT,
};
use conns::ConnSpec;
use lag::{match_lags, percentile, Expect};
use sniff::Sniffer;

/// The sync port (vipd's default).
const SYNC_PORT: u16 = 8848;
/// Sync node ids of the master and the backup.
const MASTER_ID: u16 = 1;
const BACKUP_ID: u16 = 2;
/// After a lag run: the last batch waits at most `flush_after_ms` (5 ms)
/// and the backup's workers apply within their housekeeping period; the
/// backup's status is refreshed every 100 ms.
const SETTLE: Duration = Duration::from_millis(600);
/// Daemons starting and their sync sessions coming up.
const UP_DEADLINE: Duration = Duration::from_secs(30);
/// The established-connection clients of the lag runs: 10.91.100.0 on,
/// a /24 per rate (inside the DUT's route back to the generator, apart
/// from the SYN flood's 10.91.0.0).
const LAG_BASE: [u8; 3] = [10, 91, 100];

const METHOD: &str = "t_created: CLOCK_REALTIME read when the generator's AF_PACKET send call \
    carrying the connection's establishing ACK returned (veth has put the frame on the master's \
    receive ring; the frame may have left up to the longest send call earlier). t_present: the \
    backup's kernel receive stamp (SO_TIMESTAMPNS, CLOCK_REALTIME) of the sync datagram from the \
    master carrying the connection's first record, read by an AF_PACKET socket on the backup's \
    sync interface in its namespace, decoded with connsync's MessageView and ConnRecord. A \
    connection counts when its record is an upsert of an ESTABLISHED NAT connection from the \
    master to a backend of the service with the client's MAC; the backup's workers' applied \
    counter must cover them.";

/// The `[sync]` section of node `id` on `interface` with peer `peer`.
fn sync_section(interface: &str, peer: std::net::Ipv4Addr, id: u16, key: &Path) -> String {
    format!(
        "[sync]\ninterface = \"{interface}\"\npeers = [\"{peer}\"]\nkey_file = \"{}\"\nnode_id = {id}\n",
        key.display()
    )
}

fn ctl<R: serde::de::DeserializeOwned>(
    sock: &Path,
    name: &str,
    cmd: ctlproto::Command,
) -> Result<R> {
    ctlproto::call(sock, &cmd, Duration::from_secs(10))
        .map_err(|e| anyhow!("{}, `{name}`: {e}", sock.display()))
}

fn sync_node(sock: &Path) -> Result<reply::SyncNode> {
    let r: reply::Sync = ctl(sock, "sync", ctlproto::Command::Sync {})?;
    r.node
        .ok_or_else(|| anyhow!("{}: sync is not configured", sock.display()))
}

fn conns_in_tables(sock: &Path) -> Result<u64> {
    let r: reply::Backends = ctl(sock, "backends", ctlproto::Command::Backends {})?;
    Ok(r.backends
        .iter()
        .map(|b| u64::from(b.active) + u64::from(b.inactive))
        .sum())
}

fn not_applied(c: &reply::SyncCounters) -> u64 {
    let n = &c.not_applied;
    n.bad_state
        + n.no_service
        + n.no_backend
        + n.unresolved
        + n.snat_unknown
        + n.wrong_worker
        + n.table_full
}

fn rejected(c: &reply::SyncCounters) -> u64 {
    let r = &c.rejected;
    r.truncated
        + r.bad_magic
        + r.bad_version
        + r.unknown_type
        + r.bad_length
        + r.bad_auth
        + r.replayed
        + r.stranger
        + r.misdirected
        + r.bad_record
        + r.own
}

/// Waits until the node behind `sock` sees its peer up.
fn await_peer(sock: &Path, dut: &mut Dut) -> Result<()> {
    let start = Instant::now();
    loop {
        dut.check_alive()?;
        if let Ok(n) = sync_node(sock) {
            if n.peers.iter().any(|p| p.up) {
                return Ok(());
            }
        }
        if start.elapsed() > UP_DEADLINE {
            bail!(
                "{}: the sync peer did not come up within {UP_DEADLINE:?}",
                sock.display()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// One measured lag run, before matching.
struct LagRun {
    rate: u64,
    run: conns::ConnRun,
    refused: Option<u64>,
    acks_forwarded: u64,
    master_overflow: u64,
    notes: Vec<String>,
    applied: u64,
    not_applied: u64,
    rejected: u64,
    backup_conns: Option<u64>,
}

impl Bench<'_> {
    fn backup_socket(&self) -> PathBuf {
        self.plan.work_dir.join("vipd-backup.sock")
    }

    /// Starts the backup vipd in its namespace.
    fn backup_vipd(&self, b: &Backup, key: &Path, flows: u32) -> Result<Dut> {
        let vipd = self.vipd_path()?;
        let dir = &self.plan.work_dir;
        let conf = dir.join("vipd-backup.toml");
        let capacity = flow_capacity(flows);
        let mut text = format!(
            "[node]\nname = \"backup\"\nsite = \"bench\"\n\n[dataplane]\ninterfaces = [\"bk0\", \"bk1\"]\n\
             queues = 1\ncores = [{}]\nxdp_mode = \"native\"\nflow_capacity = {capacity}\n\
             frames_per_worker = {}\n\n[control]\nsocket = \"{}\"\n\n",
            self.plan.gen_core,
            self.plan.frames_per_worker,
            self.backup_socket().display()
        );
        text += &sync_section(b.sync.name, SYNC_MASTER_IP, BACKUP_ID, key);
        text += &services(Forward::Nat, Family::Ipv4);
        std::fs::write(&conf, text).with_context(|| format!("writing {}", conf.display()))?;
        crate::dut::spawn_vipd(
            &b.ns,
            &vipd,
            &conf,
            &self.backup_socket(),
            dir.join("vipd-backup.log"),
        )
    }

    /// The master vipd in NAT with room for `flows`, with or without sync.
    fn master(&self, flows: u32, sync: Option<&str>) -> Result<Dut> {
        self.vipd_with(Forward::Nat, Family::Ipv4, flows, 0, true, sync)
    }

    pub(crate) fn sync(&mut self, flows: u32, progress: &mut dyn FnMut(&str)) -> Result<Measured> {
        let b = self.topo.backup()?;
        let key = self.plan.work_dir.join("sync.key");
        std::fs::write(&key, "vipbench-sync-key-0123456789abcdef\n")
            .with_context(|| format!("writing {}", key.display()))?;
        let master_sync = sync_section(b.master_sync.name, SYNC_BACKUP_IP, MASTER_ID, &key);
        let lag_conns: u64 = self
            .plan
            .sync_rates
            .iter()
            .map(|r| (*r as f64 * self.plan.duration.as_secs_f64()) as u64)
            .sum();
        let lag_flows = u32::try_from(lag_conns + 10_000).unwrap_or(u32::MAX);
        let mut backup = self.backup_vipd(&b, &key, lag_flows.max(self.plan.new_conn_flows))?;

        progress("sync lag");
        let (lag, sniffer_note) =
            self.sync_lag(&b, &mut backup, &master_sync, lag_flows, progress)?;

        let pairs = self.plan.pairs.max(1);
        let mut nat: Vec<(Measured, Measured)> = Vec::new();
        let mut newc: Vec<(Measured, Measured)> = Vec::new();
        let mut newc_notes = Vec::new();
        for k in 0..pairs {
            progress(&format!(
                "NAT throughput, sync off and on ({}/{pairs})",
                k + 1
            ));
            let off = self.nat_run(flows, None)?;
            let on = self.nat_run(flows, Some(&master_sync))?;
            nat.push((off, on));
            progress(&format!(
                "new connections, sync off and on ({}/{pairs})",
                k + 1
            ));
            let (off, _) = self.new_conn_run(None)?;
            let (on, note) = self.new_conn_run(Some(&master_sync))?;
            newc.push((off, on));
            newc_notes.push(note);
        }
        backup.check_alive()?;
        let compare = vec![
            compare(
                "nat_throughput",
                &format!(
                    "NAT throughput, {}-byte UDP, {flows} flows",
                    self.plan.frame_size
                ),
                &nat,
                "delivered pps at the generator's offered load".into(),
            ),
            compare(
                "new_connections",
                "new connections per second (UDP, every packet a new flow)",
                &newc,
                newc_notes.join(" / "),
            ),
        ];
        // The row: the NAT run with sync on of the median pair.
        let mut nat_on = median_pair(&nat)
            .map(|p| p.1.clone())
            .ok_or_else(|| anyhow!("no NAT run measured"))?;
        nat_on.notes.insert(
            0,
            format!(
                "this row: the master's NAT throughput with [sync] to a running backup; sync lag and the sync on/off ratios in the connection sync section; backup vipd on core {} (the generator's)",
                self.plan.gen_core
            ),
        );
        nat_on.sync = Some(SyncFigures {
            lag,
            compare,
            method: format!("{METHOD} This run: {sniffer_note}."),
        });
        Ok(nat_on)
    }

    /// The master's NAT throughput, with `sync` or without.
    fn nat_run(&mut self, flows: u32, sync: Option<&str>) -> Result<Measured> {
        let traffic = self.traffic(Proto::Udp, FLOW_BASE, flows)?;
        let mut dut = self.master(flows, sync)?;
        if sync.is_some() {
            self.await_delivery(&mut dut, &traffic, Duration::from_secs(20))?;
            await_peer(&self.vipd_socket(), &mut dut)?;
        }
        let mut m = self.throughput(&mut dut, &traffic, self.plan.warmup, self.plan.rate_pps)?;
        m.notes.extend(self.vipd_drops());
        dut.check_alive()?;
        Ok(m)
    }

    /// The master's new connections per second (every packet a new UDP
    /// flow), with `sync` or without; with it, what the sync counters say.
    fn new_conn_run(&mut self, sync: Option<&str>) -> Result<(Measured, String)> {
        let flows = self.plan.new_conn_flows;
        let traffic = self.traffic(Proto::Udp, FLOW_BASE, flows)?;
        let mut dut = self.master(flows, sync)?;
        let before = if sync.is_some() {
            // One flow only: the measured run's flows stay new.
            let one = self.traffic(Proto::Udp, FLOW_BASE, 1)?;
            self.await_delivery(&mut dut, &one, Duration::from_secs(20))?;
            await_peer(&self.vipd_socket(), &mut dut)?;
            Some(sync_node(&self.backup_socket())?.counters)
        } else {
            None
        };
        let m = self.throughput(&mut dut, &traffic, Duration::ZERO, self.plan.rate_pps)?;
        let mut note = String::new();
        if let Some(before) = before {
            std::thread::sleep(SETTLE);
            let sent = sync_node(&self.vipd_socket())?.counters;
            let after = sync_node(&self.backup_socket())?.counters;
            note = format!(
                "sync on: the master sent {} records ({} lost to full queues, {} pending at the end) for {} new connections delivered; the backup applied {}, refused {}",
                sent.records_sent,
                sent.overflow,
                sent.pending,
                m.delivered,
                after.applied.saturating_sub(before.applied),
                not_applied(&after).saturating_sub(not_applied(&before)),
            );
        }
        dut.check_alive()?;
        Ok((m, note))
    }

    /// The lag runs, one per plan rate, against one master.
    fn sync_lag(
        &mut self,
        b: &Backup,
        backup: &mut Dut,
        master_sync: &str,
        lag_flows: u32,
        progress: &mut dyn FnMut(&str),
    ) -> Result<(Vec<SyncLag>, String)> {
        let mut master = self.master(lag_flows, Some(master_sync))?;
        let one = self.traffic(Proto::Udp, FLOW_BASE, 1)?;
        self.await_delivery(&mut master, &one, Duration::from_secs(20))?;
        await_peer(&self.vipd_socket(), &mut master)?;
        await_peer(&self.backup_socket(), backup)?;
        self.pin_dut()?;
        let sniffer = Sniffer::start(&b.ns, b.sync.ifindex, SYNC_MASTER_IP, SYNC_PORT)?;
        let mut runs = Vec::new();
        for (k, &rate) in self.plan.sync_rates.iter().enumerate() {
            progress(&format!("sync lag at {rate} new connections/s"));
            let bsock = self.backup_socket();
            let before = sync_node(&bsock)?.counters;
            let conns0 = conns_in_tables(&bsock).ok();
            let sink0 = self.sink.counts()?;
            let refused0 = gen_tx_dropped(self.topo.gen_ns(), self.topo.gen.name);
            let master0 = sync_node(&self.vipd_socket())?.counters;
            let spec = ConnSpec {
                ns: self.topo.gen_ns().to_string(),
                ifindex: self.topo.gen.ifindex,
                core: self.plan.gen_core,
                src_mac: self.topo.gen.mac,
                dst_mac: self.topo.dut_in.mac,
                client_base: std::net::Ipv4Addr::new(
                    LAG_BASE[0],
                    LAG_BASE[1],
                    LAG_BASE[2] + k as u8,
                    0,
                ),
                vip: VIP,
                vip_port: VIP_PORT,
                rate,
                duration: self.plan.duration,
            };
            let run = conns::run(&spec)?;
            std::thread::sleep(SETTLE);
            let after = sync_node(&bsock)?.counters;
            let conns1 = conns_in_tables(&bsock).ok();
            let sink1 = self.sink.counts()?;
            let refused1 = gen_tx_dropped(self.topo.gen_ns(), self.topo.gen.name);
            let master1 = sync_node(&self.vipd_socket())?.counters;
            let mut notes = Vec::new();
            // Cumulative over this master's lag runs.
            notes.extend(self.vipd_drops().map(|d| format!("master, so far: {d}")));
            if master1.pending > 0 {
                notes.push(format!(
                    "{} records still queued on the master",
                    master1.pending
                ));
            }
            runs.push(LagRun {
                rate,
                run,
                refused: refused0.zip(refused1).map(|(a, b)| b.saturating_sub(a)),
                acks_forwarded: sink1.since(&sink0).tcp_est,
                master_overflow: master1.overflow.saturating_sub(master0.overflow),
                notes,
                applied: after.applied.saturating_sub(before.applied),
                not_applied: not_applied(&after).saturating_sub(not_applied(&before)),
                rejected: rejected(&after).saturating_sub(rejected(&before)),
                backup_conns: conns0.zip(conns1).map(|(a, b)| b.saturating_sub(a)),
            });
            master.check_alive()?;
            backup.check_alive()?;
        }
        let sniffed = sniffer.stop()?;
        let expect = Expect {
            vip: VIP.to_bits(),
            vip_port: VIP_PORT,
            backends: (0..BACKENDS).map(|i| backend_ip(i).to_bits()).collect(),
            client_mac: self.topo.gen.mac,
            state: ConnState::Established.code(),
            origin: MASTER_ID,
        };
        let sniffer_note = format!(
            "the sniffer took {} sync datagrams from the master: {} no sync message, {} records undecodable, {} without a kernel stamp, {} dropped for want of socket buffer",
            sniffed.datagrams, sniffed.malformed, sniffed.bad_records, sniffed.unstamped, sniffed.dropped
        );
        let rows = runs
            .into_iter()
            .map(|r| lag_row(&r, &match_lags(&r.run.sent, &sniffed.seen, &expect)))
            .collect();
        Ok((rows, sniffer_note))
    }
}

/// Frames `dev`'s veth could not hand to its peer (the peer's ring was
/// full): its tx_dropped counter.
fn gen_tx_dropped(ns: &str, dev: &str) -> Option<u64> {
    viplab::netns::exec_ok(
        ns,
        &[
            "cat",
            &format!("/sys/class/net/{dev}/statistics/tx_dropped"),
        ],
    )
    .ok()?
    .trim()
    .parse()
    .ok()
}

fn ms(ns: Option<i64>) -> Option<f64> {
    ns.map(|n| n as f64 / 1e6)
}

/// The report's lag row of one run.
fn lag_row(r: &LagRun, m: &lag::Matched) -> SyncLag {
    SyncLag {
        offered_cps: r.rate,
        achieved_cps: if r.run.seconds > 0.0 {
            r.run.sent.len() as f64 / r.run.seconds
        } else {
            0.0
        },
        created: m.created,
        refused_before_master: r.refused,
        acks_forwarded: r.acks_forwarded,
        matched: m.matched,
        records_received: m.records,
        wrong: m.wrong,
        lost: m.lost,
        not_established: m.created.saturating_sub(r.acks_forwarded),
        lost_in_sync: r.acks_forwarded.saturating_sub(m.matched + m.wrong),
        p50_ms: ms(percentile(&m.lags_ns, 0.50)),
        p99_ms: ms(percentile(&m.lags_ns, 0.99)),
        max_ms: ms(m.lags_ns.last().copied()),
        stamp_slack_p99_us: percentile(&r.run.calls_ns, 0.99).unwrap_or(0) as f64 / 1e3,
        stamp_slack_max_us: r.run.calls_ns.last().copied().unwrap_or(0) as f64 / 1e3,
        master_overflow: r.master_overflow,
        applied: r.applied,
        not_applied: r.not_applied,
        rejected: r.rejected,
        backup_conns: r.backup_conns,
        notes: r.notes.clone(),
    }
}

/// The pair whose on/off ratio is the median (the upper one of an even
/// count).
fn median_pair(pairs: &[(Measured, Measured)]) -> Option<&(Measured, Measured)> {
    let mut v: Vec<&(Measured, Measured)> = pairs.iter().collect();
    let r = |p: &(Measured, Measured)| ratio(p.1.delivered_pps, p.0.delivered_pps).unwrap_or(0.0);
    v.sort_by(|a, b| r(a).total_cmp(&r(b)));
    v.get(v.len() / 2).copied()
}

fn compare(figure: &str, label: &str, pairs: &[(Measured, Measured)], note: String) -> SyncCompare {
    let ratios: Vec<f64> = pairs
        .iter()
        .filter_map(|(off, on)| ratio(on.delivered_pps, off.delivered_pps))
        .collect();
    let mid = median_pair(pairs);
    let rate = |f: fn(&(Measured, Measured)) -> f64| mid.map_or(0.0, f);
    SyncCompare {
        figure: figure.into(),
        label: label.into(),
        off_offered_pps: rate(|p| p.0.offered_pps),
        off_pps: rate(|p| p.0.delivered_pps),
        on_offered_pps: rate(|p| p.1.offered_pps),
        on_pps: rate(|p| p.1.delivered_pps),
        ratio: mid.and_then(|(off, on)| ratio(on.delivered_pps, off.delivered_pps)),
        ratios,
        note,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(offered: f64, delivered: f64) -> Measured {
        Measured {
            offered_pps: offered,
            delivered_pps: delivered,
            ..Measured::default()
        }
    }

    #[test]
    fn the_comparison_is_the_median_pair() {
        let pairs = vec![
            (m(2e6, 1e6), m(2e6, 0.5e6)),
            (m(2e6, 1e6), m(3e6, 0.9e6)),
            (m(2e6, 1e6), m(2e6, 1.2e6)),
        ];
        let c = compare("nat_throughput", "NAT", &pairs, "n".into());
        assert_eq!(c.ratio, Some(0.9));
        assert_eq!(c.ratios, vec![0.5, 0.9, 1.2]);
        assert_eq!((c.off_pps, c.on_pps, c.on_offered_pps), (1e6, 0.9e6, 3e6));
        let none = compare("x", "x", &[], String::new());
        assert_eq!((none.ratio, none.on_pps), (None, 0.0));
        // A run with nothing delivered off has no ratio.
        let zero = compare("x", "x", &[(m(1.0, 0.0), m(1.0, 1.0))], String::new());
        assert_eq!(zero.ratio, None);
    }

    #[test]
    fn a_lag_row_splits_what_was_lost() {
        let run = LagRun {
            rate: 1000,
            run: conns::ConnRun {
                sent: vec![
                    lag::Sent {
                        key: (1, 1),
                        ack_ns: 0
                    };
                    10
                ],
                seconds: 0.5,
                calls_ns: (1..=100).map(|i| i * 1000).collect(),
            },
            refused: Some(3),
            acks_forwarded: 8,
            master_overflow: 0,
            notes: Vec::new(),
            applied: 7,
            not_applied: 0,
            rejected: 0,
            backup_conns: Some(7),
        };
        let matched = lag::Matched {
            created: 10,
            matched: 7,
            wrong: 0,
            lost: 3,
            records: 9,
            lags_ns: vec![
                1_000_000, 2_000_000, 3_000_000, 4_000_000, 5_000_000, 6_000_000, 9_000_000,
            ],
        };
        let l = lag_row(&run, &matched);
        assert_eq!(l.achieved_cps, 20.0);
        assert_eq!((l.not_established, l.lost_in_sync), (2, 1));
        assert_eq!(
            (l.p50_ms, l.p99_ms, l.max_ms),
            (Some(4.0), Some(9.0), Some(9.0))
        );
        assert_eq!((l.stamp_slack_p99_us, l.stamp_slack_max_us), (99.0, 100.0));
        assert_eq!(l.refused_before_master, Some(3));
    }
}
