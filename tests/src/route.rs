//! The avatar route in-process, and a proxy to take its database away.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use diesel_avatar::AvatarUrls;
use pg_avatar_server::{Database, Limits, Listeners, Options};
use ureq::http::Response;
use ureq::Body;

use crate::TestDb;

pub const SECRET: &[u8] = b"http-test-secret-0123456789";

/// The route on 127.0.0.1, on a runtime of its own.
pub struct Server {
    pub base: String,
    listeners: Option<Listeners>,
    runtime: tokio::runtime::Runtime,
}

impl Drop for Server {
    /// Stops the route's listeners before its runtime, as an application
    /// would, so that no test leaves a connection behind.
    fn drop(&mut self) {
        if let Some(listeners) = self.listeners.take() {
            self.runtime.block_on(listeners.shutdown());
        }
    }
}

impl Server {
    pub fn start(databases: Vec<Database>, options: Options) -> Server {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let (app, listeners) = pg_avatar_server::router(databases, options).unwrap();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let limits = Limits {
            header_read_timeout: Duration::from_secs(1),
            ..Limits::default()
        };
        runtime.spawn(async move {
            pg_avatar_server::serve(listener, app, limits, std::future::pending())
                .await
                .unwrap()
        });
        Server {
            base,
            listeners: Some(listeners),
            runtime,
        }
    }

    pub fn for_db(db: &TestDb) -> (Server, AvatarUrls) {
        let server = Server::start(vec![database(db, db.conninfo())], Options::default());
        let urls = AvatarUrls::new(&server.base, &db.name, SECRET).unwrap();
        (server, urls)
    }
}

pub fn database(db: &TestDb, url: String) -> Database {
    Database {
        name: db.name.clone(),
        url,
        secret: SECRET.to_vec(),
    }
}

pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        // Redirects are answers under test, never to be followed off the machine.
        .max_redirects(0)
        .build()
        .into()
}

pub fn get(url: &str, headers: &[(&str, &str)]) -> (Response<Body>, Vec<u8>) {
    let mut request = agent().get(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let mut response = request.call().unwrap();
    let body = response.body_mut().read_to_vec().unwrap();
    (response, body)
}

pub fn header<'a>(response: &'a Response<Body>, name: &str) -> &'a str {
    response
        .headers()
        .get(name)
        .map(|v| v.to_str().unwrap())
        .unwrap_or("")
}

/// A TCP proxy in front of the cluster that the test can take down.
pub struct Proxy {
    pub port: u16,
    up: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<TcpStream>>>,
}

impl Proxy {
    pub fn start(upstream: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = Arc::new(AtomicBool::new(true));
        let open = Arc::new(Mutex::new(Vec::new()));
        let (up2, open2) = (up.clone(), open.clone());
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                if !up2.load(Ordering::SeqCst) {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                open2
                    .lock()
                    .unwrap()
                    .extend([client.try_clone().unwrap(), server.try_clone().unwrap()]);
                pipe(client.try_clone().unwrap(), server.try_clone().unwrap());
                pipe(server, client);
            }
        });
        Proxy { port, up, open }
    }

    pub fn down(&self) {
        self.up.store(false, Ordering::SeqCst);
        for stream in self.open.lock().unwrap().drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }

    pub fn up(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

fn pipe(mut from: TcpStream, mut to: TcpStream) {
    std::thread::spawn(move || {
        let mut buf = [0; 16384];
        while let Ok(n) = from.read(&mut buf) {
            if n == 0 || to.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = to.shutdown(Shutdown::Both);
    });
}

pub fn cluster_port() -> u16 {
    std::env::var("PG_AVATAR_TEST_CONNINFO")
        .unwrap()
        .split_whitespace()
        .find_map(|kv| kv.strip_prefix("port="))
        .expect("a port in PG_AVATAR_TEST_CONNINFO")
        .parse()
        .unwrap()
}
