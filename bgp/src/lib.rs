//! Sans-IO BGP-4: message codec and per-peer session state machine.
