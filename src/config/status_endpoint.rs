//! `K8S_AWAIT_ELECTION_STATUS_ENDPOINT`: `[IP]:PORT` → [`StatusEndpoint`].

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// `K8S_AWAIT_ELECTION_STATUS_ENDPOINT`: an optional IP and a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusEndpoint {
    /// `None` for `:PORT`: every address, IPv6 and IPv4, like Go's `net.Listen`.
    pub ip: Option<IpAddr>,
    /// The TCP port, 1-65535.
    pub port: u16,
}

/// `":9999"`, `"0.0.0.0:9999"`, `"[::]:9999"`, `"127.0.0.1:9999"`, `"localhost:9999"`.
pub fn parse_status_endpoint(v: &str) -> Option<StatusEndpoint> {
    let (host, port) = v.rsplit_once(':')?;
    if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let port: u16 = port.parse().ok().filter(|p| *p != 0)?;
    let ip = if host.is_empty() {
        None
    } else if host == "localhost" {
        Some(IpAddr::V4(Ipv4Addr::LOCALHOST))
    } else if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(IpAddr::V6(inner.parse::<Ipv6Addr>().ok()?))
    } else {
        Some(IpAddr::V4(host.parse::<Ipv4Addr>().ok()?))
    };
    Some(StatusEndpoint { ip, port })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_endpoints() {
        let ok = |s: &str| parse_status_endpoint(s).expect(s);
        assert_eq!(
            ok(":9999"),
            StatusEndpoint {
                ip: None,
                port: 9999
            }
        );
        assert_eq!(ok("0.0.0.0:9999").ip, Some("0.0.0.0".parse().expect("ip")));
        assert_eq!(ok("[::]:9999").ip, Some("::".parse().expect("ip")));
        assert_eq!(ok("127.0.0.1:1").port, 1);
        for b in [
            "9999", ":0", ":65536", "::9999", "host:80", "[::1:80", "1.2.3:80", ":+80",
        ] {
            assert_eq!(parse_status_endpoint(b), None, "{b}");
        }
    }
}
