//! `GatewayError`: every way the gateway itself answers a request instead of the
//! upstream. One enum with exhaustive `status()`, `jsonrpc_code()` and `reason()`,
//! so a new variant cannot be added without choosing its HTTP status and its
//! JSON-RPC error code (DESIGN.md style rule 7).

use crate::jsonrpc::InvalidReason;
use crate::policy::Deny;

/// JSON-RPC 2.0 "Parse error".
pub const PARSE_ERROR: i32 = -32700;
/// JSON-RPC 2.0 "Invalid Request".
pub const INVALID_REQUEST: i32 = -32600;
/// JSON-RPC 2.0 "Method not found".
pub const METHOD_NOT_FOUND: i32 = -32601;
/// JSON-RPC 2.0 "Invalid params".
pub const INVALID_PARAMS: i32 = -32602;
/// JSON-RPC 2.0 "Internal error".
pub const INTERNAL_ERROR: i32 = -32603;
/// MCP 2026-07-28 `HeaderMismatch`: an `MCP-Protocol-Version`, `Mcp-Method` or
/// `Mcp-Name` header is missing, malformed, or disagrees with the body.
pub const HEADER_MISMATCH: i32 = -32020;
/// MCP 2026-07-28 `UnsupportedProtocolVersion`.
pub const UNSUPPORTED_PROTOCOL_VERSION: i32 = -32022;

