//! The opt-in fallback to external Libravatar providers, with every
//! provider and the DNS on loopback: nothing leaves the machine. A fake DNS
//! server publishes SRV records for made-up `.test` domains, fake
//! providers count what they are asked, and the route is configured to use
//! both.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hickory_proto::op::{Header, Message, MessageType, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, SRV};
use hickory_proto::rr::{Name, RData, Record};
use pg_avatar_server::{Libravatar, Options, RemoteFallback};
use pg_avatar_tests::route::{database, get, Server};
use pg_avatar_tests::*;

/// A DNS server on 127.0.0.1 that answers from a fixed table.
struct Dns {
    addr: SocketAddr,
}

impl Dns {
    fn start(records: Vec<Record>) -> Dns {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = socket.local_addr().unwrap();
        std::thread::spawn(move || {
            let mut buffer = [0u8; 1500];
            while let Ok((len, from)) = socket.recv_from(&mut buffer) {
                let Ok(request) = Message::from_vec(&buffer[..len]) else {
                    continue;
                };
                let mut response = Message::new();
                response.set_header(Header::response_from_request(request.header()));
                response.set_message_type(MessageType::Response);
                response.set_authoritative(true);
                let mut known = false;
                for query in request.queries() {
                    response.add_query(query.clone());
                    for record in &records {
                        if record.name() == query.name() {
                            known = true;
                            if record.record_type() == query.query_type() {
                                response.add_answer(record.clone());
                            }
                        }
                    }
                }
                if !known {
                    response.set_response_code(ResponseCode::NXDomain);
                }
                let _ = socket.send_to(&response.to_vec().unwrap(), from);
            }
        });
        Dns { addr }
    }
}

fn name(text: &str) -> Name {
    Name::from_ascii(text).unwrap()
}

fn srv(service: &str, port: u16, target: &str) -> Record {
    Record::from_rdata(
        name(service),
        60,
        RData::SRV(SRV::new(0, 10, port, name(target))),
    )
}

fn a(host: &str, ip: Ipv4Addr) -> Record {
    Record::from_rdata(name(host), 60, RData::A(A(ip)))
}

fn aaaa(host: &str, ip: &str) -> Record {
    Record::from_rdata(name(host), 60, RData::AAAA(AAAA(ip.parse().unwrap())))
}

fn logs() -> String {
    pg_avatar_tests::logs().text()
}

/// A Libravatar provider on 127.0.0.1: `/avatar/{hash}` gives the image
/// stored for the hash, or 404. Records every path it is asked for.
#[derive(Clone)]
struct Provider {
    port: u16,
    images: Arc<Mutex<HashMap<String, Vec<u8>>>>,
    asked: Arc<Mutex<Vec<String>>>,
    /// Where every request is redirected, if anywhere.
    redirect: Arc<Mutex<Option<String>>>,
}

impl Provider {
    fn start() -> Provider {
        Provider::serve(false)
    }

    /// Accepts connections and never answers.
    fn hanging() -> Provider {
        Provider::serve(true)
    }

    fn serve(hang: bool) -> Provider {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let provider = Provider {
            port: listener.local_addr().unwrap().port(),
            images: Arc::default(),
            asked: Arc::default(),
            redirect: Arc::default(),
        };
        let shared = provider.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let shared = shared.clone();
                std::thread::spawn(move || {
                    let mut line = String::new();
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    reader.read_line(&mut line).unwrap_or_default();
                    let path = line.split(' ').nth(1).unwrap_or_default().to_string();
                    shared.asked.lock().unwrap().push(path.clone());
                    if hang {
                        std::thread::sleep(Duration::from_secs(30));
                        return;
                    }
                    let hash = path
                        .strip_prefix("/avatar/")
                        .and_then(|p| p.split('?').next())
                        .unwrap_or_default();
                    if let Some(to) = shared.redirect.lock().unwrap().clone() {
                        let _ = stream.write_all(
                            format!("HTTP/1.1 302 Found\r\nLocation: {to}{path}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                                .as_bytes(),
                        );
                        return;
                    }
                    let image = shared.images.lock().unwrap().get(hash).cloned();
                    let head = |status: &str, len: usize| {
                        format!(
                            "HTTP/1.1 {status}\r\nContent-Length: {len}\r\nContent-Type: image/png\r\nConnection: close\r\n\r\n"
                        )
                    };
                    let _ = match image {
                        Some(bytes) => stream
                            .write_all(head("200 OK", bytes.len()).as_bytes())
                            .and_then(|_| stream.write_all(&bytes)),
                        None => stream.write_all(head("404 Not Found", 0).as_bytes()),
                    };
                });
            }
        });
        provider
    }

    fn has(&self, sha256: &str, image: Vec<u8>) {
        self.images.lock().unwrap().insert(sha256.into(), image);
    }

    fn forget(&self, sha256: &str) {
        self.images.lock().unwrap().remove(sha256);
    }

    fn asked(&self) -> Vec<String> {
        self.asked.lock().unwrap().clone()
    }

    fn redirect_to(&self, base: &str) {
        *self.redirect.lock().unwrap() = Some(base.into());
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }
}

