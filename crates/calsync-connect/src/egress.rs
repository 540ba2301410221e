//! Which addresses calsync reaches when somebody else chose them: patients' ICS and CalDAV
//! calendars, publishers' manifests and the files those list. Such an address may name the
//! network calsync runs in (its database, an admin page on `localhost`, a cloud's metadata
//! service at 169.254.169.254); unless the configuration says otherwise ([`Egress`]), only
//! public addresses are reached.
//!
//! [`EgressClient`] applies the policy to every request it sends and every redirect it follows:
//! - a host written as an IP address (`http://10.0.0.5/`, `http://[::1]/`) is checked before the
//!   request is sent;
//! - a host name is resolved by the client's own resolver, which keeps only the permitted
//!   addresses: the address checked is the address connected to, so a name whose answer changes
//!   between a check and the connection (DNS rebinding) cannot get through.
//!
//! Where an HTTP proxy is configured (`HTTPS_PROXY`), the proxy resolves names and its own
//! policy applies. Google and Microsoft are reached at the addresses of the server's own
//! configuration, not through this.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use ipnet::IpNet;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::{Method, RequestBuilder, Url};

/// What outbound requests to addresses from outside may reach.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Egress {
    /// Every address, public or not (a developer's machine, tests on loopback).
    private_networks: bool,
    /// Networks reached although they are not public (a hospital's own CalDAV server).
    allowed: Arc<[IpNet]>,
}

impl Egress {
    /// Public addresses only (the default).
    pub fn public() -> Egress {
        Egress::default()
    }

    /// Every address, private networks and loopback included.
    pub fn unrestricted() -> Egress {
        Egress { private_networks: true, allowed: Arc::new([]) }
    }

    /// Public addresses and `allow`: networks (`10.20.0.0/16`) or single addresses
    /// (`192.168.1.7`, `fd00::5`); every address when `private_networks`.
    pub fn new(private_networks: bool, allow: &[String]) -> Result<Egress, String> {
        let allowed = allow
            .iter()
            .map(|a| {
                let a = a.trim();
                a.parse::<IpNet>()
                    .or_else(|_| a.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| format!("egress.allow: {a:?} is neither an address nor a network (10.20.0.0/16)"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Egress { private_networks, allowed: allowed.into() })
    }

    /// Whether requests may go to `ip`.
    pub fn permits(&self, ip: IpAddr) -> bool {
        self.private_networks || is_public(ip) || self.allowed.iter().any(|n| n.contains(&ip))
    }

    /// Refuses a URL whose host is an IP address this policy does not permit. Host names pass:
    /// [`EgressClient`]'s resolver checks what they resolve to when it connects.
    pub fn check(&self, url: &Url) -> Result<(), Refused> {
        let ip = match url.host() {
            Some(url::Host::Ipv4(a)) => IpAddr::V4(a),
            Some(url::Host::Ipv6(a)) => IpAddr::V6(a),
            _ => return Ok(()),
        };
        if self.permits(ip) { Ok(()) } else { Err(Refused { host: ip.to_string(), address: ip }) }
    }

    /// [`Egress::check`], and a refusal of `localhost` and its subdomains, which always name the
    /// loopback interface (RFC 6761): for an address given to the API, refused at once rather
    /// than at its first fetch.
    pub fn admit(&self, url: &Url) -> Result<(), Refused> {
        self.check(url)?;
        let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
        match url.host_str().map(|h| h.trim_end_matches('.').to_ascii_lowercase()) {
            Some(h) if (h == "localhost" || h.ends_with(".localhost")) && !self.permits(loopback) => {
                Err(Refused { host: h, address: loopback })
            }
            _ => Ok(()),
        }
    }
}

/// A request refused by the [`Egress`] policy. It names the host and the address, never the
/// path or query of the URL (feed URLs carry tokens).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// The host as written in the URL.
    pub host: String,
    /// The address refused (the first one, for a name that resolves to several).
    pub address: IpAddr,
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host == self.address.to_string() {
            write!(f, "{} is not a public address", self.host)?;
        } else {
            write!(f, "{} resolves to {}, which is not a public address", self.host, self.address)?;
        }
        write!(f, "; this server reaches such addresses only when its configuration allows them (egress.allow)")
    }
}

impl std::error::Error for Refused {}

impl Refused {
    /// The refusal somewhere in the chain of `error`'s sources (a request that failed because the
    /// resolver or the redirect policy refused its address).
    pub fn in_chain<'e>(error: &'e (dyn std::error::Error + 'static)) -> Option<&'e Refused> {
        let mut e = Some(error);
        while let Some(cause) = e {
            if let Some(refused) = cause.downcast_ref::<Refused>() {
                return Some(refused);
            }
            e = cause.source();
        }
        None
    }
}

/// An HTTP client that sends requests only where its [`Egress`] permits.
#[derive(Debug, Clone)]
pub struct EgressClient {
    client: reqwest::Client,
    egress: Egress,
}

/// Redirects followed at most, as reqwest's default policy.
const MAX_REDIRECTS: usize = 10;

impl EgressClient {
    /// A client built from `builder`, with a resolver and a redirect policy that keep to `egress`.
    pub fn new(mut builder: reqwest::ClientBuilder, egress: Egress) -> Result<EgressClient, reqwest::Error> {
        // When every address is permitted, reqwest's own resolver and redirect policy do.
        if !egress.private_networks {
            let redirects = egress.clone();
            builder = builder.dns_resolver(Arc::new(PermittedAddresses(egress.clone()))).redirect(
                reqwest::redirect::Policy::custom(move |attempt| {
                    if attempt.previous().len() >= MAX_REDIRECTS {
                        attempt.error("too many redirects")
                    } else if let Err(refused) = redirects.check(attempt.url()) {
                        attempt.error(refused)
                    } else {
                        attempt.follow()
                    }
                }),
            );
        }
        Ok(EgressClient { client: builder.build()?, egress })
    }

