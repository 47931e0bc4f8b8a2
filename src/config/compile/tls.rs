//! The `tls` section: the listener's certificate and key, and whether and
//! how client certificates are requested (which `auth.client_cert` needs).

use std::sync::Arc;

use super::errors::Errors;
use crate::auth::Authenticator;
use crate::config::raw;

/// The section if present, plus the check that `auth.client_cert` has a
/// CA to verify certificates against.
pub(super) fn compile_tls_section(
    t: Option<raw::Tls>,
    auth: &Authenticator,
    errs: &mut Errors,
) -> Option<Arc<crate::tls_material::Material>> {
    let has_client_ca = t.as_ref().is_some_and(|t| t.client_ca.is_some());
    let tls = t.and_then(|t| compile_tls(&t, errs));
    if auth.client_cert.is_some() && !has_client_ca {
        errs.push(
            "auth.client_cert",
            "needs tls.client_ca (client certificates are only verified with it)",
        );
    }
    tls
}

fn compile_tls(t: &raw::Tls, errs: &mut Errors) -> Option<Arc<crate::tls_material::Material>> {
    use crate::tls_material::{ClientAuth, Material, TlsFiles};
    let client_auth = match (t.client_ca.as_deref(), t.client_auth.as_deref()) {
        (None, None) => ClientAuth::None,
        (None, Some(_)) => {
            errs.push("tls.client_auth", "needs tls.client_ca");
            ClientAuth::None
        }
        (Some(_), None | Some("required")) => ClientAuth::Required,
        (Some(_), Some("optional")) => ClientAuth::Optional,
        (Some(_), Some(other)) => {
            errs.push(
                "tls.client_auth",
                format!("expected required or optional, got \"{other}\""),
            );
            ClientAuth::Required
        }
    };
    let files = TlsFiles {
        cert_file: t.cert_file.clone().into(),
        key_file: t.key_file.clone().into(),
        client_ca: t.client_ca.clone().map(Into::into),
        client_auth,
    };
    match Material::load(&files) {
        Ok(m) => Some(Arc::new(m)),
        Err(problems) => {
            for (key, msg) in problems {
                errs.push(key, msg);
            }
            None
        }
    }
}