/// A solid square, so which provider an answer came from shows in its colour.
fn solid(rgb: [u8; 3]) -> Vec<u8> {
    let image = image::RgbImage::from_pixel(200, 200, image::Rgb(rgb));
    avatar_pipeline::samples::encode(
        &image::DynamicImage::ImageRgb8(image),
        image::ImageFormat::Png,
    )
}

fn colour_of(jpeg: &[u8]) -> [u8; 3] {
    image::load_from_memory(jpeg)
        .unwrap()
        .to_rgb8()
        .get_pixel(20, 20)
        .0
}

fn close(a: [u8; 3], b: [u8; 3]) -> bool {
    a.iter().zip(b).all(|(x, y)| x.abs_diff(y) < 12)
}

const RED: [u8; 3] = [200, 30, 30];
const BLUE: [u8; 3] = [30, 30, 200];
const GREEN: [u8; 3] = [30, 180, 30];

struct World {
    db: TestDb,
    c: Client,
    federated: Provider,
    central: Provider,
    dns: Dns,
}

/// Addresses at `fed.test` (whose SRV points at `federated`), at
/// `plain.test` (no SRV, so the central provider), at `local.test` (SRV to
/// a target on loopback) and `slow.test` (SRV to a provider that hangs).
fn world(label: &str, hanging: &Provider) -> World {
    let federated = Provider::start();
    let central = Provider::start();
    let loopback = Ipv4Addr::LOCALHOST;
    let dns = Dns::start(vec![
        srv(
            "_avatars._tcp.fed.test.",
            federated.port,
            "avatars.fed.test.",
        ),
        a("avatars.fed.test.", loopback),
        srv(
            "_avatars._tcp.local.test.",
            federated.port,
            "avatars.local.test.",
        ),
        a("avatars.local.test.", loopback),
        srv(
            "_avatars._tcp.slow.test.",
            hanging.port,
            "avatars.slow.test.",
        ),
        a("avatars.slow.test.", loopback),
    ]);
    let db = TestDb::new(label);
    let c = db.connect();
    World {
        db,
        c,
        federated,
        central,
        dns,
    }
}

impl World {
    fn server(&self, tune: impl FnOnce(&mut RemoteFallback)) -> Server {
        let mut fallback = RemoteFallback {
            central: Some(
                format!("http://127.0.0.1:{}", self.central.port)
                    .parse()
                    .unwrap(),
            ),
            nameserver: Some(self.dns.addr),
            // The test's providers, and nothing else on this machine.
            private_allowed: vec![self.central.addr(), self.federated.addr()],
            timeout: Duration::from_secs(2),
            ..RemoteFallback::default()
        };
        tune(&mut fallback);
        Server::start(
            vec![database(&self.db, self.db.conninfo())],
            Options {
                libravatar: Some(Libravatar {
                    database: self.db.name.clone(),
                    fallback: Some(fallback),
                    ..Libravatar::default()
                }),
                ..Options::default()
            },
        )
    }

    /// Sets `email` for `resource`; returns its MD5 and SHA-256.
    fn address(&mut self, resource: &str, email: &str) -> (String, String) {
        self.c
            .execute(
                "SELECT avatar.avatar_set_email($1, $2)",
                &[&resource, &email],
            )
            .unwrap();
        let row = self
            .c
            .query_one(
                "SELECT md5($1), encode(sha256(convert_to($1, 'UTF8')), 'hex')",
                &[&email],
            )
            .unwrap();
        (row.get(0), row.get(1))
    }
}

