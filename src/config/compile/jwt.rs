//! `auth.jwt`: issuer, audiences, accepted algorithms, the JWKS source and
//! refresh timing, and which claims are forwarded upstream as headers.

use std::time::Duration;

use super::errors::Errors;
use crate::auth::jwt::JwtVerifier;
use crate::config::raw;

pub(super) fn compile_jwt(j: &raw::Jwt, errs: &mut Errors) -> Option<JwtVerifier> {
    use crate::auth::jwt::{parse_algorithm, JwksSource, JwtSettings};
    let before = errs.len();
    if j.issuer.is_empty() {
        errs.push("auth.jwt.issuer", "must not be empty");
    }
    if j.audiences.is_empty() {
        errs.push("auth.jwt.audiences", "at least one audience is required");
    }
    let mut algorithms = Vec::new();
    for (i, a) in j.algorithms.iter().enumerate() {
        match parse_algorithm(a) {
            Ok(alg) => algorithms.push(alg),
            Err(e) => errs.push(format!("auth.jwt.algorithms[{i}]"), e),
        }
    }
    if j.algorithms.is_empty() {
        errs.push("auth.jwt.algorithms", "at least one algorithm is required");
    }
    let source = match (&j.jwks_url, &j.jwks_file) {
        (Some(u), None) => {
            if !(u.starts_with("https://") || u.starts_with("http://"))
                || u.parse::<http::Uri>().is_err()
            {
                errs.push("auth.jwt.jwks_url", "must be an http:// or https:// URL");
            }
            JwksSource::Url(u.clone())
        }
        (None, Some(f)) => JwksSource::File(f.clone()),
        _ => {
            errs.push("auth.jwt", "give exactly one of jwks_url and jwks_file");
            return None;
        }
    };
    let mut forward_claims = Vec::new();
    for (claim, header) in &j.forward_claims {
        match http::HeaderName::from_bytes(header.as_bytes()) {
            Ok(h) if !crate::hygiene::NEVER_FORWARDED.contains(&h.as_str()) => {
                forward_claims.push((claim.clone(), h))
            }
            _ => errs.push(
                format!("auth.jwt.forward_claims.{claim}"),
                format!("\"{header}\" cannot be used as an upstream header"),
            ),
        }
    }
    if j.jwks_unknown_kid_refetch_secs == 0 {
        errs.push(
            "auth.jwt.jwks_unknown_kid_refetch_secs",
            "must be at least 1",
        );
    }
    if j.jwks_refresh_secs < 10 {
        errs.push("auth.jwt.jwks_refresh_secs", "must be at least 10");
    }
    if errs.len() != before {
        return None;
    }
    let settings = JwtSettings {
        issuer: j.issuer.clone(),
        audiences: j.audiences.clone(),
        algorithms,
        leeway_secs: j.leeway_secs,
        tenant_claim: j.tenant_claim.clone(),
        client_claim: j.client_claim.clone(),
        forward_claims,
        source,
        refresh: Duration::from_secs(j.jwks_refresh_secs),
        unknown_kid_refetch: Duration::from_secs(j.jwks_unknown_kid_refetch_secs),
    };
    match JwtVerifier::new(settings) {
        Ok(v) => Some(v),
        Err(e) => {
            errs.push("auth.jwt.jwks_file", e);
            None
        }
    }
}