    /// A request to `url`, refused when its host is an address the policy does not permit.
    pub fn request(&self, method: Method, url: Url) -> Result<RequestBuilder, Refused> {
        self.egress.check(&url)?;
        Ok(self.client.request(method, url))
    }

    /// A GET of `url` ([`EgressClient::request`]).
    pub fn get(&self, url: Url) -> Result<RequestBuilder, Refused> {
        self.request(Method::GET, url)
    }
}

/// The system's resolver, keeping only the addresses the policy permits.
struct PermittedAddresses(Egress);

impl Resolve for PermittedAddresses {
    fn resolve(&self, name: Name) -> Resolving {
        let egress = self.0.clone();
        let host = name.as_str().to_string();
        Box::pin(async move {
            let all: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let permitted: Vec<SocketAddr> = all.iter().copied().filter(|a| egress.permits(a.ip())).collect();
            match all.first() {
                Some(first) if permitted.is_empty() => {
                    Err(Box::new(Refused { host, address: first.ip() }) as Box<dyn std::error::Error + Send + Sync>)
                }
                _ => Ok(Box::new(permitted.into_iter()) as Addrs),
            }
        })
    }
}

/// Whether `ip` is a public (globally routable unicast) address: not loopback, private,
/// link-local, shared (carrier-grade NAT), multicast, reserved, documentation or unspecified;
/// an IPv6 address that carries an IPv4 one (mapped, NAT64, 6to4) is judged by that one.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => is_public_v4(a),
        IpAddr::V6(a) => {
            if let Some(v4) = a.to_ipv4_mapped() {
                return is_public_v4(v4);
            }
            let s = a.segments();
            let embedded = |high: u16, low: u16| Ipv4Addr::from((u32::from(high) << 16) | u32::from(low));
            match s {
                // NAT64's well-known prefix (RFC 6052) reaches the IPv4 address in its last 32 bits.
                [0x64, 0xff9b, 0, 0, 0, 0, high, low] => is_public_v4(embedded(high, low)),
                // 6to4 (RFC 3056) carries an IPv4 address in bits 16 to 48.
                [0x2002, high, low, ..] => is_public_v4(embedded(high, low)),
                // Teredo (2001::/32) and documentation (2001:db8::/32) are not reachable hosts.
                [0x2001, 0 | 0x0db8, ..] => false,
                // Global unicast is 2000::/3; the rest (::1, fc00::/7, fe80::/10, ff00::/8, ...) is not.
                [first, ..] => first & 0xe000 == 0x2000,
            }
        }
    }
}

