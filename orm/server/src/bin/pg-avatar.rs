//! `pg-avatar`: serve public avatar URLs, print them, and bulk-import avatars.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use diesel::prelude::*;
use diesel_avatar::functions::avatar_set;
use diesel_avatar::{AvatarUrls, Error};
use pg_avatar_server::{self as http, Database, Options};
use serde::Deserialize;

#[derive(Parser)]
#[command(version, about = "Serve, link and import pg_avatar avatars")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve GET/HEAD /avatar/{db}/{id}?s=N&v=V for the configured databases.
    Serve(Serve),
    /// Print the public URL of a resource's avatar.
    Url(UrlCommand),
    /// Set avatars from the files in a folder: `users,42.jpg` becomes the avatar of `users,42`.
    Import(Import),
}

/// Which databases, from a config file and/or flags.
#[derive(Args)]
struct Databases {
    /// A TOML file: `listen`, `public_url`, `max_age_secs`, `pool_size`, `cache_mib`, `[libravatar]`, and [[databases]] with `name`, `url`, `secret`.
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// A database as NAME=CONNECTION_URL; repeatable. Uses --secret.
    #[arg(long = "database", value_name = "NAME=URL")]
    databases: Vec<String>,
    /// The secret that keys database names in URLs (at least 16 bytes).
    #[arg(long, env = "PG_AVATAR_SECRET", hide_env_values = true)]
    secret: Option<String>,
}

#[derive(Args)]
struct Serve {
    #[command(flatten)]
    databases: Databases,
    /// Address to listen on [default: 127.0.0.1:8080, or `listen` in the config].
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Cache-Control max-age for URLs without the current version [default: 7 days].
    #[arg(long, value_name = "SECONDS")]
    max_age: Option<u64>,
    /// Also serve this HTML file at `/` (the demo's gallery).
    #[arg(long, value_name = "FILE")]
    index: Option<PathBuf>,
}

#[derive(Args)]
struct UrlCommand {
    #[command(flatten)]
    databases: Databases,
    /// The database to look in, by name [default: the only one configured].
    #[arg(long = "in", value_name = "NAME")]
    in_database: Option<String>,
    /// Where the route is reachable from browsers, e.g. https://cdn.example.com
    /// [default: `public_url` in the config, or http://127.0.0.1:8080].
    #[arg(long)]
    public_url: Option<String>,
    /// The resource, e.g. users,42.
    resource: String,
    /// Size in pixels.
    #[arg(long, short, default_value_t = diesel_avatar::urls::DEFAULT_SIZE)]
    size: u32,
}

