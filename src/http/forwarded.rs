//! The real client address behind trusted reverse proxies: `X-Forwarded-For` and `X-Real-IP`.
//!
//! Owns: CIDR parsing, the set of trusted proxies, and [`real_client`], a pure function the
//! drivers call when they write an access log line. Must not: do I/O, or believe anything a
//! peer says unless that peer is trusted.
//!
//! The rule, applied in this order (nginx's `real_ip_recursive on` semantics):
//! 1. The peer (the socket's other end) is not a trusted proxy → the peer's address, and the
//!    headers are ignored entirely.
//! 2. `X-Forwarded-For` (all of its lines, in order, as one comma-separated list) has at least
//!    one address → walk it from the right. Each trusted address is a proxy hop and is
//!    skipped; the first untrusted address is the client. If every address is trusted, the
//!    leftmost is the client. An entry that is not an address stops the walk: nothing to its
//!    left can be believed, so the last address passed (or, for the rightmost entry, the
//!    peer) is the client.
//! 3. Otherwise a parseable `X-Real-IP` is the client.
//! 4. Otherwise the peer.
//!
//! A Unix-socket peer has no address. It counts as trusted only when `unix:` is in the trusted
//! set (nginx's `set_real_ip_from unix:`), and without a forwarded address it is shown as
//! `unix:`, as nginx shows it.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

/// The other end of a connection, as the driver knows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Peer {
    Ip(IpAddr),
    /// A Unix-domain socket peer (it has no address).
    Unix,
}

impl From<SocketAddr> for Peer {
    fn from(addr: SocketAddr) -> Peer {
        Peer::Ip(addr.ip())
    }
}

/// The client address as logged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientAddr {
    Ip(IpAddr),
    /// A Unix-socket peer with no forwarded address; displayed as `unix:`.
    Unix,
}

impl fmt::Display for ClientAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientAddr::Ip(ip) => ip.fmt(f),
            ClientAddr::Unix => f.write_str("unix:"),
        }
    }
}

/// An address block: `10.0.0.0/8`, `2001:db8::/32`; a plain address means `/32` or `/128`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    net: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Whether `ip` is inside the block. IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`) match
    /// IPv4 blocks, since a dual-stack socket reports IPv4 peers that way.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.net, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.net, self.prefix)
    }
}

/// Why a CIDR did not parse; displays as the reason only.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CidrError(String);

impl fmt::Display for CidrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CidrError {}

impl FromStr for Cidr {
    type Err = CidrError;

    fn from_str(s: &str) -> Result<Cidr, CidrError> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let net: IpAddr = addr
            .parse()
            .map_err(|_| CidrError(format!("'{addr}' is not an IPv4 or IPv6 address")))?;
        let max: u8 = if net.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            // Digits only: `u8::from_str` would also take a leading `+`.
            Some(p) if !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()) => {
                match p.parse::<u8>() {
                    Ok(n) if n <= max => n,
                    _ => return Err(CidrError(format!("prefix /{p} is longer than {max} bits"))),
                }
            }
            Some(p) => return Err(CidrError(format!("'/{p}' is not a prefix length"))),
        };
        // Host bits set (`10.1.2.3/8`) would most likely be a typo for a narrower block; refuse
        // rather than silently trust a wider range than the user meant.
        let canonical = Cidr { net, prefix };
        let masked = match net {
            IpAddr::V4(v4) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
                IpAddr::V4(Ipv4Addr::from(u32::from(v4) & mask))
            }
            IpAddr::V6(v6) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
                IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask))
            }
        };
        if masked != net {
            return Err(CidrError(format!(
                "'{s}' has host bits set (did you mean {masked}/{prefix}?)"
            )));
        }
        Ok(canonical)
    }
}

/// One `--trusted-proxy` value: an address block, or `unix:` for Unix-socket peers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrustedProxy {
    Cidr(Cidr),
    Unix,
}

impl FromStr for TrustedProxy {
    type Err = CidrError;

    fn from_str(s: &str) -> Result<TrustedProxy, CidrError> {
        if s == "unix:" {
            Ok(TrustedProxy::Unix)
        } else {
            s.parse().map(TrustedProxy::Cidr)
        }
    }
}

/// The peers whose forwarding headers are believed. Empty by default: trust nobody.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    cidrs: Vec<Cidr>,
    unix: bool,
}

