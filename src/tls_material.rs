//! TLS material (issue 5): the certificate chain, private key and client CA
//! named by the `tls:` section, loaded and checked when the configuration is
//! compiled, so `validate` and a SIGHUP reload reject a bad or mismatched
//! pair and the last good one stays. The handshake callbacks in
//! `edge::tls` serve it.

use std::path::{Path, PathBuf};

use pingora::protocols::tls::TlsRef;
use pingora::tls::ext;
use pingora::tls::pkey::{PKey, Private};
use pingora::tls::x509::store::{X509Store, X509StoreBuilder};
use pingora::tls::x509::{X509Ref, X509};

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
    crate::base::hermetic::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// Serial number of a certificate (upper-case hex).
pub fn serial_of(cert: &X509Ref) -> String {
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

    /// Puts the material on one handshake.
    pub fn install(&self, ssl: &mut TlsRef) -> Result<(), pingora::tls::error::ErrorStack> {
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
