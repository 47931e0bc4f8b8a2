//! The fuzz contract of `session`: an oracle that panics when the code
//! beside it breaks a property (fuzz target and `tests/fuzz_corpus.rs`).
//! Built only for tests and with the `contracts` feature.

#![allow(clippy::panic)]

use super::*;

/// Secrets the contract seals with (`fuzz/corpus/session_open` holds
/// tokens sealed with the first, issued around [`CONTRACT_NOW`]).
pub(super) const CONTRACT_SECRETS: [&str; 2] = [
    "mcp-edge fuzz contract key one 0123456789",
    "mcp-edge fuzz contract key two 0123456789",
];
/// The contract's clock for raw tokens (2027-01-15), so a committed token
/// keeps the same verdict whenever the corpus is replayed.
pub(super) const CONTRACT_NOW: u64 = 1_800_000_000;
/// The contract's `sessions.max_age_secs`.
pub(super) const CONTRACT_MAX_AGE: u64 = 86_400;

pub(super) fn contract_keys(secrets: &[&str]) -> Option<SessionKeys> {
    let secrets: Vec<String> = secrets.iter().map(|s| s.to_string()).collect();
    SessionKeys::new(&secrets, Duration::from_secs(CONTRACT_MAX_AGE)).ok()
}

/// Reads fields off the fuzz input, zero-padded past its end.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.0.split_at(n.min(self.0.len()));
        self.0 = rest;
        head
    }
    fn array<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        let head = self.take(N);
        out[..head.len()].copy_from_slice(head);
        out
    }
    fn text(&mut self, n: usize) -> String {
        String::from_utf8_lossy(self.take(n)).into_owned()
    }
}

/// The verdict the documented rules give for an authentic token of `owner`
/// opened by its own principal at `now`.
pub(super) fn contract_verdict(owner: &Owner, now: u64) -> Result<Owner, Refused> {
    let too_old = now.saturating_sub(owner.issued) > CONTRACT_MAX_AGE;
    let from_the_future = owner.issued > now.saturating_add(SKEW_SECS);
    if too_old || from_the_future {
        Err(Refused::Expired)
    } else {
        Ok(owner.clone())
    }
}

/// Applies fuzz-driven edits to a token: 4 bytes each, `[op, pos, pos, value]`
/// (flip a bit, set, insert or delete a byte, truncate, swap two bytes).
pub(super) fn tamper(token: &str, ops: &[u8]) -> String {
    let mut t = token.as_bytes().to_vec();
    for op in ops.chunks_exact(4).take(64) {
        let at = usize::from(u16::from_be_bytes([op[1], op[2]])) % (t.len() + 1);
        let v = op[3];
        match op[0] % 6 {
            0 if at < t.len() => t[at] ^= 1 << (v % 8),
            1 if at < t.len() => t[at] = v,
            2 => t.insert(at, v),
            3 if at < t.len() => {
                t.remove(at);
            }
            4 => t.truncate(at),
            5 if at < t.len() => {
                let other = usize::from(v) % t.len();
                t.swap(at, other);
            }
            _ => {}
        }
    }
    String::from_utf8_lossy(&t).into_owned()
}

/// An authentic token opens to `owner` and nothing else: other principals,
/// keys that did not seal it, every single-byte change and every truncation
/// are refused.
pub(super) fn contract_authentic(keys: &SessionKeys, token: &str, owner: &Owner) {
    let now = owner.issued;
    assert_eq!(keys.open(token, &owner.principal, now).as_ref(), Ok(owner));
    let mut other = owner.principal;
    other[0] ^= 1;
    assert_eq!(keys.open(token, &other, now), Err(Refused::OtherPrincipal));
    assert_eq!(
        ephemeral().open(token, &owner.principal, now),
        Err(Refused::NotOpened),
        "opened with a key that did not seal it"
    );
    let bytes = token.as_bytes();
    for i in 0..bytes.len() {
        for forged in [
            [&bytes[..i], &bytes[i + 1..]].concat(),
            [&bytes[..i], &[bytes[i] ^ 0x01], &bytes[i + 1..]].concat(),
            bytes[..i].to_vec(),
        ] {
            let forged = String::from_utf8_lossy(&forged);
            assert!(
                keys.open(&forged, &owner.principal, now).is_err(),
                "changed at byte {i} and still opened: {forged}"
            );
        }
    }
}

