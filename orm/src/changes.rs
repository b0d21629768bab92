//! Subscribing to avatar changes: pg_avatar sends a notification for
//! every new avatar, new image, disable, enable, wipe and delete, and for
//! every address digest that may now lead elsewhere (channels and payloads
//! in `avatar_contract::notify`).
//!
//! ```ignore
//! for change in diesel_avatar::changes::Changes::listen(&database_url)? {
//!     let change = change?;
//!     evict(change.id);               // change.sha1 is None once it is gone or disabled
//! }
//! ```
//!
//! [`Subscription`] is the one loop that reads them; [`Changes`] and the
//! route's memory cache are both built on it.

use std::time::{Duration, Instant};

use avatar_contract::notify::{self, ADDRESS_CHANNEL, AVATAR_CHANNEL};
use diesel::pg::PgConnection;
use diesel::{Connection, RunQueryDsl};
use uuid::Uuid;

/// One change of an avatar, as its notification describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub id: Uuid,
    pub resource: String,
    /// The new image's SHA-1, or `None` when the avatar is gone or disabled.
    pub sha1: Option<String>,
}

impl Change {
    /// Parses an [`AVATAR_CHANNEL`] payload; `None` if it is not pg_avatar's.
    pub fn parse(payload: &str) -> Option<Change> {
        use notify::avatar::{ID, RESOURCE, SHA1};
        let value: serde_json::Value = serde_json::from_str(payload).ok()?;
        Some(Change {
            id: value.get(ID)?.as_str()?.parse().ok()?,
            resource: value.get(RESOURCE)?.as_str()?.to_string(),
            sha1: match value.get(SHA1)? {
                serde_json::Value::Null => None,
                sha1 => Some(sha1.as_str()?.to_string()),
            },
        })
    }
}

/// The two digests (MD5, SHA-256; lower case) of an address whose avatar
/// may have changed, from an [`ADDRESS_CHANNEL`] payload.
pub fn parse_address(payload: &str) -> Option<[String; 2]> {
    use notify::address::{MD5, SHA256};
    let value: serde_json::Value = serde_json::from_str(payload).ok()?;
    let digest = |key: &str| Some(value.get(key)?.as_str()?.to_ascii_lowercase());
    Some([digest(MD5)?, digest(SHA256)?])
}

/// What a subscription hears.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    Avatar(Change),
    Address([String; 2]),
    /// On one of the channels, but not pg_avatar's: any role may NOTIFY,
    /// so these are the forgeries.
    Malformed,
}

/// Why a subscription could not be had.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unsubscribed {
    /// No connection, or `LISTEN` failed.
    Unreachable,
    /// A hot standby cannot `LISTEN`; its primary sends the notifications.
    Standby,
}

/// The connection was lost: notifications sent meanwhile are gone, so
/// whatever was kept in step with them must start again from scratch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lost;

/// A connection of its own that `LISTEN`s on both channels.
pub struct Subscription {
    conn: PgConnection,
    last_heard: Instant,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Subscription { .. }")
    }
}

/// How long a quiet subscription waits before checking that its
/// connection is still alive.
pub const PING: Duration = Duration::from_secs(2);

/// The libpq settings that bound how long a subscription's calls can
/// block on a network that went away.
const BOUNDED: &[(&str, &str)] = &[
    ("connect_timeout", "5"),
    ("keepalives", "1"),
    ("keepalives_idle", "10"),
    ("keepalives_interval", "3"),
    ("keepalives_count", "3"),
    ("tcp_user_timeout", "20000"),
];

/// `url` (a `postgres://` URL or `key=value` pairs) with each setting of
/// `defaults` it does not make itself. A string whose last value ends in
/// a backslash, which would escape what follows, is left as it is.
fn with_defaults(url: &str, defaults: &[(&str, &str)]) -> String {
    let is_url = url.starts_with("postgres://") || url.starts_with("postgresql://");
    if !is_url && url.ends_with('\\') {
        return url.to_string();
    }
    let mut out = url.to_string();
    for (key, value) in defaults {
        let set = if is_url {
            query(url)
                .is_some_and(|query| query.split('&').any(|p| p.split('=').next() == Some(key)))
        } else {
            url.split_whitespace()
                .any(|p| p.split('=').next().map(str::trim) == Some(key))
        };
        if set {
            continue;
        }
        let separator = match (is_url, query(&out).is_some()) {
            (true, true) => '&',
            (true, false) => '?',
            (false, _) => ' ',
        };
        out.push(separator);
        out.push_str(key);
        out.push('=');
        out.push_str(value);
    }
    out
}

impl Subscription {
    /// Connects and subscribes. What is committed from now on is heard.
    /// Unless `database_url` says otherwise, connecting gives up after 5 s
    /// and a dead peer is noticed within about 20 s (TCP keepalives and
    /// `tcp_user_timeout`), so that no call of this subscription blocks
    /// for ever on a network that went away.
    pub fn connect(database_url: &str) -> Result<Subscription, Unsubscribed> {
        let url = with_defaults(database_url, BOUNDED);
        let mut conn = PgConnection::establish(&url).map_err(|_| Unsubscribed::Unreachable)?;
        let standby = diesel::select(diesel::dsl::sql::<diesel::sql_types::Bool>(
            "pg_catalog.pg_is_in_recovery()",
        ))
        .get_result::<bool>(&mut conn)
        .map_err(|_| Unsubscribed::Unreachable)?;
        if standby {
            return Err(Unsubscribed::Standby);
        }
        for channel in [AVATAR_CHANNEL, ADDRESS_CHANNEL] {
            diesel::sql_query(format!("LISTEN {channel}"))
                .execute(&mut conn)
                .map_err(|_| Unsubscribed::Unreachable)?;
        }
        Ok(Subscription {
            conn,
            last_heard: Instant::now(),
        })
    }

