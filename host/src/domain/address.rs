//! Which IP addresses outbound HTTP may reach on a host name's word alone.
//!
//! A robot's request goes to an address only once that address is known to
//! be public: loopback, private, link-local, shared (CGNAT), multicast,
//! broadcast, unspecified, documentation and reserved ranges, and the cloud
//! metadata services, reach robohost itself, its neighbours or its cloud
//! credentials. Only an admin approving that exact address and port
//! (`http:10.0.0.5:8080`) opens one of them.
//!
//! IPv6 forms that carry an IPv4 address (mapped `::ffff:a.b.c.d`, NAT64
//! `64:ff9b::a.b.c.d`, 6to4 `2002:AABB:CCDD::`) are judged by the IPv4
//! address they reach; the deprecated IPv4-compatible form `::a.b.c.d` is
//! refused whatever it carries. Outside those, only global unicast IPv6
//! (`2000::/3`, less its special blocks) is public.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Serialize};

/// What kind of address an IP address is, for outbound HTTP.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AddressClass {
    /// Reachable on the internet: the only class a host name may resolve to.
    Public,
    /// This machine: `127.0.0.0/8`, `::1`.
    Loopback,
    /// A private network: `10.0.0.0/8`, `172.16.0.0/12`, `192.168.0.0/16`,
    /// unique local `fc00::/7`, site-local `fec0::/10`, local-use NAT64
    /// `64:ff9b:1::/48`.
    Private,
    /// The local link: `169.254.0.0/16`, `fe80::/10`.
    LinkLocal,
    /// A cloud's instance metadata service, which hands out credentials:
    /// `169.254.169.254`, `169.254.170.2`, `100.100.100.200`,
    /// `fd00:ec2::254`.
    CloudMetadata,
    /// Carrier-grade NAT's shared space, `100.64.0.0/10`.
    Cgnat,
    /// `224.0.0.0/4`, `ff00::/8`.
    Multicast,
    /// `255.255.255.255`.
    Broadcast,
    /// "This network", `0.0.0.0/8`, and `::`: connecting to it reaches this
    /// machine.
    Unspecified,
    /// `192.0.2.0/24`, `198.51.100.0/24`, `203.0.113.0/24`, `2001:db8::/32`,
    /// `3fff::/20`.
    Documentation,
    /// Anything else set aside: `240.0.0.0/4`, `192.0.0.0/24`,
    /// `192.88.99.0/24`, `198.18.0.0/15`, IPv4-compatible `::a.b.c.d`,
    /// `100::/64`, `2001::/23`, and IPv6 outside `2000::/3`.
    Reserved,
}

impl AddressClass {
    pub fn as_str(self) -> &'static str {
        match self {
            AddressClass::Public => "public",
            AddressClass::Loopback => "loopback",
            AddressClass::Private => "private",
            AddressClass::LinkLocal => "link-local",
            AddressClass::CloudMetadata => "cloud-metadata",
            AddressClass::Cgnat => "cgnat",
            AddressClass::Multicast => "multicast",
            AddressClass::Broadcast => "broadcast",
            AddressClass::Unspecified => "unspecified",
            AddressClass::Documentation => "documentation",
            AddressClass::Reserved => "reserved",
        }
    }

    /// Whether a server can listen there: an admin may approve an exact
    /// address of any class but these.
    pub fn is_endpoint(self) -> bool {
        !matches!(
            self,
            AddressClass::Multicast | AddressClass::Broadcast | AddressClass::Unspecified
        )
    }
}