/// A request the gateway answers itself, with the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GatewayError {
    /// Request path is not the MCP endpoint (or a health path).
    NotFound,
    /// HTTP method not allowed on the endpoint; carries the `Allow` header value.
    MethodNotAllowed(&'static str),
    /// `Origin` header present and not allowed (MCP transport security rule).
    OriginNotAllowed,
    /// `Host` header not in `server.allowed_hosts` (DNS-rebinding defence): 421.
    HostNotAllowed,
    /// No credentials were sent and anonymous access is off.
    Unauthenticated,
    /// Credentials were sent but are not valid (unknown key, conflicting headers).
    BadCredentials,
    /// Policy refused the call (not a `tools/call`).
    Forbidden(Deny),
    /// Policy refused a `tools/call`: answered exactly like an unknown tool.
    UnknownTool,
    /// Too many or too large request headers.
    HeadersTooLarge,
    /// Request target longer than `limits.max_uri_bytes`.
    UriTooLong,
    /// Body larger than `limits.max_body_bytes`.
    BodyTooLarge,
    /// Body is not `application/json`, or is compressed (cannot be inspected).
    UnsupportedMediaType,
    /// Body not read completely within `limits.body_timeout_ms`, or the client
    /// sent fewer bytes than announced.
    BodyIncomplete,
    /// Body is not valid JSON.
    Parse,
    /// Body is JSON but not one JSON-RPC request, notification or response.
    InvalidRequest(InvalidReason),
    /// A request whose parameters cannot be authorized (e.g. tools/call without a string name).
    InvalidParams(&'static str),
    /// MCP 2026-07-28 header/body disagreement (`Mcp-Method`, `Mcp-Name`).
    HeaderMismatch(&'static str),
    /// An `Mcp-Session-Id` that does not open, belongs to another principal,
    /// is too old, or names an upstream that is gone: 404 so the client
    /// re-initializes (carries the reason label).
    SessionNotFound(&'static str),
    /// Unsupported `MCP-Protocol-Version` header value.
    UnsupportedProtocolVersion,
    /// The identity's rate limit is used up (`rate_limit`).
    RateLimited,
    /// The client address has used up its refusals (`rate_limit.refusals_rpm`):
    /// 429 for everything from it, before authentication.
    RefusalsLimited,
    /// A GET or DELETE with a body (nothing of it is forwarded).
    BodyNotAllowed,
    /// An upstream answer the gateway cannot inspect (unknown content type,
    /// a content coding, larger than `max_response_bytes`): replaced, never
    /// relayed unfiltered.
    UpstreamAnswerRefused(&'static str),
    /// The shared rate-limit store failed and `on_error: deny`.
    RateLimitUnavailable,
    /// No routing rule matched the call.
    NoRoute,
    /// A virtual server has no item of that name or URI (federation): the
    /// answer a server gives for what it does not have.
    UnknownItem(&'static str),
    /// A session-era call to a virtual server without `Mcp-Session-Id`.
    SessionRequired,
    /// Upstream refused or reset the connection, or answered garbage.
    UpstreamUnavailable,
    /// Upstream did not connect or answer in time.
    UpstreamTimeout,
    /// The gateway is shutting down and no longer takes new work.
    ShuttingDown,
    /// 503: the process holds its most legacy SSE streams (`legacy_sse`).
    TooManyStreams,
    /// 429: the principal has `tool_limits` `max_concurrent` calls of the
    /// tool running.
    ToolBusy,
    /// A tool call still running at its `tool_limits` `timeout_ms`.
    ToolTimeout,
    /// An answer larger than `max_response_bytes` (the tool's or the
    /// server's): never relayed in part.
    AnswerTooLarge(&'static str),
    /// `tool_integrity: block`: a call to a tool whose definition changed
    /// since it was pinned (answered like a tool nobody has).
    ToolChanged,
    /// A bug or resource failure inside the gateway.
    Internal,
}

impl GatewayError {
    /// HTTP status code of the answer.
    pub fn status(&self) -> u16 {
        match self {
            GatewayError::NotFound => 404,
            GatewayError::MethodNotAllowed(_) => 405,
            GatewayError::OriginNotAllowed => 403,
            GatewayError::HostNotAllowed => 421,
            GatewayError::Unauthenticated => 401,
            GatewayError::BadCredentials => 401,
            GatewayError::Forbidden(_) => 403,
            GatewayError::UnknownTool => 200,
            GatewayError::UriTooLong => 414,
            GatewayError::HeadersTooLarge => 431,
            GatewayError::BodyTooLarge => 413,
            GatewayError::UnsupportedMediaType => 415,
            GatewayError::BodyIncomplete => 408,
            GatewayError::Parse => 400,
            GatewayError::InvalidRequest(_) => 400,
            GatewayError::InvalidParams(_) => 400,
            GatewayError::HeaderMismatch(_) => 400,
            GatewayError::SessionNotFound(_) => 404,
            GatewayError::UnsupportedProtocolVersion => 400,
            GatewayError::RateLimited => 429,
            GatewayError::RefusalsLimited => 429,
            GatewayError::BodyNotAllowed => 400,
            GatewayError::UpstreamAnswerRefused(_) => 502,
            GatewayError::RateLimitUnavailable => 503,
            GatewayError::NoRoute => 404,
            GatewayError::UnknownItem(_) => 200,
            GatewayError::SessionRequired => 400,
            GatewayError::UpstreamUnavailable => 502,
            GatewayError::UpstreamTimeout => 504,
            GatewayError::ShuttingDown => 503,
            GatewayError::TooManyStreams => 503,
            GatewayError::ToolBusy => 429,
            GatewayError::ToolTimeout => 504,
            GatewayError::AnswerTooLarge(_) => 502,
            GatewayError::ToolChanged => 200,
            GatewayError::Internal => 500,
        }
    }

    /// JSON-RPC error code carried in the body.
    pub fn jsonrpc_code(&self) -> i32 {
        // MCP 2026-07-28 retires the implementation-defined -32000..-32019 range,
        // so transport-level refusals use the standard codes: the client's
        // fault is -32600, the gateway's or upstream's is -32603.
        match self {
            GatewayError::NotFound => INVALID_REQUEST,
            GatewayError::MethodNotAllowed(_) => INVALID_REQUEST,
            GatewayError::OriginNotAllowed => INVALID_REQUEST,
            GatewayError::HostNotAllowed => INVALID_REQUEST,
            GatewayError::Unauthenticated => INVALID_REQUEST,
            GatewayError::BadCredentials => INVALID_REQUEST,
            GatewayError::Forbidden(_) => INVALID_REQUEST,
            GatewayError::UnknownTool => INVALID_PARAMS,
            GatewayError::UriTooLong => INVALID_REQUEST,
            GatewayError::HeadersTooLarge => INVALID_REQUEST,
            GatewayError::BodyTooLarge => INVALID_REQUEST,
            GatewayError::UnsupportedMediaType => INVALID_REQUEST,
            GatewayError::BodyIncomplete => INVALID_REQUEST,
            GatewayError::Parse => PARSE_ERROR,
            GatewayError::InvalidRequest(_) => INVALID_REQUEST,
            GatewayError::InvalidParams(_) => INVALID_PARAMS,
            GatewayError::HeaderMismatch(_) => HEADER_MISMATCH,
            GatewayError::SessionNotFound(_) => INVALID_REQUEST,
            GatewayError::UnsupportedProtocolVersion => UNSUPPORTED_PROTOCOL_VERSION,
            GatewayError::RateLimited => INVALID_REQUEST,
            GatewayError::RefusalsLimited => INVALID_REQUEST,
            GatewayError::BodyNotAllowed => INVALID_REQUEST,
            GatewayError::UpstreamAnswerRefused(_) => INTERNAL_ERROR,
            GatewayError::RateLimitUnavailable => INTERNAL_ERROR,
            GatewayError::NoRoute => METHOD_NOT_FOUND,
            GatewayError::UnknownItem(_) => INVALID_PARAMS,
            GatewayError::SessionRequired => INVALID_REQUEST,
            GatewayError::UpstreamUnavailable => INTERNAL_ERROR,
            GatewayError::UpstreamTimeout => INTERNAL_ERROR,
            GatewayError::ShuttingDown => INTERNAL_ERROR,
            GatewayError::TooManyStreams => INTERNAL_ERROR,
            GatewayError::ToolBusy => INVALID_REQUEST,
            GatewayError::ToolTimeout => INTERNAL_ERROR,
            GatewayError::AnswerTooLarge(_) => INTERNAL_ERROR,
            GatewayError::ToolChanged => INVALID_PARAMS,
            GatewayError::Internal => INTERNAL_ERROR,
        }
    }

    /// Human-readable message for the JSON-RPC error and the access log.
    pub fn reason(&self) -> &'static str {
        match self {
            GatewayError::NotFound => "not found",
            GatewayError::MethodNotAllowed(_) => "method not allowed",
            GatewayError::OriginNotAllowed => "origin not allowed",
            GatewayError::HostNotAllowed => "host not allowed",
            GatewayError::Unauthenticated => "authentication required",
            GatewayError::BadCredentials => "invalid credentials",
            GatewayError::Forbidden(_) => "forbidden by policy",
            GatewayError::UnknownTool => "Unknown tool",
            GatewayError::UriTooLong => "request URI too long",
            GatewayError::HeadersTooLarge => "request headers too large",
            GatewayError::BodyTooLarge => "request body too large",
            GatewayError::UnsupportedMediaType => {
                "request body must be uncompressed application/json"
            }
            GatewayError::BodyIncomplete => "request body incomplete",
            GatewayError::Parse => "parse error: body is not valid JSON",
            GatewayError::InvalidRequest(r) => r.message(),
            GatewayError::InvalidParams(m) => m,
            GatewayError::HeaderMismatch(m) => m,
            GatewayError::SessionNotFound(_) => "Session not found: initialize a new session",
            GatewayError::UnsupportedProtocolVersion => "unsupported MCP-Protocol-Version",
            GatewayError::RateLimited => "rate limit exceeded",
            GatewayError::RefusalsLimited => "too many refused requests from this address",
            GatewayError::BodyNotAllowed => "GET and DELETE requests must not carry a body",
            GatewayError::UpstreamAnswerRefused(m) => m,
            GatewayError::RateLimitUnavailable => "rate limiting unavailable",
            GatewayError::NoRoute => "method not found",
            GatewayError::UnknownItem(m) => m,
            GatewayError::SessionRequired => "Bad Request: Mcp-Session-Id header is required",
            GatewayError::UpstreamUnavailable => "upstream unavailable",
            GatewayError::UpstreamTimeout => "upstream timed out",
            GatewayError::ShuttingDown => "gateway shutting down",
            GatewayError::TooManyStreams => "too many legacy SSE streams open; try again later",
            GatewayError::ToolBusy => {
                "too many calls of this tool running (tool_limits max_concurrent); retry later"
            }
            GatewayError::ToolTimeout => {
                "tool call timed out (tool_limits timeout_ms); cancelled upstream"
            }
            GatewayError::AnswerTooLarge(m) => m,
            GatewayError::ToolChanged => "Unknown tool",
            GatewayError::Internal => "internal gateway error",
        }
    }

    /// Whether the gateway refused the request (as opposed to an upstream or
    /// internal failure).
    pub fn is_refusal(&self) -> bool {
        !matches!(
            self,
            GatewayError::UpstreamUnavailable
                | GatewayError::UpstreamTimeout
                | GatewayError::UpstreamAnswerRefused(_)
                | GatewayError::RateLimitUnavailable
                | GatewayError::ShuttingDown
                | GatewayError::TooManyStreams
                | GatewayError::ToolTimeout
                | GatewayError::AnswerTooLarge(_)
                | GatewayError::Internal
        )
    }

    /// Whether the refusal counts against the client address's refusal
    /// budget (`rate_limit.refusals_rpm`): what probing produces (bad or
    /// missing credentials, policy refusals, forged session tokens), not
    /// malformed or oversized requests.
    pub fn counts_as_probe(&self) -> bool {
        match self {
            GatewayError::Unauthenticated
            | GatewayError::BadCredentials
            | GatewayError::Forbidden(_)
            | GatewayError::OriginNotAllowed
            | GatewayError::UnknownTool
            | GatewayError::UnknownItem(_) => true,
            GatewayError::SessionNotFound(r) => matches!(
                *r,
                "session_malformed" | "session_not_opened" | "session_other_principal"
            ),
            _ => false,
        }
    }

    /// Short stable label for logs and metrics.
    pub fn label(&self) -> &'static str {
        match self {
            GatewayError::NotFound => "not_found",
            GatewayError::MethodNotAllowed(_) => "method_not_allowed",
            GatewayError::OriginNotAllowed => "origin_not_allowed",
            GatewayError::HostNotAllowed => "host_not_allowed",
            GatewayError::Unauthenticated => "unauthenticated",
            GatewayError::BadCredentials => "bad_credentials",
            GatewayError::Forbidden(d) => d.as_str(),
            GatewayError::UnknownTool => "policy_unknown_tool",
            GatewayError::UriTooLong => "uri_too_long",
            GatewayError::HeadersTooLarge => "headers_too_large",
            GatewayError::BodyTooLarge => "body_too_large",
            GatewayError::UnsupportedMediaType => "unsupported_media_type",
            GatewayError::BodyIncomplete => "body_incomplete",
            GatewayError::Parse => "parse_error",
            GatewayError::InvalidRequest(_) => "invalid_request",
            GatewayError::InvalidParams(_) => "invalid_params",
            GatewayError::HeaderMismatch(_) => "header_mismatch",
            GatewayError::SessionNotFound(r) => r,
            GatewayError::UnsupportedProtocolVersion => "unsupported_protocol_version",
            GatewayError::RateLimited => "rate_limited",
            GatewayError::RefusalsLimited => "refusals_limited",
            GatewayError::BodyNotAllowed => "body_not_allowed",
            GatewayError::UpstreamAnswerRefused(_) => "upstream_answer_refused",
            GatewayError::RateLimitUnavailable => "rate_limit_unavailable",
            GatewayError::NoRoute => "no_route",
            GatewayError::UnknownItem(_) => "unknown_item",
            GatewayError::SessionRequired => "session_required",
            GatewayError::UpstreamUnavailable => "upstream_unavailable",
            GatewayError::UpstreamTimeout => "upstream_timeout",
            GatewayError::ShuttingDown => "shutting_down",
            GatewayError::TooManyStreams => "legacy_streams_full",
            GatewayError::ToolBusy => "tool_max_concurrent",
            GatewayError::ToolTimeout => "tool_timeout",
            GatewayError::AnswerTooLarge(_) => "response_too_large",
            GatewayError::ToolChanged => "tool_definition_changed",
            GatewayError::Internal => "internal",
        }
    }
}

impl std::fmt::Display for GatewayError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.reason())
    }
}

impl std::error::Error for GatewayError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_match_the_issue() {
        assert_eq!(GatewayError::Parse.status(), 400);
        assert_eq!(GatewayError::Parse.jsonrpc_code(), -32700);
        assert_eq!(
            GatewayError::InvalidRequest(InvalidReason::Batch).jsonrpc_code(),
            -32600
        );
        assert_eq!(GatewayError::HeaderMismatch("x").jsonrpc_code(), -32020);
        assert_eq!(GatewayError::BodyTooLarge.status(), 413);
        assert_eq!(GatewayError::UpstreamTimeout.status(), 504);
        assert_eq!(GatewayError::UpstreamUnavailable.status(), 502);
        assert_eq!(GatewayError::OriginNotAllowed.status(), 403);
        assert_eq!(GatewayError::MethodNotAllowed("POST").status(), 405);
    }
}
