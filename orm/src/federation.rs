//! The rules of Libravatar's DNS federation, for the opt-in fallback that
//! fetches avatars from other providers: which SRV names to ask, which
//! record to use (RFC 2782), and which targets are safe to connect to.
//! No I/O here; `http::fallback` does the asking.

use std::net::IpAddr;

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
/// digits and hyphens in labels of 1 to 63, at most 253 in all, and a
/// port that is not 0.
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
}

/// Whether `ip` is on the public internet. A target's address must be,
/// unless configured otherwise: an address's owner controls its domain's
/// SRV records, and must not be able to point the server at its own
/// network (the database, a metadata service).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_documentation()
                || v4.is_multicast()
                || a == 0
                || (a == 100 && (64..128).contains(&b)) // shared address space
                || (a == 198 && (b == 18 || b == 19)) // benchmarking
                || a >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00 // unique local
                || (first & 0xffc0) == 0xfe80 // link local
                || first == 0x2001 && v6.segments()[1] == 0x0db8) // documentation
        }
    }
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
        for public in ["93.184.216.34", "2606:4700::1111", "1.1.1.1"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "2001:db8::1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
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
