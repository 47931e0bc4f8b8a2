//! TLS termination on the public listener (Pingora's openssl backend): the
//! listener settings (Mozilla intermediate: TLS 1.2+, modern ciphers, ALPN
//! h2 + http/1.1), the per-handshake certificate callback that serves the
//! [`Material`] of the live configuration snapshot (so a reload swaps it
//! without a restart and without failing a handshake), and the extraction
//! of the verified client certificate ([`ClientCert`]) that mTLS hands to
//! the request.

use std::any::Any;
use std::sync::Arc;

use async_trait::async_trait;
use pingora::listeners::tls::TlsSettings;
use pingora::listeners::{TlsAccept, TlsAcceptCallbacks};
use pingora::protocols::tls::TlsRef;
use pingora::tls::hash::MessageDigest;
use pingora::tls::nid::Nid;
use pingora::tls::ssl::{SslVerifyMode, SslVersion};
use pingora::tls::x509::{X509Ref, X509VerifyResult};

use crate::auth::mtls::ClientCert;
use crate::runtime::SharedRuntime;
use crate::tls_material::{serial_of, ClientAuth, Material};

/// The identity fields of a verified certificate.
pub fn client_cert(cert: &X509Ref) -> ClientCert {
    let entry = |nid: Nid| {
        cert.subject_name()
            .entries_by_nid(nid)
            .next()
            .and_then(|e| e.data().to_string().ok())
    };
    let mut out = ClientCert {
        cn: entry(Nid::COMMONNAME),
        o: entry(Nid::ORGANIZATIONNAME),
        ou: entry(Nid::ORGANIZATIONALUNITNAME),
        serial: serial_of(cert),
        sha256: cert
            .digest(MessageDigest::sha256())
            .map(|d| d.iter().map(|b| format!("{b:02x}")).collect())
            .unwrap_or_default(),
        ..ClientCert::default()
    };
    if let Some(names) = cert.subject_alt_names() {
        for n in names.iter() {
            if let Some(d) = n.dnsname() {
                out.dns.push(d.to_string());
            } else if let Some(e) = n.email() {
                out.email.push(e.to_string());
            } else if let Some(u) = n.uri() {
                out.uri.push(u.to_string());
            }
        }
    }
    out
}

/// The per-handshake callbacks: serve the live material, report the client
/// certificate.
pub struct Callbacks {
    runtime: SharedRuntime,
    /// Used if the live snapshot has none (cannot happen after a checked reload).
    first: Arc<Material>,
}

#[async_trait]
impl TlsAccept for Callbacks {
    async fn certificate_callback(&self, ssl: &mut TlsRef) {
        let live = self.runtime.load();
        let material = live.tls.as_ref().unwrap_or(&self.first);
        if let Err(e) = material.install(ssl) {
            // the handshake then fails for this one connection
            log::error!("TLS: cannot install the certificate: {e}");
        }
    }

    async fn handshake_complete_callback(
        &self,
        ssl: &TlsRef,
    ) -> Option<Arc<dyn Any + Send + Sync>> {
        let cert = ssl.peer_certificate()?;
        if ssl.verify_result() != X509VerifyResult::OK {
            return None;
        }
        Some(Arc::new(client_cert(&cert)))
    }
}

/// The listener settings: intermediate profile (TLS 1.2 and 1.3), ALPN h2 and
/// http/1.1, the certificate from the callback, client verification as
/// configured.
pub fn settings(runtime: SharedRuntime, first: Arc<Material>) -> pingora::Result<TlsSettings> {
    let client_auth = first.files.client_auth;
    let callbacks: TlsAcceptCallbacks = Box::new(Callbacks { runtime, first });
    let mut tls = TlsSettings::with_callbacks(callbacks)?;
    tls.enable_h2();
    // resumed sessions must carry the context they were verified in
    tls.set_session_id_context(b"mcp-edge").map_err(|e| {
        pingora::Error::because(
            pingora::ErrorType::InternalError,
            "TLS session id context",
            e,
        )
    })?;
    tls.set_min_proto_version(Some(SslVersion::TLS1_2))
        .map_err(|e| {
            pingora::Error::because(pingora::ErrorType::InternalError, "TLS 1.2 minimum", e)
        })?;
    match client_auth {
        ClientAuth::None => {}
        ClientAuth::Required => {
            tls.set_verify(SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT)
        }
        ClientAuth::Optional => tls.set_verify(SslVerifyMode::PEER),
    }
    Ok(tls)
}
