//! Batching of local changes: records wait a few ms so one datagram and
//! one tag carry many, but never longer than `flush_after_ms`.

use super::{Dest, Now, Output, Session};
use crate::message::{Body, MessageType};
use crate::ConnRecord;

impl Session {
    pub(super) fn queue(&mut self, record: ConnRecord, now: Now, out: &mut Vec<Output>) {
        if self.pending.is_empty() {
            self.pending_since_ms = now.ms;
        }
        self.pending.push(record);
        if self.pending.len() >= self.per_message {
            self.flush(now, out);
        }
    }

    pub(super) fn flush_if_due(&mut self, now: Now, out: &mut Vec<Output>) {
        if !self.pending.is_empty()
            && now.ms.saturating_sub(self.pending_since_ms) >= self.cfg.flush_after_ms
        {
            self.flush(now, out);
        }
    }

    fn flush(&mut self, now: Now, out: &mut Vec<Output>) {
        // Taken out and put back so the buffer's allocation is reused.
        let mut records = std::mem::take(&mut self.pending);
        self.send(
            Dest::All,
            MessageType::Batch,
            0,
            Body::Records(&records),
            now,
            out,
        );
        records.clear();
        self.pending = records;
    }
}
