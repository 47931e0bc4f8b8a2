//! Identifiers the gateway makes up: request ids (the `x-request-id` it
//! sets when the client sent none it trusts, tunnel frame ids).

/// A new random request id: 32 lowercase hex characters.
pub fn new_request_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}