/// The session token contract on any input (fuzz target `session_open`,
/// `cargo test` over `fuzz/corpus/session_open`). Panics when broken.
///
/// Input that does not start with a NUL byte is a presented token: opening
/// it never panics, never succeeds with keys nobody sealed with, and if it
/// opens with the contract's keys (a committed sealed token) it is
/// authentic: only its own principal opens it, and every single-byte
/// change or truncation of it is refused.
///
/// After a NUL byte the input describes an owner (issue time, a clock
/// reading, principal, upstream, endpoint, upstream session id) and then
/// edits: the owner seals exactly when its fields fit, the token is visible
/// ASCII within the accepted length, opens to the same owner under the age
/// and skew rules, opens after key rotation (prepending a key) but not with
/// only the new key; and the edited token is refused unless the edits gave
/// back the very same token.
pub fn check_contract(data: &[u8]) {
    let Some(keys) = contract_keys(&CONTRACT_SECRETS) else {
        return;
    };
    let Some((&0, rest)) = data.split_first() else {
        let token = String::from_utf8_lossy(data);
        let principal = principal_digest("fuzz", "contract");
        assert!(
            ephemeral().open(&token, &principal, CONTRACT_NOW).is_err(),
            "a token opened with a key nobody sealed with"
        );
        if let Ok(owner) = keys.open(&token, &principal, CONTRACT_NOW) {
            contract_authentic(&keys, &token, &owner);
        }
        return;
    };
    let mut r = Reader(rest);
    let issued = u64::from_be_bytes(r.array());
    let clock = r.array::<1>()[0];
    let delta = i64::from(i32::from_be_bytes(r.array()));
    let now = match clock {
        253 => 0,
        254 => u64::MAX,
        255 => CONTRACT_NOW,
        _ => issued.saturating_add_signed(delta),
    };
    let principal = r.array::<DIGEST>();
    let [up_len, ep_len] = r.array();
    let upstream = r.text(usize::from(up_len));
    let endpoint = r.text(usize::from(ep_len));
    let id_len = usize::from(u16::from_be_bytes(r.array())) % (MAX_UPSTREAM_ID + 64);
    let session = r.text(id_len);
    let ops = r.0;
    let owner = Owner {
        upstream,
        endpoint,
        session,
        principal,
        issued,
    };
    let fits = owner.upstream.len() <= 255
        && owner.endpoint.len() <= 255
        && owner.session.len() <= MAX_UPSTREAM_ID;
    let sealed = keys.seal(&owner);
    assert_eq!(sealed.is_some(), fits, "seal refused or accepted wrongly");
    let Some(token) = sealed else {
        return;
    };
    assert!(token.starts_with(VERSION as char), "token version");
    assert!(token.len() <= 1 + MAX_TOKEN_CHARS, "token too long to open");
    assert!(
        token.bytes().all(|b| (0x21..=0x7e).contains(&b)),
        "token not visible ASCII"
    );
    assert_eq!(
        keys.open(&token, &principal, now),
        contract_verdict(&owner, now)
    );
    // rotation: a prepended key seals, the old one still opens
    if let (Some(rotated), Some(only_new)) = (
        contract_keys(&[CONTRACT_SECRETS[1], CONTRACT_SECRETS[0]]),
        contract_keys(&[CONTRACT_SECRETS[1]]),
    ) {
        assert_eq!(
            rotated.open(&token, &principal, now),
            contract_verdict(&owner, now)
        );
        assert_eq!(
            only_new.open(&token, &principal, now),
            Err(Refused::NotOpened)
        );
    }
    let forged = tamper(&token, ops);
    let verdict = keys.open(&forged, &principal, owner.issued);
    if forged == token {
        assert_eq!(verdict, Ok(owner), "the same token opened differently");
    } else {
        assert!(verdict.is_err(), "a tampered token opened: {forged}");
    }
}
