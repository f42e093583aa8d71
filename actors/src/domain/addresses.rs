//! Which addresses the node's outgoing requests (webhook deliveries, upstream providers) may
//! reach when private destinations are not allowed: only globally reachable unicast. Every
//! range the IANA special-purpose registries (IPv4 and IPv6) mark as not globally reachable is
//! refused, and IPv6 forms that carry an IPv4 address (IPv4-mapped, IPv4-compatible, NAT64
//! `64:ff9b::/96`, 6to4 `2002::/16`) are judged by that IPv4 address. IPv6 outside global
//! unicast (`2000::/3`) is refused outright.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// An IPv4 prefix.
struct V4Net(Ipv4Addr, u8);

/// An IPv6 prefix.
struct V6Net(Ipv6Addr, u8);

/// IPv4 ranges that are not globally reachable (IANA IPv4 special-purpose registry).
const V4_NOT_GLOBAL: &[V4Net] = &[
    V4Net(Ipv4Addr::new(0, 0, 0, 0), 8),       // "this network"
    V4Net(Ipv4Addr::new(10, 0, 0, 0), 8),      // private
    V4Net(Ipv4Addr::new(100, 64, 0, 0), 10),   // shared address space (CGNAT)
    V4Net(Ipv4Addr::new(127, 0, 0, 0), 8),     // loopback
    V4Net(Ipv4Addr::new(169, 254, 0, 0), 16),  // link-local
    V4Net(Ipv4Addr::new(172, 16, 0, 0), 12),   // private
    V4Net(Ipv4Addr::new(192, 0, 0, 0), 24),    // IETF protocol assignments
    V4Net(Ipv4Addr::new(192, 0, 2, 0), 24),    // documentation (TEST-NET-1)
    V4Net(Ipv4Addr::new(192, 31, 196, 0), 24), // AS112-v4
    V4Net(Ipv4Addr::new(192, 52, 193, 0), 24), // AMT
    V4Net(Ipv4Addr::new(192, 88, 99, 0), 24),  // deprecated 6to4 relay anycast
    V4Net(Ipv4Addr::new(192, 168, 0, 0), 16),  // private
    V4Net(Ipv4Addr::new(192, 175, 48, 0), 24), // direct delegation AS112
    V4Net(Ipv4Addr::new(198, 18, 0, 0), 15),   // benchmarking
    V4Net(Ipv4Addr::new(198, 51, 100, 0), 24), // documentation (TEST-NET-2)
    V4Net(Ipv4Addr::new(203, 0, 113, 0), 24),  // documentation (TEST-NET-3)
    V4Net(Ipv4Addr::new(224, 0, 0, 0), 4),     // multicast
    V4Net(Ipv4Addr::new(240, 0, 0, 0), 4),     // reserved, and the limited broadcast
];

/// Ranges inside global unicast `2000::/3` that are not globally reachable (IANA IPv6
/// special-purpose registry).
const V6_NOT_GLOBAL: &[V6Net] = &[
    V6Net(Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0), 23), // IETF protocol assignments, Teredo
    V6Net(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0), 32), // documentation
    V6Net(Ipv6Addr::new(0x3fff, 0, 0, 0, 0, 0, 0, 0), 20), // documentation
];

fn v4_in(address: Ipv4Addr, net: &V4Net) -> bool {
    let shift = 32 - u32::from(net.1);
    (u32::from(address) >> shift) == (u32::from(net.0) >> shift)
}

fn v6_in(address: Ipv6Addr, net: &V6Net) -> bool {
    let shift = 128 - u32::from(net.1);
    (u128::from(address) >> shift) == (u128::from(net.0) >> shift)
}

/// The IPv4 address an IPv6 address stands for, if it is one of the forms that carry one:
/// IPv4-mapped `::ffff:a.b.c.d`, IPv4-compatible `::a.b.c.d` (deprecated), NAT64
/// `64:ff9b::a.b.c.d`, or 6to4 `2002:AABB:CCDD::/48`.
pub fn embedded_ipv4(address: Ipv6Addr) -> Option<Ipv4Addr> {
    if let Some(v4) = address.to_ipv4_mapped() {
        return Some(v4);
    }
    let bits = u128::from(address);
    let segments = address.segments();
    // `::/96` with something in the last 32 bits (`::` and `::1` are judged as IPv6).
    if bits >> 32 == 0 && bits > 1 {
        return Some(Ipv4Addr::from(bits as u32));
    }
    if v6_in(
        address,
        &V6Net(Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0, 0), 96),
    ) {
        return Some(Ipv4Addr::from(bits as u32));
    }
    if segments[0] == 0x2002 {
        return Some(Ipv4Addr::from(
            (u32::from(segments[1]) << 16) | u32::from(segments[2]),
        ));
    }
    None
}