#[derive(Args)]
struct Import {
    /// The folder of images.
    dir: PathBuf,
    /// Connection string of the database to fill.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    database_url: String,
    /// Put before each file name to make the resource, e.g. `users,` for `42.jpg`.
    #[arg(long, default_value = "")]
    prefix: String,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Config {
    listen: Option<SocketAddr>,
    public_url: Option<String>,
    max_age_secs: Option<u64>,
    pool_size: Option<u32>,
    /// Memory for served images per database, in MiB (0 turns the cache off).
    cache_mib: Option<usize>,
    /// Address digests the Libravatar route remembers per database (default 200).
    metadata_entries: Option<usize>,
    /// Serve `/avatar/{digest}` by the Libravatar API from this database.
    libravatar: Option<LibravatarConfig>,
    #[serde(default)]
    databases: Vec<DatabaseConfig>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LibravatarConfig {
    database: String,
    max_size: Option<u32>,
    #[serde(default)]
    allowed_default_hosts: Vec<String>,
    /// Fetch avatars for set addresses from other providers. Off unless present.
    fallback: Option<FallbackConfig>,
}

/// `[libravatar.fallback]`; each field defaults as `RemoteFallback::default`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FallbackConfig {
    /// A base URL, or "" to ask federated providers only.
    central: Option<String>,
    federation: Option<bool>,
    timeout_secs: Option<u64>,
    lookups_per_minute: Option<u32>,
    negative_ttl_secs: Option<u64>,
    srv_ttl_secs: Option<u64>,
    refresh_after_secs: Option<u64>,
    nameserver: Option<SocketAddr>,
    /// Private addresses (with ports) a provider may still be reached at.
    #[serde(default)]
    private_allowed: Vec<SocketAddr>,
}

impl FallbackConfig {
    fn options(&self) -> Fallible<http::RemoteFallback> {
        let d = http::RemoteFallback::default();
        let secs = |v: Option<u64>, default: Duration| v.map_or(default, Duration::from_secs);
        Ok(http::RemoteFallback {
            central: match self.central.as_deref() {
                None => d.central,
                Some("") => None,
                Some(url) => Some(url::Url::parse(url).map_err(|e| format!("central: {e}"))?),
            },
            federation: self.federation.unwrap_or(d.federation),
            timeout: secs(self.timeout_secs, d.timeout),
            lookups_per_minute: self.lookups_per_minute.unwrap_or(d.lookups_per_minute),
            negative_ttl: secs(self.negative_ttl_secs, d.negative_ttl),
            srv_ttl: secs(self.srv_ttl_secs, d.srv_ttl),
            refresh_after: secs(self.refresh_after_secs, d.refresh_after),
            nameserver: self.nameserver.or(d.nameserver),
            private_allowed: self.private_allowed.clone(),
        })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DatabaseConfig {
    name: String,
    url: String,
    secret: Option<String>,
}

type Fallible<T> = Result<T, Box<dyn std::error::Error>>;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let result = match Cli::parse().command {
        Command::Serve(serve) => serve_command(serve),
        Command::Url(url) => url_command(url),
        Command::Import(import) => import_command(import),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("pg-avatar: {e}");
            ExitCode::FAILURE
        }
    }
}

impl Databases {
    fn load(&self) -> Fallible<(Config, Vec<Database>)> {
        let config: Config = match &self.config {
            Some(path) => toml::from_str(
                &std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?,
            )
            .map_err(|e| format!("{}: {e}", path.display()))?,
            None => Config::default(),
        };
        let mut databases = Vec::new();
        for db in &config.databases {
            let secret = db
                .secret
                .clone()
                .or_else(|| self.secret.clone())
                .ok_or("each database needs a secret")?;
            databases.push(Database {
                name: db.name.clone(),
                url: db.url.clone(),
                secret: secret.into_bytes(),
            });
        }
        for spec in &self.databases {
            let (name, url) = spec
                .split_once('=')
                .ok_or("--database takes NAME=CONNECTION_URL")?;
            let secret = self
                .secret
                .clone()
                .ok_or("--database needs --secret or PG_AVATAR_SECRET")?;
            databases.push(Database {
                name: name.into(),
                url: url.into(),
                secret: secret.into_bytes(),
            });
        }
        if databases.is_empty() {
            return Err("no database configured: use --config or --database".into());
        }
        Ok((config, databases))
    }
}

fn serve_command(serve: Serve) -> Fallible<ExitCode> {
    let (config, databases) = serve.databases.load()?;
    let listen = serve
        .listen
        .or(config.listen)
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080)));
    let mut options = Options::default();
    if let Some(secs) = serve.max_age.or(config.max_age_secs) {
        options.max_age = Duration::from_secs(secs);
    }
    if let Some(size) = config.pool_size {
        options.pool_size = size;
    }
    if let Some(mib) = config.cache_mib {
        options.cache_bytes = mib << 20;
    }
    if let Some(entries) = config.metadata_entries {
        options.metadata_entries = entries;
    }
    if let Some(libravatar) = &config.libravatar {
        let defaults = http::Libravatar::default();
        options.libravatar = Some(http::Libravatar {
            database: libravatar.database.clone(),
            max_size: libravatar.max_size.unwrap_or(defaults.max_size),
            allowed_default_hosts: libravatar.allowed_default_hosts.clone(),
            fallback: libravatar
                .fallback
                .as_ref()
                .map(FallbackConfig::options)
                .transpose()?,
        });
    }
    let count = databases.len();
    let index = match serve.index {
        Some(path) => {
            Some(std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?)
        }
        None => None,
    };
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(async move {
            let (mut app, listeners) = http::router(databases, options)?;
            // What is not an avatar gets the route's own 404, headers and all.
            app = app.fallback(|| async { http::HttpError::NotFound });
            if let Some(page) = index {
                app = app.route(
                    "/",
                    axum::routing::get(move || async move { axum::response::Html(page) }),
                );
            }
            let listener = tokio::net::TcpListener::bind(listen).await?;
            tracing::info!(%listen, databases = count, "serving avatars");
            http::serve(listener, app, http::Limits::default(), shutdown_signal()).await?;
            listeners.shutdown().await;
            Ok(ExitCode::SUCCESS)
        })
}

