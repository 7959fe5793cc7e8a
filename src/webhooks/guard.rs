//! The SSRF guard: a webhook may not point the service at its own network.
//!
//! Refused unless `--webhook-allow-private`: every address of IANA's IPv4 and IPv6
//! Special-Purpose Address Registries that is not globally reachable, or is
//! reserved, deprecated or for documentation (loopback, private, shared,
//! link-local with the cloud metadata address, benchmarking, "this network",
//! reserved 240/4, site-local, unique local, discard-only, ...), multicast, the
//! broadcast address, the IPv6 blocks that lead to an IPv4 address through a
//! gateway (NAT64, 6to4, Teredo, translated), and the IPv4-mapped and -compatible
//! forms of every refused IPv4 address ([`V4_BLOCKS`], [`V6_BLOCKS`]). A URL is
//! checked when it is registered and again at every delivery, after resolving;
//! the delivery's HTTP client resolves through [`GuardedResolver`] and uses no
//! proxy (a proxy would resolve and connect itself, past the guard), so it
//! connects to exactly the addresses that were checked (no second lookup for a
//! rebinding DNS server to answer differently).

use std::net::{IpAddr, SocketAddr};

use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// IPv4 blocks no webhook may reach: every block of IANA's IPv4 Special-Purpose
/// Address Registry that is not globally reachable, or is reserved, deprecated or
/// for documentation, plus multicast (IANA's multicast registry) and the limited
/// broadcast address. (Blocks the registry marks globally reachable, such as
/// AS112's, stay open.) `(first address, prefix length, what it is)`.
const V4_BLOCKS: &[(u32, u8, &str)] = &[
    (0x0000_0000, 8, "a \"this network\" address (0.0.0.0/8)"),
    (0x0a00_0000, 8, "a private address (10.0.0.0/8)"),
    (
        0x6440_0000,
        10,
        "a shared (carrier-grade NAT) address (100.64.0.0/10)",
    ),
    (0x7f00_0000, 8, "a loopback address (127.0.0.0/8)"),
    (0xa9fe_0000, 16, "a link-local address (169.254.0.0/16)"),
    (0xac10_0000, 12, "a private address (172.16.0.0/12)"),
    (
        0xc000_0000,
        24,
        "an IETF protocol assignment (192.0.0.0/24)",
    ),
    (0xc000_0200, 24, "a documentation address (192.0.2.0/24)"),
    (
        0xc058_6300,
        24,
        "a 6to4 relay anycast address (192.88.99.0/24)",
    ),
    (0xc0a8_0000, 16, "a private address (192.168.0.0/16)"),
    (0xc612_0000, 15, "a benchmarking address (198.18.0.0/15)"),
    (0xc633_6400, 24, "a documentation address (198.51.100.0/24)"),
    (0xcb00_7100, 24, "a documentation address (203.0.113.0/24)"),
    (0xe000_0000, 4, "a multicast address (224.0.0.0/4)"),
    (0xf000_0000, 4, "a reserved address (240.0.0.0/4)"),
    (0xffff_ffff, 32, "the broadcast address"),
];

/// IPv6 blocks no webhook may reach, from IANA's IPv6 Special-Purpose Address
/// Registry (and multicast). Blocks that embed an IPv4 address behind a gateway
/// (translated, NAT64, 6to4, Teredo) are refused whole: a receiver has no reason
/// to publish one, and each can lead to an inside IPv4 address. (IPv4-mapped and
/// -compatible addresses are judged by their IPv4 address: see [`forbidden`].)
const V6_BLOCKS: &[(u128, u8, &str)] = &[
    (0, 128, "the unspecified address (::)"),
    (1, 128, "a loopback address (::1)"),
    (
        0xffff_0000_0000_0000,
        96,
        "an IPv4-translated address (::ffff:0:0:0/96)",
    ),
    (0x0064_ff9b_u128 << 96, 96, "a NAT64 address (64:ff9b::/96)"),
    (
        0x0064_ff9b_0001_u128 << 80,
        48,
        "a local-use NAT64 address (64:ff9b:1::/48)",
    ),
    (0x0100_u128 << 112, 64, "a discard-only address (100::/64)"),
    (
        0x2001_u128 << 112,
        23,
        "an IETF protocol assignment, Teredo among them (2001::/23)",
    ),
    (
        0x2001_0db8_u128 << 96,
        32,
        "a documentation address (2001:db8::/32)",
    ),
    (0x2002_u128 << 112, 16, "a 6to4 address (2002::/16)"),
    (
        0x3fff_u128 << 112,
        20,
        "a documentation address (3fff::/20)",
    ),
    (
        0x5f00_u128 << 112,
        16,
        "a segment routing (SRv6) address (5f00::/16)",
    ),
    (
        0xfc00_u128 << 112,
        7,
        "a private (unique local) address (fc00::/7)",
    ),
    (0xfe80_u128 << 112, 10, "a link-local address (fe80::/10)"),
    (0xfec0_u128 << 112, 10, "a site-local address (fec0::/10)"),
    (0xff00_u128 << 112, 8, "a multicast address (ff00::/8)"),
];