impl TrustedProxies {
    pub fn add(&mut self, proxy: TrustedProxy) {
        match proxy {
            TrustedProxy::Cidr(c) => self.cidrs.push(c),
            TrustedProxy::Unix => self.unix = true,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.cidrs.is_empty() && !self.unix
    }

    fn trusts_ip(&self, ip: IpAddr) -> bool {
        self.cidrs.iter().any(|c| c.contains(ip))
    }

    fn trusts(&self, peer: Peer) -> bool {
        match peer {
            Peer::Ip(ip) => self.trusts_ip(ip),
            Peer::Unix => self.unix,
        }
    }
}

impl FromIterator<TrustedProxy> for TrustedProxies {
    fn from_iter<I: IntoIterator<Item = TrustedProxy>>(iter: I) -> TrustedProxies {
        let mut set = TrustedProxies::default();
        for p in iter {
            set.add(p);
        }
        set
    }
}

/// The client address to log for a request that came from `peer` with these header values
/// (`x_forwarded_for` is every `X-Forwarded-For` line joined by commas, in order). See the
/// module docs for the rule.
pub fn real_client(
    peer: Peer,
    x_forwarded_for: Option<&[u8]>,
    x_real_ip: Option<&[u8]>,
    trusted: &TrustedProxies,
) -> ClientAddr {
    let from_peer = match peer {
        Peer::Ip(ip) => ClientAddr::Ip(ip),
        Peer::Unix => ClientAddr::Unix,
    };
    // SECURITY: nothing an untrusted peer says about the client is believed.
    if !trusted.trusts(peer) {
        return from_peer;
    }
    let mut entries = x_forwarded_for
        .into_iter()
        .flat_map(|v| v.split(|&b| b == b','))
        .map(trim)
        .filter(|e| !e.is_empty())
        .peekable();
    if entries.peek().is_some() {
        let mut client = from_peer;
        for entry in entries.rev() {
            let Some(ip) = parse_addr(entry) else {
                return client;
            };
            client = ClientAddr::Ip(ip);
            if !trusted.trusts_ip(ip) {
                return client;
            }
        }
        return client;
    }
    match x_real_ip.map(trim).and_then(parse_addr) {
        Some(ip) => ClientAddr::Ip(ip),
        None => from_peer,
    }
}

fn trim(v: &[u8]) -> &[u8] {
    v.trim_ascii()
}

/// An address as proxies write it: `192.0.2.1`, `2001:db8::1`, and also with a port
/// (`192.0.2.1:5678`, `[2001:db8::1]:5678`) or in brackets (`[2001:db8::1]`).
fn parse_addr(v: &[u8]) -> Option<IpAddr> {
    let s = std::str::from_utf8(v).ok()?;
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(sa) = s.parse::<SocketAddr>() {
        return Some(sa.ip());
    }
    s.strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
        .and_then(|inner| inner.parse::<Ipv6Addr>().ok())
        .map(IpAddr::V6)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(items: &[&str]) -> TrustedProxies {
        items.iter().map(|s| s.parse().unwrap()).collect()
    }

    fn ip(s: &str) -> Peer {
        Peer::Ip(s.parse().unwrap())
    }

    #[test]
    fn cidrs_parse_and_match() {
        let cases: &[(&str, &str, bool)] = &[
            ("10.0.0.0/8", "10.255.1.2", true),
            ("10.0.0.0/8", "11.0.0.1", false),
            ("127.0.0.1", "127.0.0.1", true),
            ("127.0.0.1", "127.0.0.2", false),
            ("0.0.0.0/0", "203.0.113.9", true),
            ("192.168.1.128/25", "192.168.1.200", true),
            ("192.168.1.128/25", "192.168.1.127", false),
            ("2001:db8::/32", "2001:db8:ffff::1", true),
            ("2001:db8::/32", "2001:db9::1", false),
            ("::1", "::1", true),
            ("::/0", "2001:db8::1", true),
            ("::/0", "192.0.2.1", false),
            // A dual-stack socket reports IPv4 peers as mapped IPv6.
            ("127.0.0.0/8", "::ffff:127.0.0.1", true),
        ];
        for &(cidr, addr, expected) in cases {
            let c: Cidr = cidr.parse().unwrap();
            assert_eq!(
                c.contains(addr.parse().unwrap()),
                expected,
                "{cidr} ∋ {addr}"
            );
        }
        assert_eq!(
            "10.0.0.0/8".parse::<Cidr>().unwrap().to_string(),
            "10.0.0.0/8"
        );
        assert_eq!("::1".parse::<Cidr>().unwrap().to_string(), "::1/128");
    }

    #[test]
    fn bad_cidrs_are_refused_with_a_reason() {
        let cases: &[(&str, &str)] = &[
            ("", "is not an IPv4 or IPv6 address"),
            ("localhost", "is not an IPv4 or IPv6 address"),
            ("10.0.0/8", "is not an IPv4 or IPv6 address"),
            ("10.0.0.0/33", "longer than 32 bits"),
            ("::/129", "longer than 128 bits"),
            ("10.0.0.0/", "is not a prefix length"),
            ("10.0.0.0/+8", "is not a prefix length"),
            ("10.0.0.0/8/8", "is not a prefix length"),
            ("10.0.0.0/0008", "is not a prefix length"),
            ("10.1.2.3/8", "host bits set (did you mean 10.0.0.0/8?)"),
            ("unix", "is not an IPv4 or IPv6 address"),
        ];
        for &(input, reason) in cases {
            let err = input.parse::<TrustedProxy>().unwrap_err().to_string();
            assert!(err.contains(reason), "{input:?}: {err}");
        }
        assert_eq!("unix:".parse::<TrustedProxy>(), Ok(TrustedProxy::Unix));
    }

    #[test]
    fn real_client_table() {
        let lo = set(&["127.0.0.1", "10.0.0.0/8"]);
        type Case<'a> = (Peer, Option<&'a str>, Option<&'a str>, &'a str);
        let cases: &[Case<'_>] = &[
            // Untrusted peer: headers ignored.
            (
                ip("198.51.100.1"),
                Some("203.0.113.7"),
                Some("203.0.113.8"),
                "198.51.100.1",
            ),
            // Trusted peer, one hop.
            (ip("127.0.0.1"), Some("203.0.113.7"), None, "203.0.113.7"),
            // From the right, trusted hops skipped; the spoofed leftmost value is not reached.
            (
                ip("127.0.0.1"),
                Some("1.1.1.1, 203.0.113.7, 10.0.0.5"),
                None,
                "203.0.113.7",
            ),
            // Every entry trusted: the leftmost.
            (
                ip("127.0.0.1"),
                Some("10.0.0.1, 10.0.0.2"),
                None,
                "10.0.0.1",
            ),
            // Garbage stops the walk at the last address passed.
            (
                ip("127.0.0.1"),
                Some("203.0.113.7, junk, 10.0.0.5"),
                None,
                "10.0.0.5",
            ),
            (
                ip("127.0.0.1"),
                Some("junk"),
                Some("203.0.113.8"),
                "127.0.0.1",
            ),
            // Ports and brackets as some proxies write them.
            (
                ip("127.0.0.1"),
                Some("203.0.113.7:4711"),
                None,
                "203.0.113.7",
            ),
            (
                ip("127.0.0.1"),
                Some("[2001:db8::7]:4711"),
                None,
                "2001:db8::7",
            ),
            (ip("127.0.0.1"), Some("[2001:db8::7]"), None, "2001:db8::7"),
            // X-Real-IP only without X-Forwarded-For entries.
            (ip("127.0.0.1"), None, Some(" 203.0.113.8 "), "203.0.113.8"),
            (
                ip("127.0.0.1"),
                Some(" , "),
                Some("203.0.113.8"),
                "203.0.113.8",
            ),
            (
                ip("127.0.0.1"),
                Some("203.0.113.7"),
                Some("203.0.113.8"),
                "203.0.113.7",
            ),
            (ip("127.0.0.1"), None, Some("nope"), "127.0.0.1"),
            (ip("127.0.0.1"), None, None, "127.0.0.1"),
            // A mapped IPv4 peer is trusted by its IPv4 block.
            (
                ip("::ffff:127.0.0.1"),
                Some("203.0.113.7"),
                None,
                "203.0.113.7",
            ),
            // Unix peers are not trusted unless `unix:` is given.
            (Peer::Unix, Some("203.0.113.7"), None, "unix:"),
        ];
        for &(peer, xff, xrip, expected) in cases {
            let got = real_client(peer, xff.map(str::as_bytes), xrip.map(str::as_bytes), &lo);
            assert_eq!(got.to_string(), expected, "{peer:?} {xff:?} {xrip:?}");
        }
    }

