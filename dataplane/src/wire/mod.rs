//! Zero-copy typed views over frames.
