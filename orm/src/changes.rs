//! Subscribing to avatar changes: pg_avatar sends `NOTIFY avatar_changed`
//! for every new avatar, new image, disable, enable, wipe and delete.
//!
//! ```ignore
//! for change in diesel_avatar::changes::Changes::listen(&database_url)? {
//!     let change = change?;
//!     evict(change.id);               // change.sha1 is None once it is gone or disabled
//! }
//! ```

use std::time::Duration;

use diesel::pg::PgConnection;
use diesel::{Connection, RunQueryDsl};
use uuid::Uuid;

/// The channel pg_avatar notifies on.
pub const CHANNEL: &str = "avatar_changed";

/// Where pg_avatar says that an address digest may now lead to another
/// avatar (or none): payload `{"md5": …, "sha256": …}`.
pub const ADDRESS_CHANNEL: &str = "avatar_address_changed";

/// The two digests of an address whose avatar may have changed.
pub fn parse_address(payload: &str) -> Option<[String; 2]> {
    let value: serde_json::Value = serde_json::from_str(payload).ok()?;
    let digest = |key: &str| Some(value.get(key)?.as_str()?.to_ascii_lowercase());
    Some([digest("md5")?, digest("sha256")?])
}

/// One change, as the notification's JSON payload describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub id: Uuid,
    pub resource: String,
    /// The new image's SHA-1, or `None` when the avatar is gone or disabled.
    pub sha1: Option<String>,
}

impl Change {
    /// Parses a notification payload; `None` if it is not pg_avatar's.
    pub fn parse(payload: &str) -> Option<Change> {
        let value: serde_json::Value = serde_json::from_str(payload).ok()?;
        Some(Change {
            id: value.get("id")?.as_str()?.parse().ok()?,
            resource: value.get("resource")?.as_str()?.to_string(),
            sha1: value.get("sha1")?.as_str().map(str::to_string),
        })
    }
}

/// A blocking iterator over changes, from a connection of its own.
pub struct Changes {
    conn: PgConnection,
    poll: Duration,
}

impl Changes {
    /// Connects and subscribes. Changes committed from now on are seen.
    pub fn listen(database_url: &str) -> diesel::ConnectionResult<Changes> {
        let mut conn = PgConnection::establish(database_url)?;
        diesel::sql_query(format!("LISTEN {CHANNEL}"))
            .execute(&mut conn)
            .map_err(|e| diesel::ConnectionError::BadConnection(e.to_string()))?;
        Ok(Changes {
            conn,
            poll: Duration::from_millis(50),
        })
    }
}

impl Iterator for Changes {
    type Item = diesel::QueryResult<Change>;

    /// Waits for the next change. An error means the connection failed:
    /// changes may have been missed, so start again from a fresh state.
    fn next(&mut self) -> Option<Self::Item> {
        loop {
            for notification in self.conn.notifications_iter() {
                match notification {
                    Ok(n) => {
                        if let Some(change) = Change::parse(&n.payload) {
                            return Some(Ok(change));
                        }
                    }
                    Err(e) => return Some(Err(e)),
                }
            }
            std::thread::sleep(self.poll);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