    /// When the database was last heard from: a notification, or the
    /// answer to a ping.
    pub fn last_heard(&self) -> Instant {
        self.last_heard
    }

    /// What has arrived since the last call, without waiting. After a
    /// quiet [`PING`], it checks the connection with a round trip.
    pub fn poll(&mut self) -> Result<Vec<Notice>, Lost> {
        let mut notices = Vec::new();
        for notification in self.conn.notifications_iter() {
            let notification = notification.map_err(|_| Lost)?;
            let payload = &notification.payload;
            let notice = if notification.channel == ADDRESS_CHANNEL {
                parse_address(payload).map(Notice::Address)
            } else {
                Change::parse(payload).map(Notice::Avatar)
            };
            notices.push(notice.unwrap_or(Notice::Malformed));
        }
        if !notices.is_empty() {
            self.last_heard = Instant::now();
        } else if self.last_heard.elapsed() >= PING {
            diesel::sql_query("SELECT 1")
                .execute(&mut self.conn)
                .map_err(|_| Lost)?;
            self.last_heard = Instant::now();
        }
        Ok(notices)
    }
}

/// A blocking iterator over avatar changes, on the caller's thread.
#[derive(Debug)]
pub struct Changes {
    subscription: Subscription,
    heard: std::vec::IntoIter<Notice>,
}

/// How often [`Changes`] looks for notifications.
pub const POLL: Duration = Duration::from_millis(50);

impl Changes {
    /// Connects and subscribes. Changes committed from now on are seen.
    pub fn listen(database_url: &str) -> diesel::ConnectionResult<Changes> {
        let subscription = Subscription::connect(database_url).map_err(|why| {
            diesel::ConnectionError::BadConnection(match why {
                Unsubscribed::Standby => "a hot standby cannot LISTEN; use its primary".into(),
                Unsubscribed::Unreachable => "could not connect and LISTEN".into(),
            })
        })?;
        Ok(Changes {
            subscription,
            heard: Vec::new().into_iter(),
        })
    }
}

impl Iterator for Changes {
    type Item = Result<Change, Lost>;

    /// Waits for the next change. An error means the connection failed:
    /// changes may have been missed, so start again from a fresh state.
    fn next(&mut self) -> Option<Self::Item> {
        loop {
            for notice in self.heard.by_ref() {
                if let Notice::Avatar(change) = notice {
                    return Some(Ok(change));
                }
            }
            match self.subscription.poll() {
                Ok(notices) if notices.is_empty() => std::thread::sleep(POLL),
                Ok(notices) => self.heard = notices.into_iter(),
                Err(lost) => return Some(Err(lost)),
            }
        }
    }
}

impl std::fmt::Display for Lost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the subscription's connection was lost")
    }
}

impl std::error::Error for Lost {}

/// A URL's query: after the `?` that follows its user information (libpq
/// takes a raw `?` in a password as part of it).
fn query(url: &str) -> Option<&str> {
    let after_user = url.rfind('@').map_or(0, |at| at + 1);
    url[after_user..].split_once('?').map(|(_, query)| query)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_added_unless_the_url_sets_them() {
        let d = &[("connect_timeout", "5"), ("keepalives", "1")];
        assert_eq!(
            with_defaults("host=db user=u", d),
            "host=db user=u connect_timeout=5 keepalives=1"
        );
        assert_eq!(
            with_defaults("host=db connect_timeout=30", d),
            "host=db connect_timeout=30 keepalives=1"
        );
        assert_eq!(
            with_defaults("postgres://u@db/app", d),
            "postgres://u@db/app?connect_timeout=5&keepalives=1"
        );
        assert_eq!(
            with_defaults("postgresql://u@db/app?sslmode=require&keepalives=0", d),
            "postgresql://u@db/app?sslmode=require&keepalives=0&connect_timeout=5"
        );
        assert_eq!(
            with_defaults("postgres://u:pa?ss@db/app", d),
            "postgres://u:pa?ss@db/app?connect_timeout=5&keepalives=1"
        );
        assert_eq!(
            with_defaults("host=db password=abc\\", d),
            "host=db password=abc\\"
        );
    }

    #[test]
    fn payloads() {
        let id = Uuid::from_u128(7);
        assert_eq!(
            Change::parse(&format!(
                r#"{{"id":"{id}","resource":"users,1","sha1":"ab"}}"#
            )),
            Some(Change {
                id,
                resource: "users,1".into(),
                sha1: Some("ab".into())
            })
        );
        assert_eq!(
            Change::parse(&format!(
                r#"{{"id":"{id}","resource":"users,1","sha1":null}}"#
            ))
            .unwrap()
            .sha1,
            None
        );
        assert_eq!(Change::parse("not json"), None);
        assert_eq!(
            Change::parse(&format!(r#"{{"id":"{id}","resource":"x","sha1":7}}"#)),
            None,
            "a sha1 that is neither text nor null is not pg_avatar's"
        );
        assert_eq!(
            parse_address(r#"{"md5":"AB","sha256":"cd"}"#),
            Some(["ab".to_string(), "cd".to_string()])
        );
        assert_eq!(parse_address(r#"{"md5":"ab"}"#), None);
        assert_eq!(
            Change::parse(r#"{"id":42,"resource":"x","sha1":null}"#),
            None
        );
    }
}