/// Why an address may not receive webhooks, if it may not.
pub fn forbidden(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => within(u32::from(v4), V4_BLOCKS),
        IpAddr::V6(v6) => {
            // IPv4-mapped (::ffff:a.b.c.d) and IPv4-compatible (::a.b.c.d, deprecated
            // but still routed by some stacks) addresses reach their IPv4 address:
            // they are judged as it is.
            let bits = u128::from(v6);
            let compatible = bits >> 32 == 0 && bits > 1;
            if let Some(v4) = v6.to_ipv4_mapped() {
                return within(u32::from(v4), V4_BLOCKS);
            }
            if compatible {
                let v4 = u32::try_from(bits).expect("the low 32 bits");
                return within(v4, V4_BLOCKS);
            }
            within(bits, V6_BLOCKS)
        }
    }
}

/// The first block of `blocks` that holds `addr`, by its description.
fn within<T>(addr: T, blocks: &[(T, u8, &'static str)]) -> Option<&'static str>
where
    T: Copy + Eq + std::ops::Shr<u32, Output = T>,
{
    let bits = u32::try_from(std::mem::size_of::<T>() * 8).expect("32 or 128");
    blocks.iter().find_map(|&(first, len, what)| {
        let shift = bits - u32::from(len);
        // A shift by the whole width is not defined: a /0 would match all.
        let same = shift == bits || (addr >> shift) == (first >> shift);
        same.then_some(what)
    })
}

/// The URL, parsed, if it is one a webhook may have: `http`/`https` with a host,
/// no credentials; its host is checked with [`check_host`].
pub async fn check_url(raw: &str, allow_private: bool) -> Result<Url, String> {
    let url = Url::parse(raw).map_err(|e| format!("is not a URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("must be an http or https URL".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not carry credentials".into());
    }
    check_host(&url, allow_private).await?;
    Ok(url)
}

/// Refuses a URL whose host is, or resolves to, a forbidden address.
pub async fn check_host(url: &Url, allow_private: bool) -> Result<(), String> {
    let host = url.host().ok_or("must name a host")?;
    if allow_private {
        return Ok(());
    }
    let port = url.port_or_known_default().unwrap_or(443);
    let addrs: Vec<IpAddr> = match host {
        url::Host::Ipv4(ip) => vec![IpAddr::V4(ip)],
        url::Host::Ipv6(ip) => vec![IpAddr::V6(ip)],
        url::Host::Domain(name) => tokio::net::lookup_host((name, port))
            .await
            .map_err(|_| format!("host {name} does not resolve"))?
            .map(|a| a.ip())
            .collect(),
    };
    for ip in addrs {
        if let Some(why) = forbidden(ip) {
            return Err(format!(
                "resolves to {ip}, {why} (allowed only with --webhook-allow-private)"
            ));
        }
    }
    Ok(())
}

/// The delivery client's resolver: the system's answer, refused whole if any
/// address in it is forbidden.
#[derive(Debug, Clone, Copy)]
pub struct GuardedResolver {
    pub allow_private: bool,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if !allow_private
                && let Some((ip, why)) = addrs
                    .iter()
                    .find_map(|a| forbidden(a.ip()).map(|w| (a.ip(), w)))
            {
                return Err(format!("{host} resolves to {ip}, {why}").into());
            }
            let addrs: Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_class_of_inside_address_is_refused() {
        for ip in [
            "127.0.0.1",
            "127.255.0.9",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "224.0.0.1",
            "0.0.0.0",
            "0.1.2.3",
            "255.255.255.255",
            "100.64.0.1",
            "::1",
            "::",
            "fd00::1",
            "fc12::1",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            // Classes a review found open (issue 41, item 12).
            "64:ff9b::7f00:1",
            "64:ff9b:1::a00:1",
            "2002:7f00:1::1",
            "2001:0:4136:e378::1",
            "fec0::1",
            "::ffff:0:10.0.0.1",
            "198.18.0.1",
            "198.19.255.255",
            "192.0.0.8",
            "240.0.0.1",
            "250.1.2.3",
            "192.0.2.1",
            "198.51.100.7",
            "203.0.113.9",
            "192.88.99.1",
            "100::1",
            "2001:db8::1",
            "3fff::1",
            "5f00::1",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert!(forbidden(ip).is_some(), "{ip} allowed");
        }
        for ip in [
            "93.184.216.34",
            "1.1.1.1",
            "172.32.0.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
            "198.20.0.1",
            "192.0.1.1",
            "223.255.255.255",
            "2a00:1450::1",
            "2001:4860::8888",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(forbidden(ip), None, "{ip}");
        }
    }
}
