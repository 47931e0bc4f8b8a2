//! The `auth` section: API keys (plain, from `${VAR}`, or as hashes) and
//! client-certificate identities, assembled with the JWT verifier
//! ([`super::jwt`]) into the [`Authenticator`].

use std::collections::HashSet;

use super::env::expand_env;
use super::errors::Errors;
use super::jwt::compile_jwt;
use crate::auth::mtls::CertIdentity;
use crate::auth::{apikey, ApiKeys, Authenticator};
use crate::config::raw;

pub(super) fn compile_auth(
    auth: &raw::Auth,
    env: &dyn Fn(&str) -> Option<String>,
    errs: &mut Errors,
) -> Authenticator {
    let keys = compile_api_keys(&auth.api_keys, env, errs);
    let jwt = auth
        .jwt
        .as_ref()
        .and_then(|j| compile_jwt(j, errs))
        .map(std::sync::Arc::new);
    let client_cert = auth
        .client_cert
        .as_ref()
        .and_then(|c| compile_client_cert(c, errs));
    Authenticator {
        anonymous: auth.anonymous,
        keys,
        jwt,
        client_cert,
    }
}

/// `auth.api_keys[]`: unique ids, a tenant, and exactly one of key or key_hash.
fn compile_api_keys(
    list: &[raw::ApiKey],
    env: &dyn Fn(&str) -> Option<String>,
    errs: &mut Errors,
) -> ApiKeys {
    let mut keys = ApiKeys::default();
    let mut ids = HashSet::new();
    for (i, k) in list.iter().enumerate() {
        let path = format!("auth.api_keys[{i}]");
        if k.id.is_empty() {
            errs.push(format!("{path}.id"), "must not be empty");
        } else if !ids.insert(k.id.clone()) {
            errs.push(
                format!("{path}.id"),
                format!("duplicate key id \"{}\"", k.id),
            );
        }
        if k.tenant.is_empty() {
            errs.push(format!("{path}.tenant"), "must not be empty");
        }
        if let Some(d) = key_digest(k, &path, env, errs) {
            let client = k.client.as_deref().unwrap_or(&k.id);
            if let Err(e) = keys.insert(&k.id, d, &k.tenant, client) {
                errs.push(&path, e);
            }
        }
    }
    keys
}

/// The SHA-256 digest of one API key, from its plain value or its hash.
fn key_digest(
    k: &raw::ApiKey,
    path: &str,
    env: &dyn Fn(&str) -> Option<String>,
    errs: &mut Errors,
) -> Option<[u8; 32]> {
    match (&k.key, &k.key_hash) {
        (Some(_), Some(_)) => {
            errs.push(path, "give either key or key_hash, not both");
            None
        }
        (None, None) => {
            errs.push(path, "key or key_hash is required");
            None
        }
        (Some(plain), None) => {
            let mut env_errs = Vec::new();
            let plain = expand_env(plain, &format!("{path}.key"), env, &mut env_errs);
            errs.extend(env_errs);
            if plain.len() < 8 {
                errs.push(format!("{path}.key"), "keys must be at least 8 characters");
            }
            Some(apikey::digest(plain.as_bytes()))
        }
        (None, Some(h)) => match apikey::parse_hash(h) {
            Ok(d) => Some(d),
            Err(e) => {
                errs.push(format!("{path}.key_hash"), e);
                None
            }
        },
    }
}

/// `auth.client_cert`: which certificate fields name the client and tenant.
fn compile_client_cert(c: &raw::ClientCert, errs: &mut Errors) -> Option<CertIdentity> {
    use crate::auth::mtls::{ClientField, TenantField};
    let client_from = ClientField::parse(&c.client_from);
    if client_from.is_none() {
        errs.push(
            "auth.client_cert.client_from",
            format!(
                "expected cn, san_dns, san_email or san_uri, got \"{}\"",
                c.client_from
            ),
        );
    }
    let tenant_from = TenantField::parse(&c.tenant_from);
    if tenant_from.is_none() {
        errs.push(
            "auth.client_cert.tenant_from",
            format!("expected o, ou, cn or fixed, got \"{}\"", c.tenant_from),
        );
    }
    if c.tenant.is_empty() {
        errs.push("auth.client_cert.tenant", "must not be empty");
    }
    Some(CertIdentity {
        client_from: client_from?,
        tenant_from: tenant_from?,
        tenant: c.tenant.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{one_error, GOOD};

    #[test]
    fn auth_and_policy_errors() {
        let t = format!(
            "{GOOD}policy: {{default: allow, rules: [{{subject: {{tenant: t}}, allow: {{tools: [\"\"]}}}}]}}\n"
        )
        .replace(
            "upstreams:",
            "auth:\n  api_keys:\n    - {id: a, key: short, tenant: t}\n    - {id: a, key_hash: \"sha256:zz\", tenant: t}\n    - {id: b, tenant: t}\n  jwt: {issuer: i, audiences: [a], algorithms: [HS256], jwks_url: ftp://x}\nupstreams:",
        );
        for want in [
            "policy.default",
            "policy.rules[0].allow.tools[0]: empty pattern",
            "auth.api_keys[0].key: keys must be at least 8 characters",
            "auth.api_keys[1].id: duplicate key id",
            "auth.api_keys[1].key_hash",
            "auth.api_keys[2]: key or key_hash is required",
            "auth.jwt.algorithms[0]: HS256: shared-secret algorithms are not accepted",
            "auth.jwt.jwks_url",
        ] {
            one_error(&t, want);
        }
    }
}
