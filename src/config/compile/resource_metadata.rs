//! `auth.resource_metadata`: the OAuth protected-resource metadata document
//! (RFC 9728) and the well-known paths it is served at.

use super::errors::Errors;
use crate::config::raw;
use crate::runtime::ResourceMetadata;

pub(super) fn compile_resource_metadata(
    m: &raw::ResourceMetadata,
    mcp_path: Option<&str>,
    errs: &mut Errors,
) -> Option<ResourceMetadata> {
    let uri: http::Uri = match m.resource.parse() {
        Ok(u) => u,
        Err(_) => {
            errs.push(
                "auth.resource_metadata.resource",
                "must be an absolute https:// or http:// URL",
            );
            return None;
        }
    };
    let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
        errs.push(
            "auth.resource_metadata.resource",
            "must be an absolute https:// or http:// URL",
        );
        return None;
    };
    for (i, a) in m.authorization_servers.iter().enumerate() {
        if !(a.starts_with("https://") || a.starts_with("http://")) {
            errs.push(
                format!("auth.resource_metadata.authorization_servers[{i}]"),
                "must be a URL",
            );
        }
    }
    const WELL_KNOWN: &str = "/.well-known/oauth-protected-resource";
    let resource_path = uri.path().trim_end_matches('/');
    let mut paths = vec![WELL_KNOWN.to_string()];
    for p in [Some(resource_path), mcp_path] {
        if let Some(p) = p.filter(|p| !p.is_empty() && *p != "/") {
            let suffixed = format!("{WELL_KNOWN}{p}");
            if !paths.contains(&suffixed) {
                paths.push(suffixed);
            }
        }
    }
    let mut doc = serde_json::json!({
        "resource": m.resource,
        "authorization_servers": m.authorization_servers,
        "bearer_methods_supported": ["header"],
    });
    if !m.scopes_supported.is_empty() {
        doc["scopes_supported"] = serde_json::json!(m.scopes_supported);
    }
    Some(ResourceMetadata {
        document: bytes::Bytes::from(doc.to_string()),
        url: format!("{scheme}://{authority}{WELL_KNOWN}{resource_path}"),
        paths,
    })
}
