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

use std::cell::RefCell;

use avatar_contract::resource::FALLBACK_PREFIX;
use pgrx::prelude::*;
use pgrx::{register_xact_callback, PgXactCallbackEvent};

use crate::error::spi_failed;
use crate::privilege::as_extension_owner;

/// What this backend's current transaction stored, by its top-level xid.
#[derive(Default)]
struct Stored {
    xid: pg_sys::TransactionId,
    /// Avatars this transaction memoized a rendition of.
    renditions: Vec<pgrx::Uuid>,
    /// Addresses (SHA-256) this transaction stored a fallback copy for.
    copies: Vec<String>,
}

thread_local! {
    static STORED: RefCell<Stored> = RefCell::default();
}

/// A rendition of avatar `id` was inserted by this transaction.
pub fn rendition_stored(id: pgrx::Uuid) {
    note(|stored| {
        if !stored.renditions.contains(&id) {
            stored.renditions.push(id);
        }
    });
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
    // SAFETY: reads the backend's transaction state.
    let xid = unsafe { pg_sys::GetTopTransactionIdIfAny() };
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
            register_xact_callback(PgXactCallbackEvent::PrePrepare, check);
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

fn check() {
    let stored = STORED.with(RefCell::take);
    // SAFETY: reads the backend's transaction state.
    if stored.xid != unsafe { pg_sys::GetTopTransactionIdIfAny() } {
        return;
    }
    let resources: Vec<String> = stored
        .copies
        .iter()
        .map(|sha256| format!("{FALLBACK_PREFIX}{sha256}"))
        .collect();
    // The portal that ran the transaction's last statement is gone, and
    // SPI needs a snapshot to start from; each statement takes its own.
    // SAFETY: pushed and popped here; an ERROR's abort pops it too.
    unsafe { pg_sys::PushActiveSnapshot(pg_sys::GetTransactionSnapshot()) };
    as_extension_owner(|| {
        Spi::connect_mut(|client| {
            if !stored.renditions.is_empty() {
                client.update(STALE_RENDITIONS, None, &[stored.renditions.into()])?;
            }
            if !stored.copies.is_empty() {
                client.update(
                    ORPHAN_COPIES,
                    None,
                    &[stored.copies.into(), resources.into()],
                )?;
            }
            Ok(())
        })
    })
    .unwrap_or_else(|e| spi_failed(e));
    unsafe { pg_sys::PopActiveSnapshot() };
}
