//! What a transaction stored without taking a lock, checked again as it
//! commits.
//!
//! A reader memoizes a rendition, and the Libravatar fallback stores a
//! copy, without locking what they were made from: a reader must never make
//! a writer wait. So a writer may replace or delete the master, or wipe the
//! address, between the store and its commit, and its own clean-up, which
//! cannot see the reader's uncommitted row, leaves it behind: a rendition of
//! a deleted user's image, or a copy of a wiped address's avatar that
//! nothing would ever remove.
//!
//! At commit, then, each such row is kept only if what it was made from is
//! still there, unchanged, and not being changed; otherwise it goes. The
//! check locks what it reads (`FOR SHARE`) until the commit it runs in, so
//! a writer that comes later waits those few moments and its clean-up then
//! sees the committed row; and it takes `SKIP LOCKED` for a writer already
//! at work, whose change it treats as done. It never waits for anyone.
//!
//! A transaction that is prepared (two-phase commit) is committed later,
//! by any session, when no check can run, and a lock it took would stay
//! until then: instead, what it stored is deleted as it is prepared. Both
//! are caches, filled again on the next read.

use std::cell::RefCell;

use avatar_contract::resource::FALLBACK_PREFIX;
use pgrx::prelude::*;
use pgrx::spi::{SpiClient, SpiResult};
use pgrx::{register_xact_callback, PgXactCallbackEvent};

use crate::error::spi_failed;
use crate::privilege::as_extension_owner;