impl fmt::Display for AddressClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The address a socket to `ip` reaches: an IPv4-mapped IPv6 address is the
/// IPv4 address it maps.
pub fn canonical_address(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The class of `ip`; no lookup, no traffic.
pub fn address_class(ip: IpAddr) -> AddressClass {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn in_v4(ip: Ipv4Addr, net: [u8; 4], prefix: u32) -> bool {
    let mask = u32::MAX.checked_shl(32 - prefix).unwrap_or(0);
    u32::from(ip) & mask == u32::from(Ipv4Addr::from(net)) & mask
}

fn classify_v4(ip: Ipv4Addr) -> AddressClass {
    use AddressClass::*;
    const METADATA: [[u8; 4]; 3] = [[169, 254, 169, 254], [169, 254, 170, 2], [100, 100, 100, 200]];
    const TABLE: &[([u8; 4], u32, AddressClass)] = &[
        ([0, 0, 0, 0], 8, Unspecified),
        ([10, 0, 0, 0], 8, Private),
        ([100, 64, 0, 0], 10, Cgnat),
        ([127, 0, 0, 0], 8, Loopback),
        ([169, 254, 0, 0], 16, LinkLocal),
        ([172, 16, 0, 0], 12, Private),
        ([192, 0, 0, 0], 24, Reserved),
        ([192, 0, 2, 0], 24, Documentation),
        ([192, 88, 99, 0], 24, Reserved),
        ([192, 168, 0, 0], 16, Private),
        ([198, 18, 0, 0], 15, Reserved),
        ([198, 51, 100, 0], 24, Documentation),
        ([203, 0, 113, 0], 24, Documentation),
        ([224, 0, 0, 0], 4, Multicast),
        ([255, 255, 255, 255], 32, Broadcast),
        ([240, 0, 0, 0], 4, Reserved),
    ];
    if METADATA.contains(&ip.octets()) {
        return CloudMetadata;
    }
    TABLE
        .iter()
        .find(|(net, prefix, _)| in_v4(ip, *net, *prefix))
        .map_or(Public, |(_, _, class)| *class)
}

fn in_v6(ip: Ipv6Addr, net: u128, prefix: u32) -> bool {
    let mask = u128::MAX.checked_shl(128 - prefix).unwrap_or(0);
    u128::from(ip) & mask == net & mask
}

fn classify_v6(ip: Ipv6Addr) -> AddressClass {
    use AddressClass::*;
    let bits = u128::from(ip);
    let low_v4 = Ipv4Addr::from(bits as u32);
    if ip == Ipv6Addr::UNSPECIFIED {
        return Unspecified;
    }
    if ip == Ipv6Addr::LOCALHOST {
        return Loopback;
    }
    if ip == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254) {
        return CloudMetadata;
    }
    // Forms carrying an IPv4 address reach that address.
    if let Some(v4) = ip.to_ipv4_mapped() {
        return classify_v4(v4);
    }
    if in_v6(ip, 0x0064_ff9bu128 << 96, 96) {
        return classify_v4(low_v4);
    }
    if in_v6(ip, 0x2002u128 << 112, 16) {
        return classify_v4(Ipv4Addr::from((bits >> 80) as u32));
    }
    const TABLE: &[(u128, u32, AddressClass)] = &[
        // IPv4-compatible `::a.b.c.d`, deprecated: refused whatever it carries.
        (0, 96, Reserved),
        (0x0064_ff9b_0001u128 << 80, 48, Private),
        (0x0100u128 << 112, 64, Reserved),
        (0x2001_0db8u128 << 96, 32, Documentation),
        (0x3fffu128 << 112, 20, Documentation),
        (0x2001u128 << 112, 23, Reserved),
        (0xfc00u128 << 112, 7, Private),
        (0xfe80u128 << 112, 10, LinkLocal),
        (0xfec0u128 << 112, 10, Private),
        (0xff00u128 << 112, 8, Multicast),
    ];
    if let Some((_, _, class)) = TABLE.iter().find(|(net, prefix, _)| in_v6(ip, *net, *prefix)) {
        return *class;
    }
    if in_v6(ip, 0x2000u128 << 112, 3) {
        Public
    } else {
        Reserved
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use AddressClass::*;

    fn check(address: &str, expected: AddressClass) {
        let ip: IpAddr = address.parse().unwrap();
        assert_eq!(address_class(ip), expected, "{address}");
    }

    /// The refusal table: every class, in IPv4, IPv6 and the IPv6 forms
    /// carrying IPv4. Pure: no lookup, no connection.
    #[test]
    fn addresses_are_classed_without_any_traffic() {
        let table: &[(&str, AddressClass)] = &[
            // IPv4
            ("93.184.216.34", Public),
            ("8.8.8.8", Public),
            ("1.1.1.1", Public),
            ("172.32.0.1", Public),
            ("100.128.0.1", Public),
            ("127.0.0.1", Loopback),
            ("127.255.255.254", Loopback),
            ("10.0.0.1", Private),
            ("172.16.0.1", Private),
            ("172.31.255.255", Private),
            ("192.168.1.1", Private),
            ("169.254.0.1", LinkLocal),
            ("169.254.169.254", CloudMetadata),
            ("169.254.170.2", CloudMetadata),
            ("100.100.100.200", CloudMetadata),
            ("100.64.0.1", Cgnat),
            ("100.127.255.255", Cgnat),
            ("224.0.0.1", Multicast),
            ("239.255.255.250", Multicast),
            ("255.255.255.255", Broadcast),
            ("0.0.0.0", Unspecified),
            ("0.1.2.3", Unspecified),
            ("192.0.2.1", Documentation),
            ("198.51.100.1", Documentation),
            ("203.0.113.1", Documentation),
            ("240.0.0.1", Reserved),
            ("192.0.0.8", Reserved),
            ("192.88.99.1", Reserved),
            ("198.18.0.1", Reserved),
            // IPv6
            ("2606:4700:4700::1111", Public),
            ("2a00:1450:4001::1", Public),
            ("::1", Loopback),
            ("::", Unspecified),
            ("fc00::1", Private),
            ("fd12:3456::1", Private),
            ("fec0::1", Private),
            ("fe80::1", LinkLocal),
            ("fd00:ec2::254", CloudMetadata),
            ("ff02::1", Multicast),
            ("2001:db8::1", Documentation),
            ("3fff::1", Documentation),
            ("2001::1", Reserved),
            ("100::1", Reserved),
            ("4000::1", Reserved),
            ("64:ff9b:1::1", Private),
            // IPv4-mapped: the IPv4 address it reaches
            ("::ffff:127.0.0.1", Loopback),
            ("::ffff:7f00:1", Loopback),
            ("::ffff:10.0.0.1", Private),
            ("::ffff:169.254.169.254", CloudMetadata),
            ("::ffff:0.0.0.0", Unspecified),
            ("::ffff:93.184.216.34", Public),
            // IPv4-compatible: deprecated, refused whatever it carries
            ("::127.0.0.1", Reserved),
            ("::93.184.216.34", Reserved),
            // NAT64: the IPv4 address it reaches
            ("64:ff9b::127.0.0.1", Loopback),
            ("64:ff9b::a9fe:a9fe", CloudMetadata),
            ("64:ff9b::192.168.0.1", Private),
            ("64:ff9b::93.184.216.34", Public),
            // 6to4: the IPv4 address it carries
            ("2002:7f00:1::1", Loopback),
            ("2002:a00:1::", Private),
            ("2002:5db8:d822::1", Public),
        ];
        for (address, expected) in table {
            check(address, *expected);
        }
    }

    #[test]
    fn mapped_addresses_are_the_ipv4_they_reach() {
        let mapped: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
        assert_eq!(canonical_address(mapped), IpAddr::V4(Ipv4Addr::LOCALHOST));
        let nat64: IpAddr = "64:ff9b::7f00:1".parse().unwrap();
        assert_eq!(canonical_address(nat64), nat64, "NAT64 is a distinct address");
        assert!(!Unspecified.is_endpoint() && !Multicast.is_endpoint() && !Broadcast.is_endpoint());
        assert!(Loopback.is_endpoint() && CloudMetadata.is_endpoint());
    }
}
