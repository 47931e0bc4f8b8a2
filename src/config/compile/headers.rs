//! The `upstream_headers` section: which client request headers are
//! forwarded to upstreams (hop-by-hop and credential headers never are).

use super::errors::Errors;
use crate::config::{raw, Problem};
use crate::hygiene::HeaderPolicy;

pub(super) fn compile_headers(h: &raw::UpstreamHeaders, errs: &mut Errors) -> HeaderPolicy {
    let mut forward_errs = Vec::new();
    let policy = HeaderPolicy::new(&h.forward, &mut forward_errs);
    errs.extend(
        forward_errs
            .into_iter()
            .map(|e| Problem::from_text(&format!("upstream_headers.forward{e}"))),
    );
    policy
}