fn is_public_v4(a: Ipv4Addr) -> bool {
    let [a0, a1, a2, _] = a.octets();
    let special = a0 == 0 // "this network", 0.0.0.0
        || a0 == 10 // private
        || a0 == 127 // loopback
        || (a0 == 100 && a1 & 0xc0 == 64) // shared address space, 100.64.0.0/10
        || (a0 == 169 && a1 == 254) // link-local, cloud metadata services
        || (a0 == 172 && a1 & 0xf0 == 16) // private, 172.16.0.0/12
        || (a0 == 192 && a1 == 168) // private
        || (a0 == 192 && a1 == 0 && (a2 == 0 || a2 == 2)) // IETF assignments, documentation
        || (a0 == 198 && a1 & 0xfe == 18) // benchmarking, 198.18.0.0/15
        || (a0 == 198 && a1 == 51 && a2 == 100) // documentation
        || (a0 == 203 && a1 == 0 && a2 == 113) // documentation
        || a0 >= 224; // multicast, reserved, broadcast
    !special
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn only_globally_routable_addresses_are_public() {
        for public in [
            "8.8.8.8",
            "1.1.1.1",
            "100.63.255.255",
            "100.128.0.1",
            "172.15.0.1",
            "172.32.0.1",
            "192.0.1.1",
            "198.17.0.1",
            "198.20.0.1",
            "223.255.255.254",
            "2a00:1450:4001:81d::200e",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ] {
            assert!(is_public(ip(public)), "{public} is public");
        }
        for private in [
            "0.0.0.0",
            "10.1.2.3",
            "127.0.0.1",
            "127.255.0.9",
            "100.64.0.1",
            "100.127.255.255",
            "169.254.169.254",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "192.0.0.8",
            "192.0.2.1",
            "198.18.0.1",
            "198.19.255.255",
            "198.51.100.7",
            "203.0.113.9",
            "224.0.0.1",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::127.0.0.1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "fec0::1",
            "ff02::1",
            "2001:db8::1",
            "2001:0:4136:e378::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a00:1",
            "2002:a00:1::1",
            "2002:7f00:1::",
        ] {
            assert!(!is_public(ip(private)), "{private} is not public");
        }
    }

    #[test]
    fn the_policy_permits_public_addresses_allowed_networks_or_everything() {
        let public = Egress::public();
        assert!(public.permits(ip("8.8.8.8")) && !public.permits(ip("10.20.1.1")) && !public.permits(ip("::1")));
        let hospital = Egress::new(false, &["10.20.0.0/16".into(), " 192.168.1.7 ".into(), "fd00::5".into()]).unwrap();
        assert!(hospital.permits(ip("10.20.1.1")) && hospital.permits(ip("192.168.1.7")));
        assert!(hospital.permits(ip("fd00::5")) && hospital.permits(ip("8.8.8.8")));
        assert!(!hospital.permits(ip("10.21.0.1")) && !hospital.permits(ip("192.168.1.8")));
        assert!(!hospital.permits(ip("127.0.0.1")) && !hospital.permits(ip("169.254.169.254")));
        let open = Egress::unrestricted();
        assert!(open.permits(ip("127.0.0.1")) && open.permits(ip("169.254.169.254")) && open.permits(ip("8.8.8.8")));
        let err = Egress::new(false, &["10.20.0.0/33".into()]).unwrap_err();
        assert!(err.contains("10.20.0.0/33") && err.contains("egress.allow"), "{err}");
    }

    #[test]
    fn ip_hosts_are_checked_in_every_spelling_and_localhost_is_refused_when_given() {
        let public = Egress::public();
        let url = |u: &str| Url::parse(u).unwrap();
        for refused in [
            "http://127.0.0.1:8080/feed.ics",
            "https://[::1]/",
            "http://2130706433/",
            "http://0x7f.1/",
            "http://169.254.169.254/latest/meta-data/",
            "http://[::ffff:10.0.0.1]/",
        ] {
            let err = public.check(&url(refused)).unwrap_err();
            assert!(!is_public(err.address), "{refused}");
            assert!(!err.to_string().contains("meta-data"), "the path is never shown: {err}");
        }
        assert!(public.check(&url("http://93.184.215.14/feed.ics")).is_ok());
        // Names are judged by what they resolve to, when the client connects.
        assert!(public.check(&url("http://localhost:8080/")).is_ok());
        for given in ["http://localhost:8080/", "http://LocalHost./x", "https://feeds.localhost/"] {
            let err = public.admit(&url(given)).unwrap_err();
            assert!(err.to_string().contains("resolves to 127.0.0.1, which is not a public address"), "{err}");
        }
        assert!(public.admit(&url("https://calendar.example.org/c.ics")).is_ok());
        assert!(Egress::unrestricted().admit(&url("http://localhost:8080/")).is_ok());
        assert!(Egress::new(false, &["127.0.0.0/8".into()]).unwrap().admit(&url("http://localhost/")).is_ok());
    }
}
