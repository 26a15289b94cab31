//! The engine's own small AF_XDP API over `xsk-rs`: one UMEM per worker,
//! shared by the worker's sockets on every interface, plus the worker's pool
//! of free frames. All ring operations (and their `unsafe`) live here.
//!
//! Frame ownership: every UMEM frame is in exactly one place at a time — the
//! free pool, a fill ring (or the kernel filling it / its rx ring), a tx ring
//! (or the kernel sending it / its completion ring), or in the worker's hands
//! between `recv`/`alloc` and `send`/`release`.

use std::ffi::CString;
use std::num::NonZeroU32;
use std::os::fd::{AsRawFd, RawFd};

use xsk_rs::config::{
    BindFlags, FrameSize, Interface, LibxdpFlags, QueueSize, SocketConfig, UmemConfig,
};
use xsk_rs::{CompQueue, FillQueue, FrameDesc, RxQueue, Socket, TxQueue, Umem};

use super::{EngineError, PortInfo};
use dataplane::counters::SocketStats;

/// Bytes per UMEM frame (room for a 1500-byte MTU frame after the
/// kernel's XDP headroom).
pub(super) const FRAME_SIZE: u32 = 2048;

/// Largest ring the engine asks for: big enough to absorb what the receive
/// NAPI pushes while the worker waits for its core.
const MAX_RING: u32 = 16384;

struct Sock {
    tx: TxQueue,
    rx: RxQueue,
    fq: FillQueue,
    cq: CompQueue,
    ring_size: u32,
    /// Frames given to the fill ring and not yet received back.
    in_fill: u32,
}

/// The AF_XDP sockets of one worker (queue `q` of every interface) over one
/// shared UMEM.
pub(super) struct SocketSet {
    // Field order matters: sockets go before the UMEM they use.
    socks: Vec<Sock>,
    umem: Umem,
    free: Vec<FrameDesc>,
    scratch: Vec<FrameDesc>,
    pollfds: Vec<libc::pollfd>,
}

fn sock_err(port: &PortInfo, queue: u16, error: impl std::fmt::Display) -> EngineError {
    EngineError::Socket {
        interface: port.name.clone(),
        queue,
        error: error.to_string(),
    }
}

