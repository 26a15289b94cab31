//! NOTIFICATION messages (RFC 4271 §4.5, §6), Cease subcodes (RFC 4486, 8538)
//! and the shutdown communication (RFC 8203 / 9003).

use std::fmt;

/// Error codes and subcodes, named as in the RFCs.
pub mod code {
    pub const MESSAGE_HEADER: u8 = 1;
    pub const OPEN: u8 = 2;
    pub const UPDATE: u8 = 3;
    pub const HOLD_TIMER_EXPIRED: u8 = 4;
    pub const FSM: u8 = 5;
    pub const CEASE: u8 = 6;
    pub const ROUTE_REFRESH: u8 = 7;

    pub mod header {
        pub const CONNECTION_NOT_SYNCHRONIZED: u8 = 1;
        pub const BAD_MESSAGE_LENGTH: u8 = 2;
        pub const BAD_MESSAGE_TYPE: u8 = 3;
    }
    pub mod open {
        pub const UNSUPPORTED_VERSION: u8 = 1;
        pub const BAD_PEER_AS: u8 = 2;
        pub const BAD_BGP_IDENTIFIER: u8 = 3;
        pub const UNSUPPORTED_OPTIONAL_PARAMETER: u8 = 4;
        pub const UNACCEPTABLE_HOLD_TIME: u8 = 6;
        pub const UNSUPPORTED_CAPABILITY: u8 = 7;
    }
    pub mod update {
        pub const MALFORMED_ATTRIBUTE_LIST: u8 = 1;
        pub const UNRECOGNIZED_WELL_KNOWN_ATTRIBUTE: u8 = 2;
        pub const MISSING_WELL_KNOWN_ATTRIBUTE: u8 = 3;
        pub const ATTRIBUTE_FLAGS_ERROR: u8 = 4;
        pub const ATTRIBUTE_LENGTH_ERROR: u8 = 5;
        pub const INVALID_ORIGIN: u8 = 6;
        pub const INVALID_NEXT_HOP: u8 = 8;
        pub const OPTIONAL_ATTRIBUTE_ERROR: u8 = 9;
        pub const INVALID_NETWORK_FIELD: u8 = 10;
        pub const MALFORMED_AS_PATH: u8 = 11;
    }
    pub mod fsm {
        pub const UNSPECIFIED: u8 = 0;
        pub const UNEXPECTED_IN_OPEN_SENT: u8 = 1;
        pub const UNEXPECTED_IN_OPEN_CONFIRM: u8 = 2;
        pub const UNEXPECTED_IN_ESTABLISHED: u8 = 3;
    }
    pub mod cease {
        pub const MAX_PREFIXES: u8 = 1;
        pub const ADMINISTRATIVE_SHUTDOWN: u8 = 2;
        pub const PEER_DECONFIGURED: u8 = 3;
        pub const ADMINISTRATIVE_RESET: u8 = 4;
        pub const CONNECTION_REJECTED: u8 = 5;
        pub const OTHER_CONFIGURATION_CHANGE: u8 = 6;
        pub const CONNECTION_COLLISION_RESOLUTION: u8 = 7;
        pub const OUT_OF_RESOURCES: u8 = 8;
        pub const HARD_RESET: u8 = 9;
    }
    pub mod route_refresh {
        pub const INVALID_MESSAGE_LENGTH: u8 = 1;
    }
}

/// RFC 9003 allows up to 255 octets of UTF-8 in a shutdown communication.
pub const MAX_SHUTDOWN_MESSAGE: usize = 255;

/// A NOTIFICATION: error code, subcode and data. Codes outside the RFCs are kept as-is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub code: u8,
    pub subcode: u8,
    pub data: Vec<u8>,
}

impl Notification {
    pub fn new(code: u8, subcode: u8, data: Vec<u8>) -> Notification {
        Notification {
            code,
            subcode,
            data,
        }
    }

    /// Cease / Administrative Shutdown carrying `message` (RFC 8203); the text is
    /// cut at a character boundary to fit the 255-octet limit.
    pub fn administrative_shutdown(message: &str) -> Notification {
        Self::with_communication(code::cease::ADMINISTRATIVE_SHUTDOWN, message)
    }

