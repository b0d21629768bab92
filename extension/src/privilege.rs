//! Acting as another role for a while, and coming back however it ends.
//!
//! pg_avatar's triggers and commit checks run in the caller's session but
//! act on tables only the extension's owner may touch, or read a table as
//! its owner. PostgreSQL's own maintenance commands do the same with
//! `SetUserIdAndSecContext`; this module is the one place that does it.

use pgrx::pg_sys;
use pgrx::prelude::*;

use crate::error::spi_failed;

/// Runs `f` as `role`, then returns to the current user however `f` ends.
/// `restricted`, for code that may run the role's own functions, also
/// forbids what PostgreSQL forbids its maintenance commands on a table
/// owner's behalf (SET ROLE, temporary objects). Any setting changed inside
/// is undone, so nothing `f` does outlives the call.
pub fn as_role<R>(role: pg_sys::Oid, restricted: bool, f: impl FnOnce() -> R) -> R {
    in_context(role, restricted, None, f)
}

/// Runs `f` as the extension's owner with `search_path` set to
/// `pg_catalog, pg_temp`, as its SECURITY DEFINER functions run: for work
/// done outside any of them (at commit), where the session's own
/// search_path could otherwise put a caller's operator in front of
/// PostgreSQL's.
pub fn as_extension_owner<R>(f: impl FnOnce() -> R) -> R {
    in_context(extension_owner(), false, Some(c"pg_catalog, pg_temp"), f)
}

fn in_context<R>(
    role: pg_sys::Oid,
    restricted: bool,
    search_path: Option<&std::ffi::CStr>,
    f: impl FnOnce() -> R,
) -> R {
    struct Restore(pg_sys::Oid, i32);
    impl Drop for Restore {
        fn drop(&mut self) {
            // SAFETY: only sets the backend's current user and context back.
            unsafe { pg_sys::SetUserIdAndSecContext(self.0, self.1) }
        }
    }
    let (mut user, mut context) = (pg_sys::Oid::INVALID, 0);
    // SAFETY: plain getters and setters of the backend's user id and of a
    // GUC nest level. An ERROR unwinds through `Restore`, and the
    // (sub)transaction's abort undoes the nest level's settings.
    let (restore, settings) = unsafe {
        pg_sys::GetUserIdAndSecContext(&mut user, &mut context);
        let mut switched = context | pg_sys::SECURITY_LOCAL_USERID_CHANGE as i32;
        if restricted {
            switched |= pg_sys::SECURITY_RESTRICTED_OPERATION as i32;
        }
        pg_sys::SetUserIdAndSecContext(role, switched);
        let restore = Restore(user, context);
        let settings = pg_sys::NewGUCNestLevel();
        if let Some(path) = search_path {
            pg_sys::set_config_option(
                c"search_path".as_ptr(),
                path.as_ptr(),
                pg_sys::GucContext::PGC_USERSET,
                pg_sys::GucSource::PGC_S_SESSION,
                pg_sys::GucAction::GUC_ACTION_SAVE,
                true,
                0,
                false,
            );
        }
        (restore, settings)
    };
    let result = f();
    // SAFETY: the nest level made above, and nothing nested in it is left.
    unsafe { pg_sys::AtEOXact_GUC(false, settings) };
    drop(restore);
    result
}

/// The role that owns the extension, and so its tables and functions.
pub fn extension_owner() -> pg_sys::Oid {
    Spi::connect(|client| {
        let table = client.select(
            // Run in whatever session calls it, with its search_path (at
            // commit, as the caller): so no operator is left to resolve.
            "SELECT e.extowner FROM pg_catalog.pg_extension e
              WHERE e.extname OPERATOR(pg_catalog.=) 'pg_avatar'::pg_catalog.name",
            Some(1),
            &[],
        )?;
        if table.is_empty() {
            return Ok(None);
        }
        table.first().get::<pg_sys::Oid>(1)
    })
    .unwrap_or_else(|e| spi_failed(e))
    .unwrap_or_else(|| error!("pg_avatar is not installed in this database"))
}
