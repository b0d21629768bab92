//! The rules of Libravatar's DNS federation, for the opt-in fallback that
//! fetches avatars from other providers: which SRV names to ask, which
//! record to use (RFC 2782), and which targets are safe to connect to.
//! No I/O here; `http::fallback` does the asking.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// One SRV answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SrvRecord {
    pub priority: u16,
    pub weight: u16,
    pub port: u16,
    pub target: String,
}

/// `https` for `_avatars-sec._tcp`, `http` for `_avatars._tcp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Https,
    Http,
}

impl Scheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Https => "https",
            Scheme::Http => "http",
        }
    }
}

/// The SRV names for an address's domain, in the order a client asks:
/// the secure service wins when both exist.
pub fn srv_names(domain: &str) -> [(String, Scheme); 2] {
    let domain = domain.trim_end_matches('.');
    [
        (format!("_avatars-sec._tcp.{domain}."), Scheme::Https),
        (format!("_avatars._tcp.{domain}."), Scheme::Http),
    ]
}

/// RFC 2782's choice among `records`: the lowest priority, then at random
/// in proportion to weight, with zero-weight records chosen rarely but
/// not never. `roll(n)` returns a number in `0..=n`. Records whose target
/// is invalid (including ".", "no service here") are never chosen.
pub fn select(records: &[SrvRecord], mut roll: impl FnMut(u32) -> u32) -> Option<&SrvRecord> {
    let usable: Vec<&SrvRecord> = records
        .iter()
        .filter(|r| valid_target(&r.target, r.port))
        .collect();
    let priority = usable.iter().map(|r| r.priority).min()?;
    let mut group: Vec<&SrvRecord> = usable
        .into_iter()
        .filter(|r| r.priority == priority)
        .collect();
    // "Arrange all SRV RRs (that have not been ordered yet) in any order,
    // except that all those with weight 0 are placed at the beginning."
    group.sort_by_key(|r| r.weight != 0);
    let total: u32 = group.iter().map(|r| u32::from(r.weight)).sum();
    let chosen = roll(total).min(total);
    let mut running = 0;
    for record in &group {
        running += u32::from(record.weight);
        if running >= chosen {
            return Some(record);
        }
    }
    group.last().copied()
}

/// Whether an SRV target is a host name worth connecting to: letters,
/// digits and hyphens in labels of 1 to 63, at most 253 in all, a port that
/// is not 0, and not a number in disguise. URL parsers read a host whose
/// last label is a number (`2130706433`, `0x7f.1`, `127.1`) as an IPv4
/// address, which would skip the address check the name gets.
pub fn valid_target(target: &str, port: u16) -> bool {
    let host = target.strip_suffix('.').unwrap_or(target);
    port != 0
        && !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
        && !ends_in_a_number(host)
}

/// The WHATWG URL standard's "ends in a number" test, which decides that
/// a host is an IPv4 address.
pub fn ends_in_a_number(host: &str) -> bool {
    let mut labels = host.split('.').rev();
    let last = match labels.next() {
        Some("") => labels.next().unwrap_or(""),
        Some(last) => last,
        None => "",
    };
    let hex = last
        .strip_prefix("0x")
        .or_else(|| last.strip_prefix("0X"))
        .is_some_and(|digits| digits.bytes().all(|b| b.is_ascii_hexdigit()));
    (!last.is_empty() && last.bytes().all(|b| b.is_ascii_digit())) || hex
}

/// The special-purpose blocks of IANA's IPv4 registry, plus multicast and
/// the reserved 240/4. No avatar provider lives in any of them, so every
/// one is refused, even those the registry calls globally reachable
/// (anycast services, AS112).
const SPECIAL_V4: [(Ipv4Addr, u8); 18] = [
    (Ipv4Addr::new(0, 0, 0, 0), 8),       // "this network"
    (Ipv4Addr::new(10, 0, 0, 0), 8),      // private
    (Ipv4Addr::new(100, 64, 0, 0), 10),   // shared address space (carrier NAT)
    (Ipv4Addr::new(127, 0, 0, 0), 8),     // loopback
    (Ipv4Addr::new(169, 254, 0, 0), 16),  // link local, cloud metadata
    (Ipv4Addr::new(172, 16, 0, 0), 12),   // private
    (Ipv4Addr::new(192, 0, 0, 0), 24),    // IETF protocol assignments
    (Ipv4Addr::new(192, 0, 2, 0), 24),    // documentation
    (Ipv4Addr::new(192, 31, 196, 0), 24), // AS112
    (Ipv4Addr::new(192, 52, 193, 0), 24), // AMT
    (Ipv4Addr::new(192, 88, 99, 0), 24),  // 6to4 relay anycast, deprecated
    (Ipv4Addr::new(192, 168, 0, 0), 16),  // private
    (Ipv4Addr::new(192, 175, 48, 0), 24), // AS112 direct delegation
    (Ipv4Addr::new(198, 18, 0, 0), 15),   // benchmarking
    (Ipv4Addr::new(198, 51, 100, 0), 24), // documentation
    (Ipv4Addr::new(203, 0, 113, 0), 24),  // documentation
    (Ipv4Addr::new(224, 0, 0, 0), 4),     // multicast
    (Ipv4Addr::new(240, 0, 0, 0), 4),     // reserved, and broadcast
];

