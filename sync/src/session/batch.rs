//! Batching of local changes: records wait a few ms so one datagram and
//! one tag carry many, but never longer than `flush_after_ms`. Each family
//! has its own message type, so each waits in its own buffer; when either
//! fills a datagram, both go out.

use super::{Dest, Now, Output, Session};
use crate::message::{Body, MessageType};
use crate::AnyRecord;

impl Session {
    pub(super) fn queue(&mut self, record: AnyRecord, now: Now, out: &mut Vec<Output>) {
        if self.pending() == 0 {
            self.pending_since_ms = now.ms;
        }
        let full = match record {
            AnyRecord::V4(r) => {
                self.pending.push(r);
                self.pending.len() >= self.per_message
            }
            AnyRecord::V6(r) => {
                self.pending6.push(r);
                self.pending6.len() >= self.per_message6
            }
        };
        if full {
            self.flush(now, out);
        }
    }

    pub(super) fn flush_if_due(&mut self, now: Now, out: &mut Vec<Output>) {
        if self.pending() != 0
            && now.ms.saturating_sub(self.pending_since_ms) >= self.cfg.flush_after_ms
        {
            self.flush(now, out);
        }
    }

    fn flush(&mut self, now: Now, out: &mut Vec<Output>) {
        // Taken out and put back so the buffers' allocations are reused.
        let mut records = std::mem::take(&mut self.pending);
        if !records.is_empty() {
            let body = Body::Records(&records);
            self.send(Dest::All, MessageType::Batch, 0, body, now, out);
        }
        records.clear();
        self.pending = records;
        let mut records = std::mem::take(&mut self.pending6);
        if !records.is_empty() {
            let body = Body::Records6(&records);
            self.send(Dest::All, MessageType::Batch6, 0, body, now, out);
        }
        records.clear();
        self.pending6 = records;
    }
}
