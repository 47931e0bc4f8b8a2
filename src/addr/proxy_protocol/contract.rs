//! The fuzz contract of `addr::proxy_protocol`: an oracle that panics when the code
//! beside it breaks a property (fuzz target and `tests/fuzz_corpus.rs`).
//! Built only for tests and with the `contracts` feature.

#![allow(clippy::panic)]

use super::*;

/// The parser's contract, checked on arbitrary input by the fuzz target
/// (`fuzz/`) and by `cargo test` over the committed corpus. Panics when
/// broken:
///
/// - a header is never longer than the input, nor a v1 line over 107 bytes;
/// - split invariance: every prefix shorter than a header is `Incomplete`,
///   and every prefix that contains it gives the same header;
/// - a prefix of invalid input is `Incomplete` or `Invalid`, never a header;
/// - `Incomplete(n)` always asks for more than it was given.
pub fn check_contract(data: &[u8]) {
    let full = parse(data);
    match &full {
        Parsed::Header { len, .. } => {
            assert!(*len <= data.len(), "header longer than input");
            if data.starts_with(b"PROXY ") {
                assert!(*len <= V1_MAX, "v1 header over 107 bytes");
            }
            for k in 0..data.len() {
                let part = parse(&data[..k]);
                if k < *len {
                    assert!(
                        matches!(part, Parsed::Incomplete(_)),
                        "prefix {k} of a {len}-byte header: {part:?}"
                    );
                } else {
                    assert_eq!(part, full, "prefix {k} changes the header");
                }
            }
        }
        Parsed::Invalid(_) => {
            for k in 0..data.len() {
                let part = parse(&data[..k]);
                assert!(
                    !matches!(part, Parsed::Header { .. }),
                    "prefix {k} of invalid input is a header"
                );
            }
        }
        Parsed::Incomplete(need) => {
            assert!(
                *need > data.len(),
                "Incomplete({need}) with {} bytes",
                data.len()
            );
            for k in 0..data.len() {
                assert!(matches!(parse(&data[..k]), Parsed::Incomplete(_)));
            }
        }
    }
    // whatever the parser says, the connection front's signature check agrees
    // on complete headers
    if matches!(full, Parsed::Header { .. }) {
        assert!(looks_like_header(data));
    }
}