/// IPv6 forms that carry an IPv4 address, and where: they reach what the
/// IPv4 address reaches (through the kernel, a NAT64 or a 6to4 relay), so
/// they are judged by it.
const EMBEDDING_V6: [(Ipv6Addr, u8, u32); 5] = [
    (Ipv6Addr::new(0, 0, 0, 0, 0, 0xffff, 0, 0), 96, 96), // IPv4-mapped
    (Ipv6Addr::new(0, 0, 0, 0, 0xffff, 0, 0, 0), 96, 96), // IPv4-translated (SIIT)
    (Ipv6Addr::new(0, 0, 0, 0, 0, 0, 0, 0), 96, 96),      // IPv4-compatible, deprecated
    (Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0, 0), 96, 96), // NAT64, well-known prefix
    (Ipv6Addr::new(0x2002, 0, 0, 0, 0, 0, 0, 0), 16, 16), // 6to4
];

/// Inside global unicast (2000::/3), the special-purpose blocks of IANA's
/// IPv6 registry: refused outright, as for IPv4. Teredo (2001::/32) is in
/// the first, and its embedded addresses are obfuscated, so it is not
/// judged by them.
const SPECIAL_V6: [(Ipv6Addr, u8); 4] = [
    (Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0), 23), // IETF protocol assignments: Teredo, benchmarking, ORCHID
    (Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0), 32), // documentation
    (Ipv6Addr::new(0x2620, 0x4f, 0x8000, 0, 0, 0, 0, 0), 48), // AS112 direct delegation
    (Ipv6Addr::new(0x3fff, 0, 0, 0, 0, 0, 0, 0), 20), // documentation
];

fn in_v4(ip: Ipv4Addr, (network, bits): (Ipv4Addr, u8)) -> bool {
    let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
    u32::from(ip) & mask == u32::from(network) & mask
}

fn in_v6(ip: Ipv6Addr, network: Ipv6Addr, bits: u8) -> bool {
    let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
    u128::from(ip) & mask == u128::from(network) & mask
}

/// Whether `ip` is on the public internet. A target's address must be,
/// unless configured otherwise: an address's owner controls its domain's
/// DNS, and must not be able to point the server at its own network (the
/// database, a metadata service). IPv6 must be global unicast (2000::/3)
/// outside IANA's special blocks; forms that embed an IPv4 address are
/// judged by it.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => !SPECIAL_V4.iter().any(|&block| in_v4(v4, block)),
        IpAddr::V6(v6) => {
            for (network, bits, at) in EMBEDDING_V6 {
                if in_v6(v6, network, bits) {
                    return is_public(IpAddr::V4(embedded_v4(v6, at)));
                }
            }
            in_v6(v6, Ipv6Addr::new(0x2000, 0, 0, 0, 0, 0, 0, 0), 3)
                && !SPECIAL_V6
                    .iter()
                    .any(|&(network, bits)| in_v6(v6, network, bits))
        }
    }
}