    fn with_communication(subcode: u8, message: &str) -> Notification {
        let mut end = message.len().min(MAX_SHUTDOWN_MESSAGE);
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        let text = &message.as_bytes()[..end];
        let mut data = Vec::with_capacity(1 + text.len());
        data.push(text.len() as u8);
        data.extend_from_slice(text);
        Notification::new(code::CEASE, subcode, data)
    }

    /// The shutdown communication of a Cease / Administrative Shutdown or Reset, if
    /// it carries a well-formed one. Invalid UTF-8 is replaced, not rejected, so an
    /// operator still sees what the peer meant.
    pub fn shutdown_message(&self) -> Option<String> {
        let is_admin = self.code == code::CEASE
            && matches!(
                self.subcode,
                code::cease::ADMINISTRATIVE_SHUTDOWN | code::cease::ADMINISTRATIVE_RESET
            );
        if !is_admin {
            return None;
        }
        let (&len, rest) = self.data.split_first()?;
        let text = rest.get(..usize::from(len))?;
        Some(String::from_utf8_lossy(text).into_owned())
    }

    pub fn code_name(&self) -> &'static str {
        match self.code {
            code::MESSAGE_HEADER => "Message Header Error",
            code::OPEN => "OPEN Message Error",
            code::UPDATE => "UPDATE Message Error",
            code::HOLD_TIMER_EXPIRED => "Hold Timer Expired",
            code::FSM => "Finite State Machine Error",
            code::CEASE => "Cease",
            code::ROUTE_REFRESH => "ROUTE-REFRESH Message Error",
            _ => "Unknown Error Code",
        }
    }

    /// The subcode's name, or `None` where the code defines no such subcode.
    pub fn subcode_name(&self) -> Option<&'static str> {
        use code::*;
        Some(match (self.code, self.subcode) {
            (MESSAGE_HEADER, header::CONNECTION_NOT_SYNCHRONIZED) => "Connection Not Synchronized",
            (MESSAGE_HEADER, header::BAD_MESSAGE_LENGTH) => "Bad Message Length",
            (MESSAGE_HEADER, header::BAD_MESSAGE_TYPE) => "Bad Message Type",
            (OPEN, open::UNSUPPORTED_VERSION) => "Unsupported Version Number",
            (OPEN, open::BAD_PEER_AS) => "Bad Peer AS",
            (OPEN, open::BAD_BGP_IDENTIFIER) => "Bad BGP Identifier",
            (OPEN, open::UNSUPPORTED_OPTIONAL_PARAMETER) => "Unsupported Optional Parameter",
            (OPEN, 5) => "Authentication Failure (deprecated)",
            (OPEN, open::UNACCEPTABLE_HOLD_TIME) => "Unacceptable Hold Time",
            (OPEN, open::UNSUPPORTED_CAPABILITY) => "Unsupported Capability",
            (UPDATE, update::MALFORMED_ATTRIBUTE_LIST) => "Malformed Attribute List",
            (UPDATE, update::UNRECOGNIZED_WELL_KNOWN_ATTRIBUTE) => {
                "Unrecognized Well-known Attribute"
            }
            (UPDATE, update::MISSING_WELL_KNOWN_ATTRIBUTE) => "Missing Well-known Attribute",
            (UPDATE, update::ATTRIBUTE_FLAGS_ERROR) => "Attribute Flags Error",
            (UPDATE, update::ATTRIBUTE_LENGTH_ERROR) => "Attribute Length Error",
            (UPDATE, update::INVALID_ORIGIN) => "Invalid ORIGIN Attribute",
            (UPDATE, 7) => "AS Routing Loop (deprecated)",
            (UPDATE, update::INVALID_NEXT_HOP) => "Invalid NEXT_HOP Attribute",
            (UPDATE, update::OPTIONAL_ATTRIBUTE_ERROR) => "Optional Attribute Error",
            (UPDATE, update::INVALID_NETWORK_FIELD) => "Invalid Network Field",
            (UPDATE, update::MALFORMED_AS_PATH) => "Malformed AS_PATH",
            (FSM, fsm::UNSPECIFIED) => "Unspecified Error",
            (FSM, fsm::UNEXPECTED_IN_OPEN_SENT) => "Unexpected Message in OpenSent State",
            (FSM, fsm::UNEXPECTED_IN_OPEN_CONFIRM) => "Unexpected Message in OpenConfirm State",
            (FSM, fsm::UNEXPECTED_IN_ESTABLISHED) => "Unexpected Message in Established State",
            (CEASE, cease::MAX_PREFIXES) => "Maximum Number of Prefixes Reached",
            (CEASE, cease::ADMINISTRATIVE_SHUTDOWN) => "Administrative Shutdown",
            (CEASE, cease::PEER_DECONFIGURED) => "Peer De-configured",
            (CEASE, cease::ADMINISTRATIVE_RESET) => "Administrative Reset",
            (CEASE, cease::CONNECTION_REJECTED) => "Connection Rejected",
            (CEASE, cease::OTHER_CONFIGURATION_CHANGE) => "Other Configuration Change",
            (CEASE, cease::CONNECTION_COLLISION_RESOLUTION) => "Connection Collision Resolution",
            (CEASE, cease::OUT_OF_RESOURCES) => "Out of Resources",
            (CEASE, cease::HARD_RESET) => "Hard Reset",
            (ROUTE_REFRESH, route_refresh::INVALID_MESSAGE_LENGTH) => "Invalid Message Length",
            _ => return None,
        })
    }

    pub(crate) fn encode_body(&self, out: &mut Vec<u8>) {
        out.push(self.code);
        out.push(self.subcode);
        out.extend_from_slice(&self.data);
    }

    /// The body is at least code and subcode; anything after is data.
    pub(crate) fn decode_body(body: &[u8]) -> Option<Notification> {
        match body {
            [c, s, data @ ..] => Some(Notification::new(*c, *s, data.to_vec())),
            _ => None,
        }
    }
}