    #[test]
    fn unix_peers_are_trusted_only_with_unix() {
        let with_unix = set(&["unix:", "127.0.0.1"]);
        let xff = Some(&b"198.51.100.23, 127.0.0.1"[..]);
        assert_eq!(
            real_client(Peer::Unix, xff, None, &with_unix).to_string(),
            "198.51.100.23"
        );
        assert_eq!(
            real_client(Peer::Unix, None, None, &with_unix),
            ClientAddr::Unix
        );
        let nobody = TrustedProxies::default();
        assert!(nobody.is_empty());
        assert_eq!(
            real_client(Peer::Unix, xff, None, &nobody),
            ClientAddr::Unix
        );
        assert_eq!(
            real_client(ip("127.0.0.1"), xff, None, &nobody).to_string(),
            "127.0.0.1"
        );
    }

    proptest::proptest! {
        /// An untrusted peer is always logged as itself, whatever it sends.
        #[test]
        fn untrusted_peers_cannot_spoof(
            a in proptest::num::u32::ANY,
            xff in proptest::collection::vec(proptest::num::u8::ANY, 0..64),
            xrip in proptest::collection::vec(proptest::num::u8::ANY, 0..32),
        ) {
            let peer_ip = IpAddr::V4(Ipv4Addr::from(a));
            let trusted = set(&["10.0.0.0/8"]);
            proptest::prop_assume!(!trusted.trusts_ip(peer_ip));
            let got = real_client(Peer::Ip(peer_ip), Some(&xff), Some(&xrip), &trusted);
            proptest::prop_assert_eq!(got, ClientAddr::Ip(peer_ip));
        }
    }
}