/// The 32 bits of `v6` that follow its first `at` bits.
fn embedded_v4(v6: Ipv6Addr, at: u32) -> Ipv4Addr {
    Ipv4Addr::from((u128::from(v6) >> (96 - at)) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn srv(priority: u16, weight: u16, target: &str) -> SrvRecord {
        SrvRecord {
            priority,
            weight,
            port: 443,
            target: target.into(),
        }
    }

    #[test]
    fn the_lowest_priority_wins_whatever_the_weights() {
        let records = [srv(20, 100, "b.example."), srv(10, 0, "a.example.")];
        for roll in [0, 1, 100] {
            assert_eq!(select(&records, |_| roll).unwrap().target, "a.example.");
        }
    }

    #[test]
    fn weights_share_out_the_choices() {
        let records = [
            srv(10, 60, "heavy.example."),
            srv(10, 20, "light.example."),
            srv(10, 0, "zero.example."),
            srv(10, 20, "other.example."),
        ];
        let mut counts = std::collections::HashMap::new();
        // Every roll from 0 to the total once: an exact distribution.
        for roll in 0..=100 {
            let chosen = select(&records, |total| {
                assert_eq!(total, 100);
                roll
            })
            .unwrap();
            *counts.entry(chosen.target.as_str()).or_insert(0) += 1;
        }
        assert_eq!(counts["zero.example."], 1, "weight 0 only on a roll of 0");
        assert_eq!(counts["heavy.example."], 60);
        assert_eq!(counts["light.example."], 20);
        assert_eq!(counts["other.example."], 20);
    }

    #[test]
    fn invalid_targets_are_skipped_and_none_left_means_none() {
        let records = [
            srv(1, 10, "."),
            srv(2, 10, "bad_name.example."),
            srv(3, 10, "ok.example."),
        ];
        assert_eq!(select(&records, |_| 0).unwrap().target, "ok.example.");
        assert_eq!(select(&records[..2], |_| 0), None);
        assert_eq!(select(&[], |_| 0), None);
    }

    #[test]
    fn target_names() {
        for ok in ["avatars.example.org.", "a", "x-1.example", &"a".repeat(63)] {
            assert!(valid_target(ok, 443), "{ok}");
        }
        for bad in [
            "",
            ".",
            "-a.example",
            "a-.example",
            "a..example",
            "a b.example",
            "évil.example",
            "a/b",
            "127.0.0.1:5432",
            &"a".repeat(64),
        ] {
            assert!(!valid_target(bad, 443), "{bad}");
        }
        assert!(!valid_target("avatars.example.org", 0));
    }

    #[test]
    fn only_public_addresses_are_reachable() {
        for public in [
            "93.184.216.34",
            "1.1.1.1",
            "2606:4700::1111",
            "2a00:1450:4001::200e",
            // Forms that embed a public IPv4 address reach it.
            "64:ff9b::5db8:d822",
            "2002:5db8:d822::1",
            "::ffff:93.184.216.34",
            "::93.184.216.34",
        ] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
        for (refused, why) in [
            ("0.0.0.0", "this network"),
            ("0.1.2.3", "this network"),
            ("10.1.2.3", "private"),
            ("100.64.0.1", "shared address space"),
            ("127.0.0.1", "loopback"),
            ("127.255.255.254", "loopback"),
            ("169.254.169.254", "link local, cloud metadata"),
            ("172.16.0.1", "private"),
            ("172.31.255.255", "private"),
            ("192.0.0.8", "IETF protocol assignments"),
            ("192.0.0.170", "NAT64 discovery"),
            ("192.0.2.1", "documentation"),
            ("192.31.196.1", "AS112"),
            ("192.52.193.1", "AMT"),
            ("192.88.99.1", "6to4 relay anycast"),
            ("192.168.1.1", "private"),
            ("192.175.48.1", "AS112 delegation"),
            ("198.18.0.1", "benchmarking"),
            ("198.19.255.1", "benchmarking"),
            ("198.51.100.1", "documentation"),
            ("203.0.113.1", "documentation"),
            ("224.0.0.1", "multicast"),
            ("239.255.255.250", "multicast"),
            ("240.0.0.1", "reserved"),
            ("255.255.255.255", "broadcast"),
            ("::", "unspecified"),
            ("::1", "loopback"),
            ("::ffff:127.0.0.1", "IPv4-mapped loopback"),
            ("::ffff:10.0.0.1", "IPv4-mapped private"),
            ("::ffff:0:127.0.0.1", "IPv4-translated loopback"),
            ("::127.0.0.1", "IPv4-compatible loopback"),
            ("64:ff9b::7f00:1", "NAT64 of loopback"),
            ("64:ff9b::a9fe:a9fe", "NAT64 of the metadata service"),
            ("64:ff9b:1::808:808", "local-use NAT64"),
            ("2002:7f00:1::1", "6to4 of loopback"),
            ("2002:c0a8:101::1", "6to4 of a private address"),
            ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "Teredo"),
            ("2001:2::1", "benchmarking"),
            ("2001:10::1", "ORCHID"),
            ("2001:db8::1", "documentation"),
            ("3fff::1", "documentation"),
            ("2620:4f:8000::1", "AS112 delegation"),
            ("100::1", "discard only"),
            ("5f00::1", "SRv6 segment identifiers"),
            ("fc00::1", "unique local"),
            ("fd12:3456::1", "unique local"),
            ("fe80::1", "link local"),
            ("fec0::1", "site local"),
            ("ff02::1", "multicast"),
            ("4000::1", "not global unicast"),
        ] {
            assert!(!is_public(refused.parse().unwrap()), "{refused}: {why}");
        }
    }

    #[test]
    fn numbers_in_disguise_are_not_host_names() {
        for numeric in [
            "2130706433",
            "2130706433.",
            "0x7f.1",
            "127.1",
            "127.0.0.1",
            "0177.0.0.1",
            "example.0x7f",
            "example.0X",
            "a.b.123",
        ] {
            assert!(ends_in_a_number(numeric), "{numeric}");
            assert!(!valid_target(numeric, 443), "{numeric}");
        }
        for name in ["0x7f.example", "123.example", "avatars.example.org.", "x1"] {
            assert!(!ends_in_a_number(name), "{name}");
            assert!(valid_target(name, 443), "{name}");
        }
    }

    #[test]
    fn srv_names_put_the_secure_service_first() {
        assert_eq!(
            srv_names("example.org"),
            [
                ("_avatars-sec._tcp.example.org.".to_string(), Scheme::Https),
                ("_avatars._tcp.example.org.".to_string(), Scheme::Http),
            ]
        );
    }
}
