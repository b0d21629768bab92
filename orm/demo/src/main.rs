//! `pg-avatar-demo`: an example application on diesel-avatar and axum.
//! Users are rows of a `users` table with `#[derive(Avatar)]`; a user's
//! page takes an upload (file chooser or drag and drop) with a crop square
//! chosen on the picture, shows the avatar at several sizes with `srcset`,
//! its public URL and metadata, sets an address for the Libravatar route,
//! and shows the initial placeholder of a name, as the Libravatar route
//! answers it. The public URLs and the Libravatar route are
//! pg-avatar-server's router, in the same process. It needs pg_avatar
//! 0.3.0, the version this tree builds, and refuses to start on another.
//!
//! ```sh
//! pg-avatar-demo --database-url postgres://localhost/demo --secret "$(openssl rand -hex 16)"
//! ```

mod app;
mod db;
mod error;
mod pages;

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use diesel::pg::PgConnection;
use diesel::r2d2::{ConnectionManager, Pool};
use diesel::Connection;
use diesel_avatar::AvatarUrls;
use pg_avatar_server::{self as http, Database, Libravatar, Options};

#[derive(Parser, Debug)]
#[command(
    version,
    about = "An example application on diesel-avatar and axum: upload, crop and serve avatars"
)]
struct Cli {
    /// The database: a libpq connection string or URL. pg_avatar 0.3.0 must
    /// be installed in it; the application creates and attaches `users`.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    database_url: String,
    /// The address to listen on.
    #[arg(long, env = "PG_AVATAR_DEMO_LISTEN", default_value = "127.0.0.1:8090")]
    listen: SocketAddr,
    /// The secret that keys the database's segment of public URLs (at least 16 bytes).
    #[arg(long, env = "PG_AVATAR_SECRET", hide_env_values = true)]
    secret: String,
    /// Where browsers reach this server [default: http://LISTEN].
    #[arg(long, env = "PG_AVATAR_DEMO_PUBLIC_URL")]
    public_url: Option<String>,
}

type Fallible<T> = Result<T, Box<dyn std::error::Error>>;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pg-avatar-demo: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Fallible<()> {
    let base = cli
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{}", cli.listen));
    let base = base.trim_end_matches('/').to_string();

    let mut conn = PgConnection::establish(&cli.database_url)
        .map_err(|e| format!("cannot connect to the database: {e}"))?;
    let database = db::prepare(&mut conn)?;
    drop(conn);

    let secret = cli.secret.into_bytes();
    let urls = AvatarUrls::new(&base, &database, &secret)?;
    let pool = Pool::builder()
        .max_size(4)
        .min_idle(Some(0))
        .connection_timeout(Duration::from_secs(5))
        .build_unchecked(ConnectionManager::new(cli.database_url.as_str()));
    let app = Arc::new(app::App {
        pool,
        urls,
        base: base.clone(),
    });

    // The public URLs and the Libravatar route, served from the same
    // database by the same process, as `pg-avatar serve` would.
    let options = Options {
        libravatar: Some(Libravatar {
            database: database.clone(),
            ..Libravatar::default()
        }),
        ..Options::default()
    };
    let databases = vec![Database {
        name: database,
        url: cli.database_url,
        secret,
    }];

    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(async move {
            let (avatars, listeners) = http::router(databases, options)?;
            let router = app::router(app, avatars);
            let listener = tokio::net::TcpListener::bind(cli.listen).await?;
            tracing::info!(listen = %cli.listen, url = %base, "serving the demo");
            http::serve(listener, router, http::Limits::default(), shutdown_signal()).await?;
            listeners.shutdown().await;
            Ok(())
        })
}

/// Ctrl-C, or SIGTERM from a script: finish in-flight requests, then stop.
async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("a SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutting down");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags() {
        let cli = Cli::try_parse_from([
            "pg-avatar-demo",
            "--database-url",
            "host=/tmp dbname=demo",
            "--secret",
            "sixteen bytes at least",
            "--listen",
            "127.0.0.1:29600",
            "--public-url",
            "http://demo.example/",
        ])
        .unwrap();
        assert_eq!(cli.database_url, "host=/tmp dbname=demo");
        assert_eq!(cli.listen, "127.0.0.1:29600".parse().unwrap());
        assert_eq!(cli.public_url.as_deref(), Some("http://demo.example/"));
        assert!(Cli::try_parse_from(["pg-avatar-demo", "--listen", "nowhere"]).is_err());
    }
}