fn avatar(server: &Server, digest: &str) -> (u16, Vec<u8>) {
    let (response, body) = get(&format!("{}/avatar/{digest}?s=64&d=404", server.base), &[]);
    (response.status().as_u16(), body)
}

#[test]
fn federation_then_central_then_nothing() {
    let hanging = Provider::hanging();
    let mut w = world("fallback_ok", &hanging);
    let (fed_md5, fed_sha) = w.address("users,1", "ada@fed.test");
    let (plain_md5, plain_sha) = w.address("users,2", "bob@plain.test");
    let (none_md5, _) = w.address("users,3", "cy@plain.test");
    w.federated.has(&fed_sha, solid(RED));
    w.central.has(&fed_sha, solid(GREEN)); // never asked: the domain has its own provider
    w.central.has(&plain_sha, solid(BLUE));
    let server = w.server(|_| {});

    let (status, body) = avatar(&server, &fed_md5);
    assert_eq!(status, 200, "fetched through the SRV record");
    assert!(close(colour_of(&body), RED), "{:?}", colour_of(&body));
    assert_eq!(
        w.federated.asked(),
        [format!("/avatar/{fed_sha}?s=512&d=404")],
        "the SHA-256 is asked for, at the largest size, with d=404"
    );

    let (status, body) = avatar(&server, &plain_md5);
    assert_eq!(status, 200, "no SRV: the central provider");
    assert!(close(colour_of(&body), BLUE));

    assert_eq!(avatar(&server, &none_md5).0, 404);
    let asked = w.central.asked().len();
    assert_eq!(avatar(&server, &none_md5).0, 404);
    assert_eq!(w.central.asked().len(), asked, "a miss is remembered");

    // The copy is a normal avatar: stored once, served without asking again.
    for _ in 0..3 {
        assert_eq!(avatar(&server, &fed_md5).0, 200);
    }
    assert_eq!(w.federated.asked().len(), 1);
    let copies: i64 =
        w.c.query_one(
            "SELECT count(*) FROM avatar.avatar WHERE resource LIKE 'libravatar:%'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(copies, 2);

    // An avatar of the resource's own wins over the copy, as soon as the
    // route hears of it.
    set(&mut w.c, "users,1", &solid(GREEN)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !close(colour_of(&avatar(&server, &fed_md5).1), GREEN) {
        assert!(Instant::now() < deadline, "the copy is still served");
        std::thread::sleep(Duration::from_millis(20));
    }

    // Forgetting the address forgets the copy (GDPR: nothing left behind).
    w.c.execute("SELECT avatar.avatar_wipe('users,2')", &[])
        .unwrap();
    let left: i64 =
        w.c.query_one(
            "SELECT count(*) FROM avatar.avatar WHERE resource = 'libravatar:' || $1",
            &[&plain_sha],
        )
        .unwrap()
        .get(0);
    assert_eq!(left, 0);
}

#[test]
fn copies_are_refreshed_and_dropped_when_the_provider_drops_them() {
    let hanging = Provider::hanging();
    let mut w = world("fallback_refresh", &hanging);
    let (md5, sha) = w.address("users,1", "ada@fed.test");
    w.federated.has(&sha, solid(RED));
    let server = w.server(|f| {
        f.refresh_after = Duration::ZERO;
        f.negative_ttl = Duration::ZERO;
    });
    assert!(close(colour_of(&avatar(&server, &md5).1), RED));

    // Every later request finds the copy due, serves it, and refreshes it
    // behind the answer.
    w.federated.has(&sha, solid(BLUE));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !close(colour_of(&avatar(&server, &md5).1), BLUE) {
        assert!(Instant::now() < deadline, "the copy was never refreshed");
        std::thread::sleep(Duration::from_millis(50));
    }

    w.federated.forget(&sha);
    let deadline = Instant::now() + Duration::from_secs(10);
    while avatar(&server, &md5).0 != 404 {
        assert!(Instant::now() < deadline, "the copy was never dropped");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn limits_private_targets_timeouts_and_rate() {
    let hanging = Provider::hanging();
    let mut w = world("fallback_limits", &hanging);
    let (local_md5, local_sha) = w.address("users,1", "ada@local.test");
    w.federated.has(&local_sha, solid(RED));

    // A target on loopback that is not allowed is refused.
    let strict = w.server(|f| f.private_allowed.clear());
    assert_eq!(avatar(&strict, &local_md5).0, 404);
    assert!(
        w.federated.asked().is_empty(),
        "nothing connected to loopback"
    );
    drop(strict);

    // A provider that never answers costs one timeout, then is remembered.
    let (slow_md5, _) = w.address("users,2", "bob@slow.test");
    let server = w.server(|f| {
        f.timeout = Duration::from_secs(1);
        f.private_allowed.push(hanging.addr());
    });
    let started = Instant::now();
    assert_eq!(avatar(&server, &slow_md5).0, 404);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    let started = Instant::now();
    assert_eq!(avatar(&server, &slow_md5).0, 404);
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "negative cache"
    );
    assert_eq!(hanging.asked().len(), 1);
    drop(server);

    // Two lookups a minute: the third address waits its turn.
    let server = w.server(|f| f.lookups_per_minute = 2);
    let mut digests = vec![];
    for i in 0..3 {
        let (md5, sha) = w.address(&format!("users,{}", 10 + i), &format!("u{i}@plain.test"));
        w.central.has(&sha, solid(BLUE));
        digests.push(md5);
    }
    let statuses: Vec<u16> = digests.iter().map(|d| avatar(&server, d).0).collect();
    assert_eq!(statuses, [200, 200, 404]);
    assert_eq!(w.central.asked().len(), 2);
}

#[test]
fn it_is_off_unless_configured() {
    let hanging = Provider::hanging();
    let mut w = world("fallback_off", &hanging);
    let (md5, sha) = w.address("users,1", "ada@plain.test");
    w.central.has(&sha, solid(RED));
    let server = Server::start(
        vec![database(&w.db, w.db.conninfo())],
        Options {
            libravatar: Some(Libravatar {
                database: w.db.name.clone(),
                ..Libravatar::default()
            }),
            ..Options::default()
        },
    );
    assert_eq!(avatar(&server, &md5).0, 404);
    assert!(w.central.asked().is_empty());
    assert!(Libravatar::default().fallback.is_none());
}

/// The route with the fallback asking federated providers only, through
/// `dns`, with nothing on this machine allowed.
fn federation_only(db: &TestDb, dns: &Dns) -> Server {
    Server::start(
        vec![database(db, db.conninfo())],
        Options {
            libravatar: Some(Libravatar {
                database: db.name.clone(),
                fallback: Some(RemoteFallback {
                    central: None,
                    nameserver: Some(dns.addr),
                    timeout: Duration::from_secs(2),
                    ..RemoteFallback::default()
                }),
                ..Libravatar::default()
            }),
            ..Options::default()
        },
    )
}

/// Attacker 3 controls the DNS of an address's domain. Every address that
/// is not on the public internet is refused, whatever its spelling: IPv6
/// forms that embed an IPv4 address are judged by that address, and the
/// special-purpose ranges of IANA's registries are refused outright. The
/// test's provider listens on loopback and is never asked.
#[test]
fn special_addresses_are_refused_however_they_are_spelt() {
    logs();
    let victim = Provider::start();
    let cases = [
        ("mapped", "::ffff:127.0.0.1"),
        ("nat64", "64:ff9b::7f00:1"),
        ("nat64local", "64:ff9b:1::808:808"),
        ("sixtofour", "2002:7f00:1::1"),
        ("compat", "::7f00:1"),
        ("teredo", "2001:0:4136:e378:8000:63bf:3fff:fdd2"),
        ("sitelocal", "fec0::1"),
        ("discard", "100::1"),
        ("benchmarking", "2001:2::1"),
        ("orchid", "2001:10::1"),
        ("documentation", "3fff::1"),
        ("ietf4", "192.0.0.8"),
        ("relay4", "192.88.99.1"),
        ("reserved4", "240.0.0.1"),
    ];
    let mut records = vec![];
    for (label, ip) in cases {
        let host = format!("avatars.{label}.test.");
        records.push(srv(
            &format!("_avatars._tcp.{label}.test."),
            victim.port,
            &host,
        ));
        records.push(match ip.parse::<std::net::IpAddr>().unwrap() {
            std::net::IpAddr::V4(v4) => a(&host, v4),
            std::net::IpAddr::V6(_) => aaaa(&host, ip),
        });
    }
    let dns = Dns::start(records);
    let db = TestDb::new("fallback_special");
    let mut c = db.connect();
    let server = federation_only(&db, &dns);
    for (n, (label, ip)) in cases.iter().enumerate() {
        let email = format!("u{n}@{label}.test");
        c.execute(
            "SELECT avatar.avatar_set_email($1, $2)",
            &[&format!("users,{n}"), &email],
        )
        .unwrap();
        let md5: String = c.query_one("SELECT md5($1)", &[&email]).unwrap().get(0);
        assert_eq!(avatar(&server, &md5).0, 404, "{label}");
        let canonical: std::net::IpAddr = ip.parse().unwrap();
        assert!(
            logs().contains(&format!("refused {canonical}")),
            "{label}: {ip} was not refused as not public:\n{}",
            logs()
        );
    }
    assert!(
        victim.asked().is_empty(),
        "connected to {:?}",
        victim.asked()
    );
}

/// A target that a URL parser reads as an IPv4 address (`2130706433` is
/// 127.0.0.1, and so is `0x7f.1`) is not a host name, whatever DNS says.
#[test]
fn numeric_looking_targets_are_refused() {
    let victim = Provider::start();
    let public = Ipv4Addr::new(93, 184, 216, 34);
    let mut records = vec![];
    let targets = [
        "2130706433.",
        "0x7f.1.",
        "127.1.",
        "0177.0.0.1.",
        "example.0x7f.",
    ];
    for (n, target) in targets.iter().enumerate() {
        records.push(srv(
            &format!("_avatars._tcp.n{n}.test."),
            victim.port,
            target,
        ));
        records.push(a(target, public));
    }
    let dns = Dns::start(records);
    let db = TestDb::new("fallback_numeric");
    let mut c = db.connect();
    let server = federation_only(&db, &dns);
    for (n, target) in targets.iter().enumerate() {
        let email = format!("u{n}@n{n}.test");
        c.execute(
            "SELECT avatar.avatar_set_email($1, $2)",
            &[&format!("users,{n}"), &email],
        )
        .unwrap();
        let md5: String = c.query_one("SELECT md5($1)", &[&email]).unwrap().get(0);
        assert_eq!(avatar(&server, &md5).0, 404, "{target}");
    }
    assert!(
        victim.asked().is_empty(),
        "connected to {:?}",
        victim.asked()
    );
}

/// The central service gets the same address check and pinning as a
/// federated provider, on every redirect it sends.
#[test]
fn the_central_services_redirects_are_checked_hop_by_hop() {
    let hanging = Provider::hanging();
    let mut w = world("fallback_central", &hanging);
    let victim = Provider::start();
    let (md5, sha) = w.address("users,1", "ada@plain.test");
    victim.has(&sha, solid(RED));
    w.central
        .redirect_to(&format!("http://127.0.0.1:{}", victim.port));
    let server = w.server(|_| {});
    assert_eq!(avatar(&server, &md5).0, 404);
    assert_eq!(w.central.asked().len(), 1, "the central service was asked");
    assert!(
        victim.asked().is_empty(),
        "the redirect was followed: {:?}",
        victim.asked()
    );
    drop(server);

    // Nor may the central service itself be a private address that is not allowed.
    let strict = w.server(|f| f.private_allowed.retain(|a| a.port() != w.central.port));
    let (md5, _) = w.address("users,2", "bob@plain.test");
    assert_eq!(avatar(&strict, &md5).0, 404);
    assert_eq!(
        w.central.asked().len(),
        1,
        "the central service was not asked again"
    );
}

/// What a provider sends is an upload from a stranger, with limits of its
/// own: the fallback asks for 512 px, so a copy of many megapixels is
/// refused before it is decoded, and nothing is stored.
#[test]
fn fetched_copies_have_limits_of_their_own() {
    let hanging = Provider::hanging();
    let mut w = world("fallback_big", &hanging);
    let (md5, sha) = w.address("users,1", "ada@fed.test");
    let big = image::GrayImage::from_pixel(3000, 3000, image::Luma([90]));
    w.federated.has(
        &sha,
        avatar_pipeline::samples::encode(
            &image::DynamicImage::ImageLuma8(big),
            image::ImageFormat::Png,
        ),
    );
    let server = w.server(|_| {});
    assert_eq!(avatar(&server, &md5).0, 404);
    assert_eq!(w.federated.asked().len(), 1);
    let copies: i64 =
        w.c.query_one("SELECT count(*) FROM avatar.avatar", &[])
            .unwrap()
            .get(0);
    assert_eq!(copies, 0, "the 9 MP copy was stored");
}
