//! Hand-off queues between workers: a frame whose flow lives in another
//! worker's table is copied into a preallocated buffer and queued to it.
//! Buffers circulate between each worker's free and inbound queues, so
//! nothing is allocated per packet.

use crossbeam_queue::ArrayQueue;

use dataplane::verdict::PortId;

/// Largest frame a hand-off buffer holds (the UMEM frame size bounds what a
/// worker can receive anyway).
pub(super) const BUF_SIZE: usize = 2048;

/// Buffers per receiving worker.
const DEPTH: usize = 1024;

pub(super) struct Buf {
    pub(super) len: usize,
    pub(super) ingress: PortId,
    pub(super) data: [u8; BUF_SIZE],
}

struct Mailbox {
    inbound: ArrayQueue<Box<Buf>>,
    free: ArrayQueue<Box<Buf>>,
}

/// One mailbox per worker.
pub(super) struct Hub {
    boxes: Vec<Mailbox>,
}

impl Hub {
    pub(super) fn new(workers: usize) -> Hub {
        let boxes = (0..workers)
            .map(|_| {
                let free = ArrayQueue::new(DEPTH);
                for _ in 0..DEPTH {
                    // Capacity equals the number of buffers, so this fits.
                    let _ = free.push(Box::new(Buf {
                        len: 0,
                        ingress: 0,
                        data: [0; BUF_SIZE],
                    }));
                }
                Mailbox {
                    inbound: ArrayQueue::new(DEPTH),
                    free,
                }
            })
            .collect();
        Hub { boxes }
    }

    /// Copies `frame` to worker `to`; false when its queue is full (or the
    /// worker or frame size is out of range).
    pub(super) fn send(&self, to: u16, frame: &[u8], ingress: PortId) -> bool {
        let Some(mb) = self.boxes.get(usize::from(to)) else {
            return false;
        };
        if frame.len() > BUF_SIZE {
            return false;
        }
        let Some(mut buf) = mb.free.pop() else {
            return false;
        };
        buf.data[..frame.len()].copy_from_slice(frame);
        buf.len = frame.len();
        buf.ingress = ingress;
        // Each mailbox owns exactly DEPTH buffers, so `inbound` has room for
        // any buffer taken from `free`.
        match mb.inbound.push(buf) {
            Ok(()) => true,
            Err(buf) => {
                let _ = mb.free.push(buf);
                false
            }
        }
    }

    /// Next frame queued to worker `me`.
    pub(super) fn recv(&self, me: u16) -> Option<Box<Buf>> {
        self.boxes.get(usize::from(me))?.inbound.pop()
    }

    /// Returns a buffer obtained from `recv(me)`.
    pub(super) fn recycle(&self, me: u16, buf: Box<Buf>) {
        if let Some(mb) = self.boxes.get(usize::from(me)) {
            let _ = mb.free.push(buf);
        }
    }
}