impl fmt::Display for Notification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code_name())?;
        match self.subcode_name() {
            Some(name) => write!(f, " / {name}")?,
            // Subcode 0 is "unspecific" for every code.
            None if self.subcode == 0 => {}
            None => write!(f, " / subcode {}", self.subcode)?,
        }
        if self.code == 0 || self.code > code::ROUTE_REFRESH {
            write!(f, " (code {})", self.code)?;
        }
        if let Some(msg) = self.shutdown_message() {
            if !msg.is_empty() {
                write!(f, ": {msg:?}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_reads_like_the_rfc() {
        let n = Notification::administrative_shutdown("maintenance");
        assert_eq!(
            n.to_string(),
            "Cease / Administrative Shutdown: \"maintenance\""
        );
        let n = Notification::new(code::HOLD_TIMER_EXPIRED, 0, vec![]);
        assert_eq!(n.to_string(), "Hold Timer Expired");
        let n = Notification::new(code::OPEN, code::open::UNACCEPTABLE_HOLD_TIME, vec![]);
        assert_eq!(n.to_string(), "OPEN Message Error / Unacceptable Hold Time");
        let n = Notification::new(42, 3, vec![]);
        assert_eq!(n.to_string(), "Unknown Error Code / subcode 3 (code 42)");
    }

    #[test]
    fn every_rfc_subcode_has_a_name() {
        let table: &[(u8, &[u8])] = &[
            (code::MESSAGE_HEADER, &[1, 2, 3]),
            (code::OPEN, &[1, 2, 3, 4, 5, 6, 7]),
            (code::UPDATE, &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]),
            (code::FSM, &[0, 1, 2, 3]),
            (code::CEASE, &[1, 2, 3, 4, 5, 6, 7, 8, 9]),
            (code::ROUTE_REFRESH, &[1]),
        ];
        for (c, subs) in table {
            for s in *subs {
                let n = Notification::new(*c, *s, vec![]);
                assert!(n.subcode_name().is_some(), "{c}/{s}");
            }
        }
    }

    #[test]
    fn shutdown_message_is_cut_at_a_char_boundary() {
        let long = "é".repeat(200);
        let n = Notification::administrative_shutdown(&long);
        let len = usize::from(n.data[0]);
        assert!(len <= MAX_SHUTDOWN_MESSAGE);
        assert_eq!(len + 1, n.data.len());
        let msg = n.shutdown_message().unwrap();
        assert!(long.starts_with(&msg));
        assert_eq!(msg.chars().count(), 127);
    }

    #[test]
    fn malformed_communication_is_not_shown() {
        let n = Notification::new(
            code::CEASE,
            code::cease::ADMINISTRATIVE_SHUTDOWN,
            vec![9, b'a'],
        );
        assert_eq!(n.shutdown_message(), None);
        assert_eq!(n.to_string(), "Cease / Administrative Shutdown");
    }
}