/// What this backend's current transaction stored, by its top-level xid.
#[derive(Default)]
struct Stored {
    xid: pg_sys::TransactionId,
    /// The renditions this transaction inserted: avatar, size, format and
    /// the digest of the master they were made from.
    renditions: Vec<(pgrx::Uuid, i32, &'static str, String)>,
    /// Addresses (SHA-256) this transaction stored a fallback copy for.
    copies: Vec<String>,
    /// The check has run: nothing stored from now on would be checked.
    sealed: bool,
}

thread_local! {
    static STORED: RefCell<Stored> = RefCell::default();
}

fn current_xid() -> pg_sys::TransactionId {
    // SAFETY: reads the backend's transaction state.
    unsafe { pg_sys::GetTopTransactionIdIfAny() }
}

/// Whether this transaction may still store what the check must see: not
/// once the check has run, as it commits.
pub fn may_store() -> bool {
    let xid = current_xid();
    STORED.with(|stored| {
        let stored = stored.borrow();
        !(stored.sealed && stored.xid == xid)
    })
}

/// A rendition was inserted by this transaction.
pub fn rendition_stored(id: pgrx::Uuid, side: i32, format: &'static str, sha1: &str) {
    note(|stored| stored.renditions.push((id, side, format, sha1.to_string())));
}

/// A fallback copy for the address `sha256` was stored by this transaction.
pub fn copy_stored(sha256: &str) {
    note(|stored| {
        if !stored.copies.iter().any(|s| s == sha256) {
            stored.copies.push(sha256.to_string());
        }
    });
}

fn note(add: impl FnOnce(&mut Stored)) {
    let xid = current_xid();
    if xid == pg_sys::InvalidTransactionId {
        // Nothing was written, so there is nothing to check.
        return;
    }
    STORED.with(|stored| {
        let mut stored = stored.borrow_mut();
        if stored.xid != xid {
            // The first store of this transaction: whatever an aborted one
            // left is dropped, and the check is registered for this one.
            *stored = Stored {
                xid,
                ..Stored::default()
            };
            register_xact_callback(PgXactCallbackEvent::PreCommit, check);
            register_xact_callback(PgXactCallbackEvent::PrePrepare, discard);
        }
        add(&mut stored);
    });
}

/// Renditions of the avatars in `$1` whose master is gone, is another
/// image, or is being changed by a transaction still at work.
const STALE_RENDITIONS: &str = "
    WITH current AS (
        SELECT a.id, a.sha1 FROM avatar.avatar a
         WHERE a.id = ANY ($1)
           FOR SHARE SKIP LOCKED),
    stale AS (
        SELECT c.ctid FROM avatar.avatar_cache c
         WHERE c.avatar_id = ANY ($1)
           AND NOT EXISTS (SELECT FROM current k WHERE k.id = c.avatar_id AND k.sha1 = c.sha1)
           FOR UPDATE OF c SKIP LOCKED)
    DELETE FROM avatar.avatar_cache c USING stale WHERE c.ctid = stale.ctid";

/// Copies (resources `$2`) for the addresses `$1` that are no longer set,
/// or are being unset by a transaction still at work.
const ORPHAN_COPIES: &str = "
    WITH kept AS (
        SELECT e.sha256 FROM avatar.avatar_email e
         WHERE e.sha256 = ANY ($1)
           FOR KEY SHARE SKIP LOCKED),
    orphans AS (
        SELECT a.ctid FROM avatar.avatar a
          JOIN unnest($1::text[], $2::text[]) AS k (sha256, resource) ON a.resource = k.resource
         WHERE NOT EXISTS (SELECT FROM kept WHERE kept.sha256 = k.sha256)
           FOR UPDATE OF a SKIP LOCKED)
    DELETE FROM avatar.avatar a USING orphans WHERE a.ctid = orphans.ctid";

/// The renditions `$1` .. `$4` (avatar, size, format, digest) that the
/// transaction inserted, and the copies of resources `$5` it stored.
const STORED_ROWS: &str = "
    WITH renditions AS (
        DELETE FROM avatar.avatar_cache c
         USING unnest($1::uuid[], $2::integer[], $3::text[], $4::text[]) AS k (id, size, format, sha1)
         WHERE c.avatar_id = k.id AND c.size = k.size AND c.format = k.format AND c.sha1 = k.sha1)
    DELETE FROM avatar.avatar a WHERE a.resource = ANY ($5)";

/// What the current transaction stored, once: the store is sealed then.
fn take() -> Option<(Stored, Vec<String>)> {
    let xid = current_xid();
    let stored = STORED.with(|stored| {
        stored.replace(Stored {
            xid,
            sealed: true,
            ..Stored::default()
        })
    });
    if stored.xid != xid || stored.sealed {
        return None;
    }
    let resources = stored
        .copies
        .iter()
        .map(|sha256| format!("{FALLBACK_PREFIX}{sha256}"))
        .collect();
    Some((stored, resources))
}

/// Runs `f` on SPI as the extension's owner, with a snapshot: the portal
/// that ran the transaction's last statement is gone, and SPI needs one to
/// start from (each statement then takes its own).
fn with_spi(f: impl FnOnce(&mut SpiClient<'_>) -> SpiResult<()>) {
    // SAFETY: pushed and popped here; an ERROR's abort pops it too.
    unsafe { pg_sys::PushActiveSnapshot(pg_sys::GetTransactionSnapshot()) };
    as_extension_owner(|| Spi::connect_mut(f)).unwrap_or_else(|e| spi_failed(e));
    unsafe { pg_sys::PopActiveSnapshot() };
}

fn check() {
    let Some((stored, resources)) = take() else {
        return;
    };
    let mut avatars: Vec<pgrx::Uuid> = stored.renditions.iter().map(|r| r.0).collect();
    avatars.sort_unstable_by_key(|id| *id.as_bytes());
    avatars.dedup();
    with_spi(|client| {
        if !avatars.is_empty() {
            client.update(STALE_RENDITIONS, None, &[avatars.into()])?;
        }
        if !stored.copies.is_empty() {
            client.update(
                ORPHAN_COPIES,
                None,
                &[stored.copies.into(), resources.into()],
            )?;
        }
        Ok(())
    });
}

fn discard() {
    let Some((stored, resources)) = take() else {
        return;
    };
    let mut keys = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (id, side, format, sha1) in stored.renditions {
        keys.0.push(id);
        keys.1.push(side);
        keys.2.push(format.to_string());
        keys.3.push(sha1);
    }
    with_spi(|client| {
        client
            .update(
                STORED_ROWS,
                None,
                &[
                    keys.0.into(),
                    keys.1.into(),
                    keys.2.into(),
                    keys.3.into(),
                    resources.into(),
                ],
            )
            .map(drop)
    });
}
