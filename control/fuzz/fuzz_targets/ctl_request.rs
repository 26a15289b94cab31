//! One control request line, decoded, validated and executed on a node
//! without a dataplane (`detached_node.toml`): whatever the bytes, the node
//! answers with a reply and does not panic. Seeds: `seeds/ctl_request`.

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
});
