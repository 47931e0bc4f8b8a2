//! A tool's name rewritten in the request the gateway forwards: a virtual
//! server's member gets its own name (`federate`), a renamed tool
//! (`tool_overrides`) the name its upstream knows. The bytes forwarded are
//! the bytes inspected: a rewritten body is inspected again, and the
//! `Mcp-Name` header that agreed with the client's body agrees with the new
//! one.

use bytes::Bytes;
use pingora_proxy::Session;

use super::RequestCtx;
use crate::error::GatewayError;
use crate::federation::json;
use crate::runtime::Runtime;
use crate::tools::Called;

/// The body with `params.name` set to `name`: the one string the inspector
/// read (it refuses a second `name`, or one that case-folds to it) written
/// over in place when it had no escapes, else the object rewritten member
/// by member. Either way every other byte is the client's.
pub fn with_name(ctx: &RequestCtx, body: &Bytes, name: &str) -> Result<Bytes, GatewayError> {
    let quoted = json::string(name);
    if let Some(crate::jsonrpc::Text::Span(s, e)) =
        ctx.envelope.as_ref().and_then(|e| e.name.as_ref())
    {
        let (s, e) = (*s as usize, *e as usize);
        let quotes = s > 0 && body.get(s - 1) == Some(&b'"') && body.get(e) == Some(&b'"');
        if quotes {
            let mut out = Vec::with_capacity(body.len() + quoted.len());
            out.extend_from_slice(&body[..s - 1]);
            out.extend_from_slice(quoted.as_bytes());
            out.extend_from_slice(&body[e + 1..]);
            return Ok(Bytes::from(out));
        }
    }
    let text = std::str::from_utf8(body).map_err(|_| GatewayError::Parse)?;
    json::set_path(text, &["params", "name"], &quoted)
        .map(Bytes::from)
        .ok_or(GatewayError::Internal)
}

/// `tool_overrides` on a `tools/call` (right after inspection): a new name
/// becomes the tool's exposed name in the body and in `Mcp-Name`, and the
/// rest of admission (policy, limits, routing, federation) sees that name;
/// the old name of a renamed tool is an unknown tool.
pub fn overridden(
    session: &mut Session,
    ctx: &mut RequestCtx,
    rt: &Runtime,
) -> Result<(), GatewayError> {
    if rt.tool_overrides.is_empty() || ctx.method() != Some("tools/call") {
        return Ok(());
    }
    let (Some(body), Some(called)) = (ctx.body.clone(), ctx.target().map(str::to_string)) else {
        return Ok(());
    };
    let tool = match rt.tool_overrides.called(&called) {
        Called::AsIs => return Ok(()),
        Called::Hidden => return Err(GatewayError::UnknownTool),
        Called::Renamed(tool) => tool.to_string(),
    };
    let rewritten = with_name(ctx, &body, &tool)?;
    let envelope = crate::jsonrpc::inspect(&rewritten, rt.server.limits.max_json_depth)
        .map_err(|_| GatewayError::Internal)?;
    // the client's headers must agree with the client's body (checked here,
    // before the body changes); then they name the tool too
    let headers = &session.req_header().headers;
    if headers.contains_key("mcp-name") {
        crate::mcp::check_headers(
            ctx.era,
            headers.get("mcp-method").map(|v| v.as_bytes()),
            headers.get("mcp-name").map(|v| v.as_bytes()),
            Some("tools/call"),
            Some(&called),
            None,
        )
        .map_err(GatewayError::HeaderMismatch)?;
        session
            .req_header_mut()
            .insert_header("mcp-name", tool.as_str())
            .map_err(|_| GatewayError::Internal)?;
    }
    ctx.body = Some(rewritten);
    ctx.envelope = Some(envelope);
    ctx.called_as = Some(called);
    Ok(())
}
