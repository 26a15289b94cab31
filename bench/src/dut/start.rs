//! Starting each DUT in the DUT namespace.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use engine::{Engine, EngineConfig, ForwardHandler, XdpMode};
use serde::de::IgnoredAny;
use viplab::netns;

use super::{log_tail, Dut};
use crate::plan::{Family, Forward};
use crate::run::Bench;
use crate::topo::{self, backend, backend_ip, snat, vip, BACKENDS, VIP, VIP_PORT};

impl Bench<'_> {
    pub(crate) fn afxdp(&self) -> Result<Dut> {
        let t = &self.topo;
        let handler = ForwardHandler::new(
            vec![1, 0],
            vec![t.dut_in.mac, t.dut_out.mac],
            vec![t.gen.mac, t.sink.mac],
        );
        let cfg = EngineConfig {
            interfaces: vec![t.dut_in.name.into(), t.dut_out.name.into()],
            queues: 1,
            cores: Some(vec![self.plan.dut_core]),
            xdp_mode: XdpMode::Native,
            frames_per_worker: self.plan.frames_per_worker,
            ..EngineConfig::default()
        };
        let engine = netns::in_ns(t.dut_ns(), move || {
            let engine = Engine::start(&cfg, move |_, _| handler.clone())
                .context("starting the AF_XDP engine")?;
            engine
                .steering()
                .set_vips(&[VIP])
                .context("steering the VIP to the engine")?;
            Ok(engine)
        })?;
        Ok(Dut::Engine { engine })
    }

    pub(crate) fn nftables(&self) -> Result<Dut> {
        let ns = self.topo.dut_ns().to_string();
        let map: Vec<String> = (0..BACKENDS)
            .map(|i| format!("{i} : {}", backend_ip(i)))
            .collect();
        let ruleset = format!(
            "table ip vipbench {{\n chain pre {{\n  type nat hook prerouting priority dstnat; policy accept;\n  \
             ip daddr {VIP} meta l4proto {{ tcp, udp }} th dport {VIP_PORT} dnat to numgen inc mod {BACKENDS} map {{ {} }}\n }}\n}}\n",
            map.join(", ")
        );
        let file = self.plan.work_dir.join("nftables.conf");
        std::fs::write(&file, ruleset).with_context(|| format!("writing {}", file.display()))?;
        let dut = Dut::Nftables { ns: ns.clone() };
        netns::exec_ok(&ns, &["sysctl", "-qw", "net.ipv4.ip_forward=1"])?;
        netns::exec_ok(&ns, &["nft", "-f", &file.to_string_lossy()])
            .context("loading the nftables DNAT ruleset (is nftables installed?)")?;
        Ok(dut)
    }

    pub(crate) fn vipd_path(&self) -> Result<PathBuf> {
        if let Some(p) = &self.plan.vipd {
            return Ok(p.clone());
        }
        let exe = std::env::current_exe().context("locating this executable")?;
        let dirs = [exe.parent(), exe.parent().and_then(Path::parent)];
        let found = dirs
            .into_iter()
            .flatten()
            .map(|d| d.join("vipd"))
            .find(|p| p.is_file());
        found.ok_or_else(|| {
                anyhow!(
                    "no vipd binary next to {}: build it (cargo build --release -p vipd) or pass --vipd PATH",
                    exe.display()
                )
            })
    }

    /// Starts vipd with IPv4 services in `mode` and room for `flows`;
    /// `syn_rate_limit` and `fast_path` as in its config (0: every SYN
    /// admitted).
    pub(crate) fn vipd(
        &self,
        mode: Forward,
        flows: u32,
        syn_rate_limit: u32,
        fast_path: bool,
    ) -> Result<Dut> {
        self.vipd_with(mode, Family::Ipv4, flows, syn_rate_limit, fast_path, None)
    }

    /// [`Bench::vipd`] with the services of `family`, and a `[sync]`
    /// section if `sync` (its text); config and log files are named apart.
    pub(crate) fn vipd_with(
        &self,
        mode: Forward,
        family: Family,
        flows: u32,
        syn_rate_limit: u32,
        fast_path: bool,
        sync: Option<&str>,
    ) -> Result<Dut> {
        let vipd = self.vipd_path()?;
        let dir = &self.plan.work_dir;
        let stem = format!(
            "vipd-{}{}{}",
            mode.name(),
            if family == Family::Ipv6 { "6" } else { "" },
            if sync.is_some() { "-sync" } else { "" }
        );
        let conf = dir.join(format!("{stem}.toml"));
        let sock = self.vipd_socket();
        let capacity = flow_capacity(flows);
        let mut text = format!(
            "[node]\nname = \"bench\"\nsite = \"bench\"\n\n[dataplane]\ninterfaces = [\"{}\", \"{}\"]\n\
             queues = 1\ncores = [{}]\nxdp_mode = \"native\"\nflow_capacity = {capacity}\n\
             syn_rate_limit = {syn_rate_limit}\nframes_per_worker = {}\nfast_path = {fast_path}\n\n\
             [control]\nsocket = \"{}\"\n",
            self.topo.dut_in.name,
            self.topo.dut_out.name,
            self.plan.dut_core,
            self.plan.frames_per_worker,
            sock.display()
        );
        if let Some(sync) = sync {
            text += &format!("\n{sync}");
        }
        text += &services(mode, family);
        std::fs::write(&conf, text).with_context(|| format!("writing {}", conf.display()))?;
        spawn_vipd(
            self.topo.dut_ns(),
            &vipd,
            &conf,
            &sock,
            dir.join(format!("{stem}.log")),
        )
    }

    pub(crate) fn pin_dut(&self) -> Result<Vec<u32>> {
        topo::pin_napi(self.topo.dut_in.name, self.plan.dut_core)
    }
}