/// Ctrl-C, or SIGTERM from a service manager: finish in-flight requests, then stop.
async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("a SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutting down");
}

fn url_command(cmd: UrlCommand) -> Fallible<ExitCode> {
    let (config, databases) = cmd.databases.load()?;
    let db = match &cmd.in_database {
        Some(name) => databases
            .iter()
            .find(|d| &d.name == name)
            .ok_or_else(|| format!("no database named {name}"))?,
        None if databases.len() == 1 => &databases[0],
        None => return Err("several databases are configured: choose one with --in NAME".into()),
    };
    let public_url = cmd
        .public_url
        .or(config.public_url)
        .unwrap_or_else(|| "http://127.0.0.1:8080".into());
    let urls = AvatarUrls::new(&public_url, &db.name, &db.secret)?;
    let mut conn =
        PgConnection::establish(&db.url).map_err(|_| "cannot connect to the database")?;
    match diesel_avatar::resource_url(&mut conn, &cmd.resource, &urls, cmd.size)? {
        Some(url) => {
            println!("{url}");
            Ok(ExitCode::SUCCESS)
        }
        None => {
            eprintln!("pg-avatar: {} has no avatar", cmd.resource);
            Ok(ExitCode::from(3))
        }
    }
}

fn import_command(cmd: Import) -> Fallible<ExitCode> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(&cmd.dir)
        .map_err(|e| format!("{}: {e}", cmd.dir.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    let mut conn =
        PgConnection::establish(&cmd.database_url).map_err(|_| "cannot connect to the database")?;
    let progress = indicatif::ProgressBar::new(files.len() as u64).with_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} {wide_msg}")
            .expect("valid template"),
    );
    let mut failed = BTreeMap::new();
    for path in &files {
        let resource = format!("{}{}", cmd.prefix, stem(path));
        progress.set_message(resource.clone());
        let outcome = std::fs::read(path)
            .map_err(|e| e.to_string())
            .and_then(|bytes| {
                diesel::select(avatar_set(resource.as_str(), bytes.as_slice()))
                    .get_result::<uuid::Uuid>(&mut conn)
                    .map_err(|e| Error::from(e).to_string())
            });
        if let Err(why) = outcome {
            progress.println(format!("{}: {why}", path.display()));
            failed.insert(path.clone(), why);
        }
        progress.inc(1);
    }
    progress.finish_and_clear();
    println!(
        "imported {} of {} files",
        files.len() - failed.len(),
        files.len()
    );
    Ok(if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

fn stem(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fallback_section_sets_every_option_and_defaults_the_rest() {
        let config: Config = toml::from_str(
            r#"
            [libravatar]
            database = "production"
            [libravatar.fallback]
            central = ""
            timeout_secs = 2
            lookups_per_minute = 5
            nameserver = "127.0.0.1:5353"
            "#,
        )
        .unwrap();
        let fallback = config
            .libravatar
            .unwrap()
            .fallback
            .unwrap()
            .options()
            .unwrap();
        let defaults = http::RemoteFallback::default();
        assert_eq!(fallback.central, None, "\"\" asks federated providers only");
        assert_eq!(fallback.timeout, Duration::from_secs(2));
        assert_eq!(fallback.lookups_per_minute, 5);
        assert_eq!(fallback.nameserver, Some("127.0.0.1:5353".parse().unwrap()));
        assert_eq!(fallback.refresh_after, defaults.refresh_after);
        assert_eq!(fallback.srv_ttl, Duration::from_secs(24 * 3600));
        assert!(fallback.federation && fallback.private_allowed.is_empty());
    }

    #[test]
    fn the_fallback_is_off_without_its_section_and_typos_are_errors() {
        let config: Config = toml::from_str("[libravatar]\ndatabase = \"p\"").unwrap();
        assert!(config.libravatar.unwrap().fallback.is_none());
        for typo in [
            "[libravatar]\ndatabase = \"p\"\n[libravatar.fallback]\ntimeout = 5",
            "[libravatar]\ndatabase = \"p\"\n[libravatar.fallbak]",
        ] {
            assert!(toml::from_str::<Config>(typo).is_err(), "{typo}");
        }
        let bad: Config = toml::from_str(
            "[libravatar]\ndatabase = \"p\"\n[libravatar.fallback]\ncentral = \"not a url\"",
        )
        .unwrap();
        assert!(bad.libravatar.unwrap().fallback.unwrap().options().is_err());
    }
}
