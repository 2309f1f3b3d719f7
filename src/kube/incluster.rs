//! In-cluster configuration: where the API server is (`KUBERNETES_SERVICE_HOST` /
//! `KUBERNETES_SERVICE_PORT`, IPv6 literals bracketed) and the service-account directory
//! (`token`, `ca.crt`, `namespace`), overridable with `K8S_AWAIT_ELECTION_SERVICEACCOUNT_DIR`.
//!
//! Everything is read and checked once here, so a broken setup fails before any request with
//! a message naming the variable or file to fix.

use std::fmt;
use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use rustls_pki_types::CertificateDer;

use super::error::Error;
use super::small_file;
use super::tls;
use super::token::{self, Token};

/// The default service-account directory mounted into every pod.
pub const DEFAULT_SERVICEACCOUNT_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
/// Overrides [`DEFAULT_SERVICEACCOUNT_DIR`].
pub const SERVICEACCOUNT_DIR_ENV: &str = "K8S_AWAIT_ELECTION_SERVICEACCOUNT_DIR";
const HOST_ENV: &str = "KUBERNETES_SERVICE_HOST";
const PORT_ENV: &str = "KUBERNETES_SERVICE_PORT";
/// Longest CA bundle we read (a full system bundle is about 200 KiB).
const MAX_CA_BUNDLE_BYTES: u64 = 1024 * 1024;
/// Longest `namespace` file we read (a namespace name has at most 63 characters).
const MAX_NAMESPACE_FILE_BYTES: u64 = 4096;
/// Every environment variable [`InClusterConfig::from_env`] reads.
pub const ENV_VARIABLES: &[&str] = &[HOST_ENV, PORT_ENV, SERVICEACCOUNT_DIR_ENV];

/// Everything needed to build a [`Client`](super::Client) from inside a pod.
#[derive(Clone)]
pub struct InClusterConfig {
    pub(crate) base_url: String,
    pub(crate) token_path: PathBuf,
    pub(crate) token: Token,
    pub(crate) ca_path: PathBuf,
    pub(crate) ca_certs: Vec<CertificateDer<'static>>,
    pub(crate) namespace: Option<String>,
}

impl fmt::Debug for InClusterConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InClusterConfig")
            .field("base_url", &self.base_url)
            .field("token_path", &self.token_path)
            .field("ca_path", &self.ca_path)
            .field("ca_certs", &self.ca_certs.len())
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

impl InClusterConfig {
    /// Reads `KUBERNETES_SERVICE_HOST` / `KUBERNETES_SERVICE_PORT` (an IPv6 literal host gives
    /// a bracketed URL) and the service-account directory: `$K8S_AWAIT_ELECTION_SERVICEACCOUNT_DIR`
    /// if set, else `/var/run/secrets/kubernetes.io/serviceaccount` (files `token`, `ca.crt`,
    /// `namespace`). `env` looks up a variable, so tests need no process environment.
    ///
    /// Missing host or port, an unreadable or empty token, or an unreadable `ca.crt` holding
    /// no usable certificate is an [`Error::Config`] naming the variable or file. The
    /// `namespace` file is optional.
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Result<InClusterConfig, Error> {
        let get = |name: &str| {
            env(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let host = get(HOST_ENV).ok_or_else(|| {
            Error::Config(format!(
                "{HOST_ENV} is not set; run inside a Kubernetes pod, or set {HOST_ENV} and \
                 {PORT_ENV} to the API server's address"
            ))
        })?;
        let port = get(PORT_ENV).ok_or_else(|| {
            Error::Config(format!(
                "{PORT_ENV} is not set; run inside a Kubernetes pod, or set {HOST_ENV} and \
                 {PORT_ENV} to the API server's address"
            ))
        })?;
        let port: u16 = port.parse().ok().filter(|p| *p != 0).ok_or_else(|| {
            Error::Config(format!(
                "{PORT_ENV}={port:?} is not a TCP port number (1-65535)"
            ))
        })?;
        let base_url = base_url(&host, port)?;

        let dir = env(SERVICEACCOUNT_DIR_ENV)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_SERVICEACCOUNT_DIR));
        Self::from_parts(base_url, &dir)
    }

    /// A configuration for the API server at `base_url` (`https://host:port`) with the
    /// service-account files in `dir`. Used by [`from_env`](Self::from_env) and by tests.
    pub fn from_parts(base_url: String, dir: &Path) -> Result<InClusterConfig, Error> {
        let token_path = dir.join("token");
        let token = token::read_initial(&token_path)?;

        let ca_path = dir.join("ca.crt");
        let pem = small_file::read(&ca_path, MAX_CA_BUNDLE_BYTES).map_err(|e| {
            Error::Config(format!(
                "cannot read the cluster CA bundle {}: {e}; mount a service-account token \
                 or set {SERVICEACCOUNT_DIR_ENV} to a directory holding token and ca.crt",
                ca_path.display()
            ))
        })?;
        let ca_certs = tls::parse_ca_bundle(&pem, &ca_path)?;

        let ns_path = dir.join("namespace");
        let namespace = match small_file::read(&ns_path, MAX_NAMESPACE_FILE_BYTES) {
            Ok(raw) => {
                Some(String::from_utf8_lossy(&raw).trim().to_string()).filter(|s| !s.is_empty())
            }
            Err(small_file::ReadError::Io(e)) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => {
                return Err(Error::Config(format!(
                    "cannot read the pod namespace {}: {e}",
                    ns_path.display()
                )))
            }
        };

        Ok(InClusterConfig {
            base_url: base_url.trim_end_matches('/').to_string(),
            token_path,
            token,
            ca_path,
            ca_certs,
            namespace,
        })
    }

