//! One control request line, decoded and validated by `vipd-ctl-proto` and
//! executed on a node without a dataplane (`detached_node.toml`): whatever
//! the bytes, the node answers with a reply and does not panic, and a line
//! the decoder refuses gets the decoder's reason. Seeds: `seeds/ctl_request`.

#![no_main]

use std::path::Path;
use std::sync::OnceLock;

use control::node::Node;
use libfuzzer_sys::fuzz_target;

struct Fixture {
    rt: tokio::runtime::Runtime,
    node: Node,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("detached_node.toml");
        let cfg = control::config::load(&path).unwrap_or_else(|e| panic!("{e}"));
        Fixture {
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("tokio runtime"),
            node: Node::detached(cfg, path),
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    let reply = f.rt.block_on(control::ctl::handle(&f.node, data));
    assert_eq!(reply.ok, reply.error.is_none());
    // A line the decoder refuses is answered with the decoder's reason.
    if let Err(e) = ctlproto::parse(data) {
        assert_eq!(reply.error, Some(e.to_string()));
    }
});