impl SocketSet {
    /// Opens queue `queue` on every port, all over one UMEM of `frames`
    /// frames.
    pub(super) fn open(
        ports: &[PortInfo],
        queue: u16,
        frames: u32,
        batch: u32,
    ) -> Result<SocketSet, EngineError> {
        let first = ports
            .first()
            .ok_or_else(|| EngineError::Config("no interfaces configured".into()))?;
        let nports = ports.len() as u32;
        // Half of the frames wait in fill rings, the rest carry frames in
        // flight towards tx rings.
        let per_port = (frames / (2 * nports)).max(batch);
        let ring_size = (1u32 << (31 - per_port.leading_zeros())).min(MAX_RING);
        let qsize = QueueSize::new(ring_size).map_err(|e| sock_err(first, queue, e))?;
        let umem_cfg = UmemConfig::builder()
            .frame_size(FrameSize::new(FRAME_SIZE).map_err(|e| sock_err(first, queue, e))?)
            .fill_queue_size(qsize)
            .comp_queue_size(qsize)
            .frame_headroom(0)
            .build()
            .map_err(|e| sock_err(first, queue, e))?;
        let count = NonZeroU32::new(frames)
            .ok_or_else(|| EngineError::Config("frames_per_worker must not be 0".into()))?;
        let (umem, free) = Umem::new(umem_cfg, count, false).map_err(|e| {
            sock_err(
                first,
                queue,
                format!("cannot create the packet memory (UMEM) of {frames} frames: {e}"),
            )
        })?;

        let mut socks = Vec::with_capacity(ports.len());
        for (i, port) in ports.iter().enumerate() {
            // The first socket owns the UMEM registration and sets its
            // options; sockets sharing it must bind with no flags.
            let bind = if i == 0 {
                BindFlags::XDP_USE_NEED_WAKEUP
            } else {
                BindFlags::empty()
            };
            let cfg = SocketConfig::builder()
                .rx_queue_size(qsize)
                .tx_queue_size(qsize)
                .libxdp_flags(LibxdpFlags::XSK_LIBXDP_FLAGS_INHIBIT_PROG_LOAD)
                .bind_flags(bind)
                .build();
            let name = CString::new(port.name.as_str())
                .map_err(|_| sock_err(port, queue, "interface name contains a NUL byte"))?;
            // SAFETY: program loading is inhibited (the engine attaches its
            // own), which is what xsk-rs requires when sockets share a UMEM.
            let (tx, rx, rings) =
                unsafe { Socket::new(cfg, &umem, &Interface::new(name), u32::from(queue)) }
                    .map_err(|e| {
                        sock_err(
                            port,
                            queue,
                            format!(
                                "{e}{} (is the queue in use by another AF_XDP program, \
                                 or does the interface have fewer queues?)",
                                std::error::Error::source(&e)
                                    .map(|s| format!(": {s}"))
                                    .unwrap_or_default()
                            ),
                        )
                    })?;
            let (fq, cq) = rings
                .ok_or_else(|| sock_err(port, queue, "no fill/completion rings for this socket"))?;
            socks.push(Sock {
                tx,
                rx,
                fq,
                cq,
                ring_size,
                in_fill: 0,
            });
        }
        let pollfds = socks
            .iter()
            .map(|s| libc::pollfd {
                fd: s.rx.fd().as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        let mut set = SocketSet {
            socks,
            umem,
            free,
            scratch: vec![FrameDesc::default(); ring_size as usize],
            pollfds,
        };
        // Filled before the sockets enter the `xsks` maps, so frames
        // steered before the worker's first loop are not dropped.
        set.refill();
        Ok(set)
    }

    /// Socket descriptors in port order (for the `xsks` maps).
    pub(super) fn fds(&self) -> Vec<RawFd> {
        self.socks.iter().map(|s| s.rx.fd().as_raw_fd()).collect()
    }

    pub(super) fn ports(&self) -> usize {
        self.socks.len()
    }

    /// The kernel's counts over every socket; a socket whose counts cannot
    /// be read (not expected once bound) adds nothing.
    pub(super) fn kernel_stats(&self) -> SocketStats {
        self.socks
            .iter()
            .filter_map(|s| s.rx.fd().xdp_statistics().ok())
            .map(|k| SocketStats {
                rx_ring_full: k.rx_ring_full(),
                rx_dropped: k.rx_dropped(),
                fill_ring_empty: k.rx_fill_ring_empty_descs(),
                invalid_descs: k.rx_invalid_descs() + k.tx_invalid_descs(),
            })
            .fold(SocketStats::default(), |a, b| a + b)
    }

    /// Takes transmitted frames back from every completion ring.
    pub(super) fn reclaim(&mut self) {
        for s in &mut self.socks {
            // SAFETY: completion entries are frames of this UMEM that we put
            // on this socket's tx ring; they return to the pool only here.
            let n = unsafe { s.cq.consume(&mut self.scratch) };
            self.free.extend_from_slice(&self.scratch[..n]);
        }
    }

    /// Tops every fill ring up to its share of the free frames.
    pub(super) fn refill(&mut self) {
        for s in &mut self.socks {
            let want = (s.ring_size - s.in_fill) as usize;
            let n = want.min(self.free.len());
            if n == 0 {
                continue;
            }
            let from = self.free.len() - n;
            // SAFETY: the frames come from the free pool (owned by no ring);
            // `in_fill` never exceeds the ring size, so the reservation of
            // `n` entries succeeds or produces nothing.
            let done = unsafe { s.fq.produce(&self.free[from..]) };
            self.free.truncate(self.free.len() - done);
            s.in_fill += done as u32;
            if done > 0 && s.fq.needs_wakeup() {
                // Wake-ups only nudge the driver; a failure shows as no rx.
                let _ = s.fq.wakeup(s.rx.fd_mut(), 0);
            }
        }
    }

    /// Receives up to `out.len()` frames from `port`.
    pub(super) fn recv(&mut self, port: usize, out: &mut [FrameDesc]) -> usize {
        let Some(s) = self.socks.get_mut(port) else {
            return 0;
        };
        // SAFETY: rx entries are frames of this UMEM that the kernel filled
        // from our fill ring; they now belong to the caller.
        let n = unsafe { s.rx.consume(out) };
        s.in_fill -= n as u32;
        n
    }

    /// Runs `f` on the packet bytes of `desc`.
    pub(super) fn with_frame<R>(&self, desc: &mut FrameDesc, f: impl FnOnce(&mut [u8]) -> R) -> R {
        // SAFETY: `desc` is a frame of this UMEM in the caller's hands (not
        // on any ring), so nothing else reads or writes it meanwhile.
        let mut data = unsafe { self.umem.data_mut(desc) };
        f(data.contents_mut())
    }

    /// Copies `bytes` into the frame `desc` and sets its length; false if
    /// they do not fit.
    pub(super) fn write(&self, desc: &mut FrameDesc, bytes: &[u8]) -> bool {
        use std::io::Write;
        // SAFETY: as in `with_frame`.
        let mut data = unsafe { self.umem.data_mut(desc) };
        let mut cursor = data.cursor();
        if cursor.buf_len() < bytes.len() {
            return false;
        }
        cursor.set_pos(0);
        cursor.write_all(bytes).is_ok()
    }

    /// Shortens the packet of `desc` to its first `len` bytes (never
    /// lengthens it).
    pub(super) fn truncate(&self, desc: &mut FrameDesc, len: usize) {
        // SAFETY: as in `with_frame`.
        let mut data = unsafe { self.umem.data_mut(desc) };
        let mut cursor = data.cursor();
        if len < cursor.pos() {
            cursor.set_pos(len);
        }
    }

    /// A free frame, if any.
    pub(super) fn alloc(&mut self) -> Option<FrameDesc> {
        self.free.pop()
    }

    /// Returns a frame in the caller's hands to the pool.
    pub(super) fn release(&mut self, desc: FrameDesc) {
        self.free.push(desc);
    }

    /// Queues frames on `port`'s tx ring; returns how many were taken (the
    /// caller still owns the rest).
    pub(super) fn send(&mut self, port: usize, descs: &[FrameDesc]) -> usize {
        let Some(s) = self.socks.get_mut(port) else {
            return 0;
        };
        let n = (s.tx.nb_free(descs.len() as u32) as usize).min(descs.len());
        // SAFETY: the frames are of this UMEM and in the caller's hands; at
        // most the ring's free space is reserved, so `n` entries are taken.
        unsafe { s.tx.produce(&descs[..n]) }
    }

    /// Asks the kernel to transmit wherever a tx ring still holds frames
    /// (copy mode sends a limited number per call). Returns whether any tx
    /// ring is still non-empty.
    pub(super) fn kick(&mut self) -> bool {
        let mut pending = false;
        for s in &mut self.socks {
            if s.tx.nb_free_exact() < s.ring_size {
                pending = true;
                if s.tx.needs_wakeup() {
                    // EAGAIN/ENOBUFS are retried on the next loop.
                    let _ = s.tx.wakeup();
                }
            }
        }
        pending
    }

    /// Blocks until a socket has frames to receive or `timeout_ms` passes.
    pub(super) fn wait(&mut self, timeout_ms: i32) {
        // SAFETY: `pollfds` is an owned array of initialised pollfd structs
        // whose descriptors stay open as long as `self`.
        unsafe {
            libc::poll(
                self.pollfds.as_mut_ptr(),
                self.pollfds.len() as libc::nfds_t,
                timeout_ms,
            )
        };
    }
}