/// The bench's TCP and UDP services on the VIP of `family`, in `mode`, to
/// every backend of that family.
pub(crate) fn services(mode: Forward, family: Family) -> String {
    let mut text = String::new();
    for proto in ["udp", "tcp"] {
        text += &format!(
            "\n[[service]]\nname = \"bench-{proto}\"\nvip = \"{}\"\nport = {VIP_PORT}\n\
             protocol = \"{proto}\"\nscheduler = \"rr\"\nforward = \"{}\"\n",
            vip(family),
            mode.name()
        );
        if mode == Forward::FullNat {
            text += &format!("snat = [\"{}\"]\n", snat(family));
        }
        for i in 0..BACKENDS {
            // IPv6 addresses are bracketed before the port.
            text += &format!(
                "\n  [[service.backend]]\n  address = \"{}\"\n  check = {{ kind = \"none\" }}\n",
                SocketAddr::new(backend(family, i), VIP_PORT)
            );
        }
    }
    text
}

/// Starts vipd in `ns` with `conf`, its output into `log`, and waits until its control socket
/// `socket` answers: vipd opens it once its dataplane runs, after
/// allocating its flow tables, which takes seconds at large capacities.
pub(crate) fn spawn_vipd(
    ns: &str,
    vipd: &Path,
    conf: &Path,
    socket: &Path,
    log: PathBuf,
) -> Result<Dut> {
    let out = std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
    let err = out.try_clone()?;
    let child = Command::new("ip")
        .args(["netns", "exec", ns])
        .arg(vipd)
        .arg("--config")
        .arg(conf)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .with_context(|| format!("starting {} in {ns}", vipd.display()))?;
    let log_path = log.clone();
    let mut dut = Dut::Vipd { child, log };
    let start = Instant::now();
    loop {
        dut.check_alive()?;
        let status = ctlproto::call::<IgnoredAny>(
            socket,
            &ctlproto::Command::Status {},
            Duration::from_secs(2),
        );
        match status {
            Ok(_) => return Ok(dut),
            Err(e) if start.elapsed() > VIPD_START => bail!(
                "vipd did not answer on {} within {VIPD_START:?} of its start ({e}); {}",
                socket.display(),
                log_tail(&log_path)
            ),
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// How long a bench vipd may take to come up: at the largest flow point
/// its flow tables take tens of seconds to allocate here.
const VIPD_START: Duration = Duration::from_secs(180);

/// The `flow_capacity` a bench vipd gets for `flows` flows: room to spare,
/// within what the config accepts.
pub(crate) fn flow_capacity(flows: u32) -> u64 {
    (u64::from(flows) * 5 / 4).clamp(65_536, 12_500_000)
}

/// Slots of the XDP flow table of a bench vipd for `flows` flows (one
/// queue), as vipd sizes it.
pub(crate) fn table_slots(flows: u32) -> u32 {
    let per_worker = usize::try_from(flow_capacity(flows)).unwrap_or(usize::MAX);
    engine::flow_table_slots(engine::connection_keys(per_worker, 1))
}
