//! The health check a configured backend gets.

use crate::config::{self, CheckKind};
use crate::health::{CheckSpec, Probe};

/// The checker spec of `backend` of service `service`.
pub(crate) fn check_spec(service: &str, backend: &config::Backend) -> CheckSpec {
    let addr = |port: Option<u16>| {
        std::net::SocketAddr::new(backend.address.ip(), port.unwrap_or(backend.address.port()))
    };
    let probe = match &backend.check.kind {
        CheckKind::None => Probe::None,
        CheckKind::Tcp { port } => Probe::Tcp { addr: addr(*port) },
        CheckKind::Http { port, get } => Probe::Http {
            addr: addr(*port),
            get: get.clone(),
        },
        CheckKind::Udp {
            port,
            payload,
            expect,
        } => Probe::Udp {
            addr: addr(*port),
            payload: payload.clone(),
            expect: expect.clone(),
        },
        CheckKind::Dns { port, name, qtype } => Probe::Dns {
            addr: addr(*port),
            name: name.clone(),
            qtype: *qtype,
        },
        CheckKind::Ping => Probe::Ping {
            ip: backend.address.ip(),
        },
        CheckKind::Script { command } => Probe::Script {
            command: command.clone(),
        },
    };
    CheckSpec {
        service: service.to_string(),
        backend: backend.address,
        probe,
        interval: backend.check.interval,
        timeout: backend.check.timeout,
        rise: backend.check.rise,
        fall: backend.check.fall,
    }
}