    /// The pod's namespace from the service-account `namespace` file, if there is one.
    pub fn namespace(&self) -> Option<&str> {
        self.namespace.as_deref()
    }

    /// `https://host:port` of the API server.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The token file that is re-read as it rotates.
    pub fn token_path(&self) -> &Path {
        &self.token_path
    }

    /// The CA bundle the server's certificate is verified against.
    pub fn ca_path(&self) -> &Path {
        &self.ca_path
    }
}

/// `https://host:port` for an IP-address host, bracketing an IPv6 literal.
///
/// Kubernetes always puts the `kubernetes` Service's cluster IP into `KUBERNETES_SERVICE_HOST`;
/// host names are refused rather than resolved, which keeps the system resolver (and with it
/// glibc's NSS machinery) out of the static binary.
pub(crate) fn base_url(host: &str, port: u16) -> Result<String, Error> {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    match bare.parse::<IpAddr>() {
        Ok(IpAddr::V4(ip)) => Ok(format!("https://{ip}:{port}")),
        Ok(IpAddr::V6(ip)) => Ok(format!("https://[{ip}]:{port}")),
        Err(_) => Err(Error::Config(format!(
            "{HOST_ENV}={host:?} is not an IP address (Kubernetes sets the API server's cluster IP; \
             host names are not resolved)"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::fs;

    #[test]
    fn urls() {
        assert_eq!(base_url("10.0.0.1", 443).unwrap(), "https://10.0.0.1:443");
        assert!(matches!(
            base_url("kubernetes.default.svc", 6443),
            Err(Error::Config(_))
        ));
        assert_eq!(base_url("fd00::1", 443).unwrap(), "https://[fd00::1]:443");
        assert_eq!(base_url("::1", 8443).unwrap(), "https://[::1]:8443");
        assert_eq!(base_url("[::1]", 8443).unwrap(), "https://[::1]:8443");
        assert!(matches!(
            base_url("fe80::1%eth0", 443),
            Err(Error::Config(_))
        ));
        assert!(matches!(base_url("fd00::zz", 443), Err(Error::Config(_))));
        assert!(matches!(base_url("a/b", 443), Err(Error::Config(_))));
    }

    fn lookup<'a>(vars: &'a HashMap<&'a str, String>) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| vars.get(k).cloned()
    }

    #[test]
    fn missing_or_bad_env_names_the_variable() {
        let mut vars = HashMap::new();
        let e = InClusterConfig::from_env(&lookup(&vars)).unwrap_err();
        assert!(
            matches!(&e, Error::Config(m) if m.contains(HOST_ENV)),
            "{e}"
        );
        vars.insert(HOST_ENV, "10.0.0.1".to_string());
        let e = InClusterConfig::from_env(&lookup(&vars)).unwrap_err();
        assert!(
            matches!(&e, Error::Config(m) if m.contains(PORT_ENV)),
            "{e}"
        );
        vars.insert(PORT_ENV, "https".to_string());
        let e = InClusterConfig::from_env(&lookup(&vars)).unwrap_err();
        assert!(
            matches!(&e, Error::Config(m) if m.contains(PORT_ENV)),
            "{e}"
        );
    }

    #[test]
    fn missing_files_name_the_file() {
        let dir = std::env::temp_dir().join(format!("kube-incluster-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let mut vars = HashMap::new();
        vars.insert(HOST_ENV, "::1".to_string());
        vars.insert(PORT_ENV, "443".to_string());
        vars.insert(SERVICEACCOUNT_DIR_ENV, dir.display().to_string());

        let e = InClusterConfig::from_env(&lookup(&vars)).unwrap_err();
        assert!(matches!(&e, Error::Config(m) if m.contains("token")), "{e}");

        fs::write(dir.join("token"), "\n").unwrap();
        let e = InClusterConfig::from_env(&lookup(&vars)).unwrap_err();
        assert!(matches!(&e, Error::Config(m) if m.contains("empty")), "{e}");

        fs::write(dir.join("token"), "tok-123\n").unwrap();
        let e = InClusterConfig::from_env(&lookup(&vars)).unwrap_err();
        assert!(
            matches!(&e, Error::Config(m) if m.contains("ca.crt")),
            "{e}"
        );
        assert!(!e.to_string().contains("tok-123"));

        fs::write(dir.join("ca.crt"), "garbage").unwrap();
        let e = InClusterConfig::from_env(&lookup(&vars)).unwrap_err();
        assert!(
            matches!(&e, Error::Config(m) if m.contains("ca.crt")),
            "{e}"
        );
        fs::remove_dir_all(&dir).unwrap();
    }
}
