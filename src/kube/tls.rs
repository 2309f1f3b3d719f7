//! TLS: the cluster CA bundle (`ca.crt`) as the only trust anchors, the ureq/rustls
//! configuration built from it, and turning handshake failures into [`Error::Tls`] messages
//! that say plainly what is wrong with which certificate.
//!
//! Verification is never disabled and no other roots (webpki, platform) are ever consulted.

use std::path::Path;
use std::sync::Arc;

use rustls::{CertificateError, RootCertStore};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use ureq::tls::{Certificate, RootCerts, TlsConfig, TlsProvider};

use super::error::Error;

/// Parses a PEM CA bundle. Every `CERTIFICATE` section must be a certificate usable as a
/// trust anchor; there must be at least one. `path` only names the file in messages.
pub(crate) fn parse_ca_bundle(
    pem: &[u8],
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, Error> {
    let mut certs = Vec::new();
    for (i, item) in CertificateDer::pem_slice_iter(pem).enumerate() {
        let cert = item.map_err(|e| {
            Error::Config(format!(
                "cannot parse the cluster CA bundle {}: PEM section {} is broken ({e}); \
                 it must hold PEM \"CERTIFICATE\" blocks",
                path.display(),
                i + 1
            ))
        })?;
        certs.push(cert);
    }
    if certs.is_empty() {
        return Err(Error::Config(format!(
            "the cluster CA bundle {} holds no PEM certificate; it must hold at least one \
             \"-----BEGIN CERTIFICATE-----\" block",
            path.display()
        )));
    }
    // Check each one the way rustls will use it, so a bad bundle fails now and loudly
    // instead of being silently skipped at the first connection.
    let mut store = RootCertStore::empty();
    for (i, cert) in certs.iter().enumerate() {
        store.add(cert.clone()).map_err(|e| {
            Error::Config(format!(
                "the cluster CA bundle {}: certificate {} cannot be used as a trust anchor ({e})",
                path.display(),
                i + 1
            ))
        })?;
    }
    Ok(certs)
}

/// The ureq TLS configuration trusting exactly `certs`, with rustls on the ring provider.
pub(crate) fn tls_config(certs: &[CertificateDer<'static>]) -> TlsConfig {
    let roots: Vec<Certificate<'static>> = certs
        .iter()
        .map(|c| Certificate::from_der(c.as_ref()).to_owned())
        .collect();
    TlsConfig::builder()
        .provider(TlsProvider::Rustls)
        .root_certs(RootCerts::Specific(Arc::new(roots)))
        .unversioned_rustls_crypto_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .build()
}

/// Describes a rustls failure for a user. `ca_path` is the bundle we verify against.
pub(crate) fn describe_rustls_error(e: &rustls::Error, ca_path: &Path) -> String {
    let ca = ca_path.display();
    match e {
        rustls::Error::InvalidCertificate(ce) => match ce {
            CertificateError::UnknownIssuer => format!(
                "the server's certificate is not signed by a CA in {ca} (unknown issuer); \
                 is KUBERNETES_SERVICE_HOST the API server, and is {ca} this cluster's CA?"
            ),
            CertificateError::BadSignature => format!(
                "the server's certificate is not signed by the CA in {ca} (bad signature: a \
                 CA of the same name but a different key); is {ca} this cluster's CA?"
            ),
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                format!(
                    "the server's certificate is not valid for the address we connected to \
                     ({e}); the certificate must name KUBERNETES_SERVICE_HOST"
                )
            }
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                format!("the server's certificate has expired ({e})")
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                format!("the server's certificate is not valid yet; check the clock ({e})")
            }
            _ => format!("the server's certificate was rejected: {e}"),
        },
        rustls::Error::AlertReceived(_) => {
            format!("the server aborted the TLS handshake ({e}); it may not accept our certificate or TLS version")
        }
        _ => format!("TLS handshake failed: {e} (certificate verified against {ca})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PATH: &str = "/sa/ca.crt";

    #[test]
    fn garbage_and_empty_bundles_are_config_errors() {
        for bad in [
            &b""[..],
            b"hello world\n",
            b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        ] {
            let e = parse_ca_bundle(bad, Path::new(PATH)).unwrap_err();
            match e {
                Error::Config(m) => {
                    assert!(m.contains(PATH), "{m}");
                    assert!(m.contains("no PEM certificate"), "{m}");
                }
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    #[test]
    fn broken_pem_is_config_error() {
        let bad = b"-----BEGIN CERTIFICATE-----\n!!!not base64!!!\n-----END CERTIFICATE-----\n";
        let e = parse_ca_bundle(bad, Path::new(PATH)).unwrap_err();
        assert!(matches!(&e, Error::Config(m) if m.contains(PATH)), "{e:?}");

        let unterminated = b"-----BEGIN CERTIFICATE-----\nAAAA\n";
        let e = parse_ca_bundle(unterminated, Path::new(PATH)).unwrap_err();
        assert!(matches!(&e, Error::Config(_)), "{e:?}");
    }

    #[test]
    fn valid_base64_that_is_not_a_certificate_is_rejected() {
        let bad = b"-----BEGIN CERTIFICATE-----\nAAECAwQFBgcICQ==\n-----END CERTIFICATE-----\n";
        let e = parse_ca_bundle(bad, Path::new(PATH)).unwrap_err();
        assert!(
            matches!(&e, Error::Config(m) if m.contains("trust anchor")),
            "{e:?}"
        );
    }

    #[test]
    fn unknown_issuer_message_names_certificate_and_file() {
        let m = describe_rustls_error(
            &rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer),
            Path::new(PATH),
        );
        assert!(m.contains("certificate") && m.contains(PATH), "{m}");
    }
}
