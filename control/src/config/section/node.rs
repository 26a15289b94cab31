//! `[node]`: who this node is.

use crate::config::reader::{Ctx, Tbl};

/// `[node]`: who this node is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub name: String,
    /// Defaults to `"default"`.
    pub site: String,
}

pub(super) fn read(cx: &mut Ctx, t: &Tbl) -> Option<Identity> {
    t.check_keys(cx, &["name", "site"]);
    let name = t.must("name", t.str(cx, "name"), cx);
    let site = t.str(cx, "site").unwrap_or_else(|| "default".to_string());
    let name = name?;
    if name.trim().is_empty() {
        cx.err_at(
            &t.field("name"),
            "the node name is empty; give this node a name such as \"lb1\"",
        );
    }
    Some(Identity { name, site })
}
