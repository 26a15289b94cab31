//! A running lab: its namespaces, the processes started in them, and its
//! teardown.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::names::{lab_dir, lab_namespaces, NS_PREFIX};
use crate::netns::{self, shown};
use crate::{LabProcess, LabSpec};

/// A running lab. Dropping it tears everything down.
pub struct Lab {
    pub(crate) spec: LabSpec,
    /// Namespaces created so far, in creation order (teardown also works on a
    /// half-built lab).
    pub(crate) namespaces: Vec<String>,
    /// Backend servers, index i-1 for `be<i>`; `None` while stopped.
    pub(crate) backends: Mutex<Vec<Option<LabProcess>>>,
    pub(crate) sorry: Option<LabProcess>,
    dir: PathBuf,
    spawned: AtomicUsize,
    armed: bool,
}

impl Lab {
    /// Build the lab described by `spec` and start its HTTP servers.
    pub fn up(spec: LabSpec) -> Result<Lab> {
        let mut lab = Lab::empty(spec)?;
        // On error `lab` is dropped here, which removes the partial build.
        lab.build()
            .with_context(|| format!("bringing up lab {}", lab.spec.name))?;
        Ok(lab)
    }

    /// A lab with nothing built yet, after the checks every lab needs: a
    /// valid spec, root, and no lab of that name already up. Dropping it
    /// removes whatever was built so far.
    pub(crate) fn empty(spec: LabSpec) -> Result<Lab> {
        spec.validate()?;
        netns::check_root()?;
        let existing = lab_namespaces(&spec.name)?;
        if !existing.is_empty() {
            bail!(
                "lab {} already exists (namespaces {}); remove it with `viplab down {}`",
                spec.name,
                existing.join(", "),
                spec.name
            );
        }
        let dir = lab_dir(&spec.name);
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("creating lab directory {}", dir.display()))?;
        Ok(Lab {
            backends: Mutex::new((0..spec.backends).map(|_| None).collect()),
            spec,
            namespaces: Vec::new(),
            sorry: None,
            dir,
            spawned: AtomicUsize::new(0),
            armed: true,
        })
    }

    pub(crate) fn spawn_with(
        &self,
        role: &str,
        argv: &[&str],
        pipe_stdout: bool,
    ) -> Result<LabProcess> {
        let Some(program) = argv.first() else {
            bail!("spawn in {}: empty command", self.ns(role));
        };
        let ns = self.ns(role);
        let seq = self.spawned.fetch_add(1, Ordering::Relaxed);
        let prog_name = Path::new(program)
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let log = self.dir.join(format!("{role}-{seq}-{prog_name}.log"));
        let file = std::fs::File::create(&log)
            .with_context(|| format!("creating log file {}", log.display()))?;
        let stdout = if pipe_stdout {
            Stdio::piped()
        } else {
            Stdio::from(file.try_clone()?)
        };
        // setsid (the program) execs in place since a fresh child is not a
        // process-group leader, so the pid is the program's and it leads its
        // own group: one signal kills it and everything it forks, and it
        // survives the exit of `viplab up`.
        let child = Command::new("setsid")
            .args(["ip", "netns", "exec", &ns])
            .args(argv)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(Stdio::from(file))
            .spawn()
            .with_context(|| format!("starting `{}` in {ns}", argv.join(" ")))?;
        let what = format!("{ns}: {}", shown(argv));
        Ok(LabProcess::new(child, what, Some(log)))
    }

    /// Full namespace name for a role: "sw", "client", "lb1", "be2", "sorry".
    pub fn ns(&self, role: &str) -> String {
        format!("{NS_PREFIX}{}-{role}", self.spec.name)
    }

    pub fn name(&self) -> &str {
        &self.spec.name
    }

    pub fn spec(&self) -> &LabSpec {
        &self.spec
    }

    /// Directory holding the logs of processes started in this lab.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Every namespace of the lab, router first.
    pub fn namespaces(&self) -> &[String] {
        &self.namespaces
    }

    /// Run `argv` inside `role`'s namespace and return its output, whatever
    /// its exit status.
    pub fn exec(&self, role: &str, argv: &[&str]) -> Result<Output> {
        netns::exec(&self.ns(role), argv)
    }

    /// Like [`Lab::exec`] but a non-zero exit is an error (showing the command
    /// and its stderr); returns stdout.
    pub fn exec_ok(&self, role: &str, argv: &[&str]) -> Result<String> {
        netns::exec_ok(&self.ns(role), argv)
    }

    /// Start `argv` in `role`'s namespace; stdout and stderr go to a log file
    /// in [`Lab::dir`]. Dropping the returned value kills its process group.
    pub fn spawn(&self, role: &str, argv: &[&str]) -> Result<LabProcess> {
        self.spawn_with(role, argv, false)
    }

    pub fn link_down(&self, role: &str, ifname: &str) -> Result<()> {
        netns::link_down(&self.ns(role), ifname)
    }

    /// Bring `ifname` in `role` back up, restoring the default route the
    /// kernel dropped while the link was down.
    pub fn link_up(&self, role: &str, ifname: &str) -> Result<()> {
        netns::link_up(&self.ns(role), ifname)?;
        if self
            .default_route(role)
            .is_some_and(|(dev, _)| dev == ifname)
        {
            self.set_default_route(role)?;
        }
        Ok(())
    }

    /// Poll `f` every 20 ms until it returns true; error if `deadline` passes
    /// first, naming `what` was awaited.
    pub fn wait_until(
        &self,
        what: &str,
        deadline: Duration,
        mut f: impl FnMut() -> bool,
    ) -> Result<()> {
        let start = Instant::now();
        loop {
            if f() {
                return Ok(());
            }
            if start.elapsed() >= deadline {
                bail!(
                    "lab {}: timed out after {deadline:?} waiting for: {what}",
                    self.spec.name
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Move the calling thread into `role`'s network namespace (setns(2)).
    /// It stays there: do this on a thread dedicated to that namespace.
    pub fn enter(&self, role: &str) -> Result<()> {
        netns::enter(&self.ns(role))
    }

    /// Keep the lab after this value is gone: namespaces stay, its HTTP
    /// servers keep running. `viplab down NAME` removes it.
    pub fn persist(mut self) {
        self.armed = false;
        let backends = std::mem::take(self.backends.get_mut().unwrap_or_else(|e| e.into_inner()));
        for p in backends.into_iter().flatten() {
            p.detach();
        }
        if let Some(p) = self.sorry.take() {
            p.detach();
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let backends = std::mem::take(self.backends.get_mut().unwrap_or_else(|e| e.into_inner()));
        drop(backends);
        self.sorry.take();
        // Processes started by the test itself (possibly still owned by it)
        // die with the namespaces.
        for ns in self.namespaces.iter().rev() {
            if let Err(e) = netns::remove(ns) {
                eprintln!(
                    "lab {}: teardown could not remove namespace {ns}: {e:#}; run `viplab down {}`",
                    self.spec.name, self.spec.name
                );
            }
        }
        if std::thread::panicking() {
            eprintln!(
                "lab {}: logs of its processes kept in {}",
                self.spec.name,
                self.dir.display()
            );
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
