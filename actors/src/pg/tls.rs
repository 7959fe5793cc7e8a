//! TLS to PostgreSQL, through rustls.
//!
//! A node uses TLS when its URL says `sslmode=require`, `sslmode=verify-ca` or
//! `sslmode=verify-full`. The server's certificate is then always verified, as
//! libpq's `verify-full` does: against the system's roots plus the certificates
//! of `sslrootcert` (a PEM file), and for the host name (or IP address) the node
//! connected to. Without one of those modes the connection is plain, as before
//! (`prefer`, the default, does not upgrade: a server's self-signed certificate
//! never breaks a node that did not ask for TLS).
//!
//! tokio-postgres knows `sslmode` `disable|prefer|require` and no
//! `sslrootcert`: [`split_options`] takes `sslrootcert` out of the URL and
//! spells the verifying modes `require`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::common::StoreError;

/// `url` without its `sslrootcert` option (answered apart), and with `sslmode`
/// `verify-ca`/`verify-full` written `require` (rustls verifies in every case).
/// Both URL (`postgres://…?a=b&c=d`) and key-value (`host=… sslmode=…`) forms.
pub fn split_options(url: &str) -> (String, Option<PathBuf>) {
    let mut root_cert = None;
    // Each option as it stays in the URL (none for `sslrootcert`).
    let mut keep = |option: &str| -> Option<String> {
        let Some((key, value)) = option.split_once('=') else {
            return Some(option.to_owned());
        };
        match key.trim() {
            "sslrootcert" => {
                root_cert = Some(PathBuf::from(percent_decoded(value.trim())));
                None
            }
            "sslmode" if matches!(value.trim(), "verify-ca" | "verify-full") => {
                Some("sslmode=require".to_owned())
            }
            _ => Some(option.to_owned()),
        }
    };
    let url = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        match url.split_once('?') {
            Some((base, query)) => {
                let kept: Vec<String> = query.split('&').filter_map(&mut keep).collect();
                if kept.is_empty() {
                    base.to_owned()
                } else {
                    format!("{base}?{}", kept.join("&"))
                }
            }
            None => url.to_owned(),
        }
    } else {
        url.split_whitespace()
            .filter_map(&mut keep)
            .collect::<Vec<_>>()
            .join(" ")
    };
    (url, root_cert)
}

/// `%XX` sequences decoded (a path in a URL's query).
fn percent_decoded(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The rustls connector: the system's roots, plus those of `root_cert`.
pub fn connector(root_cert: Option<&Path>) -> Result<MakeRustlsConnect, StoreError> {
    let refused = |what: String| StoreError::Aborted(format!("PostgreSQL TLS: {what}"));
    let mut roots = rustls::RootCertStore::empty();
    // Certificates the system's store holds that rustls cannot use are skipped
    // (as every rustls client does); the file named by sslrootcert must load.
    let native = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(native.certs);
    if let Some(path) = root_cert {
        let certs = CertificateDer::pem_file_iter(path)
            .and_then(Iterator::collect::<Result<Vec<_>, _>>)
            .map_err(|e| refused(format!("sslrootcert {}: {e}", path.display())))?;
        if certs.is_empty() {
            return Err(refused(format!(
                "sslrootcert {} holds no certificate",
                path.display()
            )));
        }
        for cert in certs {
            roots
                .add(cert)
                .map_err(|e| refused(format!("sslrootcert {}: {e}", path.display())))?;
        }
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| refused(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sslrootcert_is_taken_out_and_verifying_modes_become_require() {
        let (url, root) = split_options(
            "postgres://u@h1:5432,h2:5433/db?sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem&target_session_attrs=read-write",
        );
        assert_eq!(
            url,
            "postgres://u@h1:5432,h2:5433/db?sslmode=require&target_session_attrs=read-write"
        );
        assert_eq!(root, Some(PathBuf::from("/etc/ca.pem")));
        let (url, root) = split_options("host=h sslmode=verify-ca sslrootcert=/ca.pem user=u");
        assert_eq!(url, "host=h sslmode=require user=u");
        assert_eq!(root, Some(PathBuf::from("/ca.pem")));
        let (url, root) = split_options("postgres://u@h/db?sslrootcert=/ca.pem");
        assert_eq!(
            (url.as_str(), root),
            ("postgres://u@h/db", Some(PathBuf::from("/ca.pem")))
        );
        let plain = "postgres://u@h/db?target_session_attrs=read-write";
        assert_eq!(split_options(plain), (plain.to_owned(), None));
    }

    /// Every connection gets a lock_timeout and keepalives, whatever else the
    /// URL sets; TLS only where the URL asks for it.
    #[test]
    fn every_connection_has_a_lock_timeout_and_keepalives() {
        use crate::pg::Target;
        let target =
            Target::parse("postgres://u@h/db?options=-c%20statement_timeout%3D1000").unwrap();
        let options = target.config.get_options().unwrap();
        assert!(options.contains("statement_timeout=1000"), "{options}");
        assert!(
            options.contains(&format!(
                "lock_timeout={}",
                crate::limits::PG_LOCK_TIMEOUT_MS
            )),
            "{options}"
        );
        assert_eq!(
            target.config.get_keepalives_idle(),
            std::time::Duration::from_secs(crate::limits::PG_KEEPALIVE_IDLE_SECS)
        );
        assert!(target.tls.is_none());
        let tls = Target::parse("postgres://u@h/db?sslmode=verify-full").unwrap();
        assert!(tls.tls.is_some());
    }

    #[test]
    fn a_missing_or_empty_root_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        assert!(connector(Some(&dir.path().join("none.pem"))).is_err());
        std::fs::write(dir.path().join("empty.pem"), "").unwrap();
        assert!(connector(Some(&dir.path().join("empty.pem"))).is_err());
        assert!(connector(None).is_ok());
    }
}
