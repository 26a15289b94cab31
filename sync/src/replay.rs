//! Replay protection per sender: the sender's epoch and a 64-message
//! sliding window below its highest sequence number (the IPsec scheme).
//! Datagrams may arrive reordered by a few positions; anything seen, from
//! an older epoch, or older than the window is refused.

/// Messages below the highest sequence number still accepted once.
pub const WINDOW: u64 = 64;

/// What a fresh message does to the window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fresh {
    /// Same epoch, a sequence number not seen yet.
    Same,
    /// A higher epoch: the sender restarted.
    NewEpoch,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ReplayWindow {
    epoch: u64,
    highest: u64,
    /// Bit `i` set: `highest - i` was seen. Bit 0 stands for `highest`
    /// itself, so a fresh window refuses seq 0, which no sender uses.
    seen: u64,
}

impl ReplayWindow {
    /// A window for a sender first heard at `epoch`.
    pub(crate) fn new(epoch: u64) -> ReplayWindow {
        ReplayWindow {
            epoch,
            highest: 0,
            seen: 1,
        }
    }

    /// Whether (`epoch`, `seq`) may be accepted; changes nothing, so a
    /// message failing a later check leaves the window as it was.
    pub(crate) fn check(&self, epoch: u64, seq: u64) -> Option<Fresh> {
        if epoch > self.epoch {
            return (seq != 0).then_some(Fresh::NewEpoch);
        }
        if epoch < self.epoch {
            return None;
        }
        if seq > self.highest {
            return Some(Fresh::Same);
        }
        let behind = self.highest - seq;
        (behind < WINDOW && self.seen & (1 << behind) == 0).then_some(Fresh::Same)
    }

    /// Records (`epoch`, `seq`), which [`ReplayWindow::check`] accepted.
    pub(crate) fn accept(&mut self, epoch: u64, seq: u64) {
        if epoch != self.epoch {
            *self = ReplayWindow::new(epoch);
        }
        if seq > self.highest {
            let ahead = seq - self.highest;
            self.seen = if ahead >= WINDOW {
                0
            } else {
                self.seen << ahead
            };
            self.seen |= 1;
            self.highest = seq;
        } else if self.highest - seq < WINDOW {
            self.seen |= 1 << (self.highest - seq);
        }
    }
}