/// Whether a node that refuses private destinations must refuse `address`: anything that is
/// not globally reachable unicast.
pub fn is_private_address(address: IpAddr) -> bool {
    match address {
        IpAddr::V4(v4) => is_private_v4(v4),
        IpAddr::V6(v6) => match embedded_ipv4(v6) {
            Some(v4) => is_private_v4(v4),
            None => is_private_v6(v6),
        },
    }
}

fn is_private_v4(address: Ipv4Addr) -> bool {
    V4_NOT_GLOBAL.iter().any(|net| v4_in(address, net))
}

fn is_private_v6(address: Ipv6Addr) -> bool {
    // Outside 2000::/3 (loopback, unspecified, unique-local, link-local, site-local,
    // multicast, discard-only, local-use NAT64 `64:ff9b:1::/48`, …) nothing is global unicast.
    let global_unicast = (address.segments()[0] & 0xe000) == 0x2000;
    !global_unicast || V6_NOT_GLOBAL.iter().any(|net| v6_in(address, net))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn private(text: &str) -> bool {
        is_private_address(text.parse().unwrap())
    }

    #[test]
    fn every_special_purpose_range_is_refused() {
        for address in [
            // IPv4: the usual suspects.
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.127.255.254",
            "0.0.0.0",
            "0.1.2.3",
            // IPv4: the special-purpose ranges that were accepted before.
            "192.0.0.1",
            "192.0.0.170",
            "192.0.2.10",
            "198.18.0.1",
            "198.19.255.254",
            "198.51.100.7",
            "203.0.113.9",
            "192.88.99.1",
            "240.0.0.1",
            "250.1.2.3",
            "255.255.255.255",
            "224.0.0.251",
            "239.255.255.250",
            // IPv6 outside global unicast.
            "::",
            "::1",
            "fe80::1",
            "fd00::1",
            "fc00::1",
            "fec0::1",
            "ff02::1",
            "100::1",
            "64:ff9b:1::a00:1",
            // IPv6 inside 2000::/3 but not global.
            "2001:db8::1",
            "2001::1",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            "3fff::1",
            // IPv6 carrying a private IPv4 address.
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::127.0.0.1",
            "::169.254.169.254",
            "64:ff9b::10.0.0.1",
            "64:ff9b::7f00:1",
            "64:ff9b::a9fe:a9fe",
            "2002:7f00:1::1",
            "2002:a00:1::",
            "2002:c0a8:101::1",
            "2002:a9fe:a9fe::",
        ] {
            assert!(private(address), "{address} must be refused");
        }
    }

    #[test]
    fn globally_reachable_unicast_is_allowed() {
        for address in [
            "93.184.216.34",
            "8.8.8.8",
            "1.1.1.1",
            "172.32.0.1",
            "100.128.0.1",
            "198.20.0.1",
            "192.0.3.1",
            "2606:4700::1111",
            "2a00:1450:4001:80b::200e",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ] {
            assert!(!private(address), "{address} must be allowed");
        }
    }

    #[test]
    fn embedded_ipv4_reads_each_form() {
        let cases = [
            ("::ffff:1.2.3.4", Some("1.2.3.4")),
            ("::1.2.3.4", Some("1.2.3.4")),
            ("64:ff9b::1.2.3.4", Some("1.2.3.4")),
            ("2002:102:304::", Some("1.2.3.4")),
            ("::1", None),
            ("::", None),
            ("2606:4700::1111", None),
        ];
        for (v6, v4) in cases {
            assert_eq!(
                embedded_ipv4(v6.parse().unwrap()),
                v4.map(|v4| v4.parse().unwrap()),
                "{v6}"
            );
        }
    }
}
