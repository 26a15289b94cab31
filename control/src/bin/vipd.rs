//! `vipd`: one load-balancer node.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

#[derive(Parser)]
#[command(name = "vipd", version, about = "vipd load-balancer node")]
struct Args {
    /// Run a node with this configuration file.
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with = "check_config",
        required_unless_present = "check_config"
    )]
    config: Option<PathBuf>,
    /// Validate a configuration file and exit (0 when valid).
    #[arg(long, value_name = "FILE")]
    check_config: Option<PathBuf>,
}

fn main() -> ExitCode {
    // Milliseconds: a VRRP takeover is judged in tens of them.
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
        .format_timestamp_millis()
        .init();
    let args = Args::parse();
    if let Some(path) = args.check_config {
        return match control::config::load(&path) {
            Ok(cfg) => {
                // A reader that stops early (`| head -1`) is no error.
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{}: OK", path.display())
                    .and_then(|()| write!(out, "{}", cfg.summary()));
                ExitCode::SUCCESS
            }
            Err(errors) => {
                eprintln!("{errors}");
                ExitCode::FAILURE
            }
        };
    }
    let Some(path) = args.config else {
        return ExitCode::FAILURE;
    };
    let cfg = match control::config::load(&path) {
        Ok(cfg) => cfg,
        Err(errors) => {
            eprintln!("{errors}");
            eprintln!("vipd: not started: {} has errors", path.display());
            return ExitCode::FAILURE;
        }
    };
    // Before the runtime starts, so its threads inherit the mask.
    control::daemon::keep_off_worker_cores(&cfg.dataplane);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("vipd: cannot start the control runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(control::daemon::run(cfg, path)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vipd: {e:#}");
            ExitCode::FAILURE
        }
    }
}
