//! TLS termination on the public listener (Pingora's openssl backend).
//!
//! Owns: loading and checking the certificate chain, private key and client
//! CA ([`Material`], done when the configuration is compiled, so `validate`
//! and a SIGHUP reload reject a bad or mismatched pair and the last good one
//! stays); the listener settings (Mozilla intermediate: TLS 1.2+, modern
//! ciphers, ALPN h2 + http/1.1); the per-handshake certificate callback that
//! serves the material of the live configuration snapshot (so a reload swaps
//! it without a restart and without failing a handshake); and the verified
//! client-certificate identity ([`ClientCert`]) that mTLS hands to the
//! request.

use std::any::Any;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use pingora::listeners::tls::TlsSettings;
use pingora::listeners::{TlsAccept, TlsAcceptCallbacks};
use pingora::protocols::tls::TlsRef;
use pingora::tls::ext;
use pingora::tls::hash::MessageDigest;
use pingora::tls::nid::Nid;
use pingora::tls::pkey::{PKey, Private};
use pingora::tls::ssl::{SslVerifyMode, SslVersion};
use pingora::tls::x509::store::{X509Store, X509StoreBuilder};
use pingora::tls::x509::{X509Ref, X509VerifyResult, X509};

use crate::runtime::SharedRuntime;

/// `tls.client_auth`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// No client certificate requested (no `client_ca`).
    None,
    /// A client certificate signed by `client_ca` is required.
    Required,
    /// A client certificate is verified when sent; none is also fine.
    Optional,
}

/// The files named by the `tls:` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// Full chain, leaf first (PEM).
    pub cert_file: PathBuf,
    /// Private key of the leaf (PEM).
    pub key_file: PathBuf,
    /// CA bundle that client certificates must chain to (PEM).
    pub client_ca: Option<PathBuf>,
    /// Whether a client certificate is required.
    pub client_auth: ClientAuth,
}

/// Loaded and checked TLS material: what a handshake serves.
pub struct Material {
    /// The files it came from.
    pub files: TlsFiles,
    leaf: X509,
    chain: Vec<X509>,
    key: PKey<Private>,
    client_ca: Option<X509Store>,
    /// Serial number of the leaf (upper-case hex), for logs.
    pub serial: String,
}

impl std::fmt::Debug for Material {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Material")
            .field("files", &self.files)
            .field("serial", &self.serial)
            .finish_non_exhaustive()
    }
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    crate::config::hermetic::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

fn serial_of(cert: &X509Ref) -> String {
    cert.serial_number()
        .to_bn()
        .and_then(|b| b.to_hex_str().map(|s| s.to_string()))
        .unwrap_or_default()
}

impl Material {
    /// Reads and checks the files. Every problem is returned as
    /// `(key, message)` with `key` the `tls.*` field it concerns.
    pub fn load(files: &TlsFiles) -> Result<Material, Vec<(&'static str, String)>> {
        let mut errs = Vec::new();
        let certs = read(&files.cert_file).and_then(|pem| {
            let certs = X509::stack_from_pem(&pem).map_err(|e| {
                format!(
                    "{}: not a PEM certificate chain: {e}",
                    files.cert_file.display()
                )
            })?;
            if certs.is_empty() {
                return Err(format!(
                    "{}: no certificate found",
                    files.cert_file.display()
                ));
            }
            Ok(certs)
        });
        let key = read(&files.key_file).and_then(|pem| {
            PKey::private_key_from_pem(&pem)
                .map_err(|e| format!("{}: not a PEM private key: {e}", files.key_file.display()))
        });
        let client_ca = match &files.client_ca {
            None => Ok(None),
            Some(path) => read(path).and_then(|pem| {
                let cas = X509::stack_from_pem(&pem)
                    .map_err(|e| format!("{}: not a PEM CA bundle: {e}", path.display()))?;
                if cas.is_empty() {
                    return Err(format!("{}: no CA certificate found", path.display()));
                }
                let mut store = X509StoreBuilder::new().map_err(|e| e.to_string())?;
                for ca in cas {
                    store
                        .add_cert(ca)
                        .map_err(|e| format!("{}: {e}", path.display()))?;
                }
                Ok(Some(store.build()))
            }),
        };
        let certs = certs.map_err(|e| errs.push(("tls.cert_file", e))).ok();
        let key = key.map_err(|e| errs.push(("tls.key_file", e))).ok();
        let client_ca = client_ca
            .map_err(|e| errs.push(("tls.client_ca", e)))
            .ok()
            .flatten();
        let (Some(mut certs), Some(key)) = (certs, key) else {
            return Err(errs);
        };
        let leaf = certs.remove(0);
        let matches = leaf
            .public_key()
            .map(|public| public.public_eq(&key))
            .unwrap_or(false);
        if !matches {
            errs.push((
                "tls.key_file",
                format!(
                    "{} does not belong to the first certificate of {}",
                    files.key_file.display(),
                    files.cert_file.display()
                ),
            ));
        }
        if !errs.is_empty() {
            return Err(errs);
        }
        Ok(Material {
            files: files.clone(),
            serial: serial_of(&leaf),
            leaf,
            chain: certs,
            key,
            client_ca,
        })
    }

    fn install(&self, ssl: &mut TlsRef) -> Result<(), pingora::tls::error::ErrorStack> {
        ext::ssl_use_certificate(ssl, &self.leaf)?;
        for c in &self.chain {
            ext::ssl_add_chain_cert(ssl, c)?;
        }
        ext::ssl_use_private_key(ssl, &self.key)?;
        if let Some(store) = &self.client_ca {
            ext::ssl_set_verify_cert_store(ssl, store)?;
        }
        Ok(())
    }
}

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

impl ClientCert {
    /// Extracts the identity fields of a certificate.
    pub fn from_x509(cert: &X509Ref) -> ClientCert {
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
        Some(Arc::new(ClientCert::from_x509(&cert)))
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
