//! mTLS identity: maps a verified client certificate ([`ClientCert`], from
//! the TLS handshake) to a [`Principal`] as `auth.client_cert` says. The
//! certificate fields are also offered to policy subjects as claims
//! (`cn`, `o`, `ou`, `san_dns`, `san_email`, `san_uri`, `serial`, `sha256`).

use std::sync::Arc;

use super::{Principal, Source};

/// A verified client certificate, as the request sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientCert {
    /// Subject common name.
    pub cn: Option<String>,
    /// Subject organization.
    pub o: Option<String>,
    /// Subject organizational unit.
    pub ou: Option<String>,
    /// DNS subject alternative names.
    pub dns: Vec<String>,
    /// e-mail subject alternative names.
    pub email: Vec<String>,
    /// URI subject alternative names (e.g. SPIFFE ids).
    pub uri: Vec<String>,
    /// Serial number (upper-case hex).
    pub serial: String,
    /// SHA-256 fingerprint of the DER certificate (lower-case hex).
    pub sha256: String,
}

/// Which certificate field names the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientField {
    /// Subject CN.
    Cn,
    /// First DNS SAN.
    SanDns,
    /// First e-mail SAN.
    SanEmail,
    /// First URI SAN (SPIFFE ids).
    SanUri,
}

/// Which certificate field names the tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TenantField {
    /// Subject O.
    O,
    /// Subject OU.
    Ou,
    /// Subject CN.
    Cn,
    /// Always `tenant`.
    Fixed,
}

/// Compiled `auth.client_cert`.
#[derive(Debug, Clone)]
pub struct CertIdentity {
    /// Field for the client.
    pub client_from: ClientField,
    /// Field for the tenant.
    pub tenant_from: TenantField,
    /// Tenant when `tenant_from` is `fixed` or the field is absent.
    pub tenant: String,
}

impl ClientField {
    /// Parses the config word.
    pub fn parse(s: &str) -> Option<ClientField> {
        Some(match s {
            "cn" => ClientField::Cn,
            "san_dns" => ClientField::SanDns,
            "san_email" => ClientField::SanEmail,
            "san_uri" => ClientField::SanUri,
            _ => return None,
        })
    }
}

impl TenantField {
    /// Parses the config word.
    pub fn parse(s: &str) -> Option<TenantField> {
        Some(match s {
            "o" => TenantField::O,
            "ou" => TenantField::Ou,
            "cn" => TenantField::Cn,
            "fixed" => TenantField::Fixed,
            _ => return None,
        })
    }
}

impl CertIdentity {
    /// The principal of a verified certificate; `None` when the certificate
    /// lacks the field that names the client (treated as no credential).
    pub fn principal(&self, cert: &ClientCert) -> Option<Principal> {
        let client = match self.client_from {
            ClientField::Cn => cert.cn.as_deref(),
            ClientField::SanDns => cert.dns.first().map(String::as_str),
            ClientField::SanEmail => cert.email.first().map(String::as_str),
            ClientField::SanUri => cert.uri.first().map(String::as_str),
        }
        .filter(|c| !c.is_empty())?;
        let tenant = match self.tenant_from {
            TenantField::O => cert.o.as_deref(),
            TenantField::Ou => cert.ou.as_deref(),
            TenantField::Cn => cert.cn.as_deref(),
            TenantField::Fixed => None,
        }
        .filter(|t| !t.is_empty())
        .unwrap_or(&self.tenant);
        Some(Principal {
            tenant: tenant.into(),
            client: client.into(),
            key_id: None,
            subject: Some(client.into()),
            source: Source::ClientCert,
            forward: Arc::new([]),
            claims: claims(cert),
            precomputed_digest: None,
        })
    }
}

/// Certificate fields as policy claims.
pub fn claims(cert: &ClientCert) -> Arc<[(Box<str>, Box<str>)]> {
    let mut out: Vec<(Box<str>, Box<str>)> = Vec::new();
    let mut put = |k: &str, v: Option<&str>| {
        if let Some(v) = v {
            out.push((k.into(), v.into()));
        }
    };
    put("cn", cert.cn.as_deref());
    put("o", cert.o.as_deref());
    put("ou", cert.ou.as_deref());
    put("san_dns", cert.dns.first().map(String::as_str));
    put("san_email", cert.email.first().map(String::as_str));
    put("san_uri", cert.uri.first().map(String::as_str));
    put("serial", Some(&cert.serial));
    put("sha256", Some(&cert.sha256));
    out.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert() -> ClientCert {
        ClientCert {
            cn: Some("agent-7".into()),
            o: Some("acme".into()),
            ou: None,
            dns: vec!["agent-7.acme.internal".into()],
            email: vec![],
            uri: vec!["spiffe://acme/agent/7".into()],
            serial: "0A".into(),
            sha256: "ab".into(),
        }
    }

    #[test]
    fn maps_fields_to_tenant_and_client() {
        let id = CertIdentity {
            client_from: ClientField::Cn,
            tenant_from: TenantField::O,
            tenant: "mtls".into(),
        };
        let p = id.principal(&cert()).unwrap();
        assert_eq!((&*p.tenant, &*p.client), ("acme", "agent-7"));
        assert_eq!(p.source, Source::ClientCert);
        assert_eq!(p.claim("san_uri"), Some("spiffe://acme/agent/7"));

        let id = CertIdentity {
            client_from: ClientField::SanUri,
            tenant_from: TenantField::Ou,
            tenant: "mtls".into(),
        };
        let p = id.principal(&cert()).unwrap();
        // OU absent: the fallback tenant
        assert_eq!((&*p.tenant, &*p.client), ("mtls", "spiffe://acme/agent/7"));
    }

    #[test]
    fn missing_client_field_is_no_identity() {
        let id = CertIdentity {
            client_from: ClientField::SanEmail,
            tenant_from: TenantField::Fixed,
            tenant: "t".into(),
        };
        assert!(id.principal(&cert()).is_none());
    }
}
