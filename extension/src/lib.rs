//! pg_avatar: avatars for any row, stored, normalised, resized and memoized
//! inside PostgreSQL.
//!
//! The image work is [`avatar_pipeline`]; this crate only binds it to SQL
//! (`api`), to the tables (`store`), to settings (`guc`) and to SQLSTATEs
//! (`error`), and makes the rows of attached tables own their avatars
//! (`attach`). The tables and the plain-SQL functions are in `sql/`.

use pgrx::prelude::*;

mod api;
mod attach;
mod commit_check;
mod error;
mod guc;
mod privilege;
mod store;

pgrx::pg_module_magic!();

extension_sql_file!("../../sql/schema.sql", name = "schema", bootstrap);
extension_sql_file!("../../sql/functions.sql", name = "functions", finalize);

#[pg_guard]
pub extern "C-unwind" fn _PG_init() {
    guc::register();
    unsafe {
        pg_sys::CacheRegisterRelcacheCallback(
            Some(store::relation_changed),
            pg_sys::Datum::from(0),
        );
    }
}

#[cfg(any(test, feature = "pg_test"))]
mod sql_tests;

/// Required by `cargo pgrx test`.
#[cfg(test)]
pub mod pg_test {
    pub fn setup(_options: Vec<&str>) {}

    pub fn postgresql_conf_options() -> Vec<&'static str> {
        vec![]
    }
}
