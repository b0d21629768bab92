//! Every statement pg_avatar runs against its tables.
//!
//! The callers are SECURITY DEFINER with `search_path = pg_catalog, pg_temp`,
//! so every name here is schema-qualified.

use std::cell::{Cell, OnceCell, RefCell};

use avatar_pipeline::{Avatar, Format, Lookup, Master};
use pgrx::pg_sys::{PgBuiltInOids, PgOid};
use pgrx::prelude::*;
use pgrx::spi::{OwnedPreparedStatement, SpiClient, SpiResult};
use rand::rngs::OsRng;
use rand::TryRngCore;

use crate::commit_check;
use crate::error::{fail, report, spi_failed};
use avatar_contract::Class;

/// The schema a database has, by its installed extension version: a newly
/// installed library serves an older schema until `ALTER EXTENSION UPDATE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Schema {
    /// No `disabled_at`, JPEG renditions only.
    V0_1,
    V0_2,
    V0_3,
}

impl Schema {
    pub(crate) const NEWEST: Schema = Schema::V0_3;

    pub(crate) fn of_version(version: &str) -> Option<Schema> {
        Some(match version {
            "0.1.0" => Schema::V0_1,
            "0.2.0" => Schema::V0_2,
            "0.3.0" => Schema::V0_3,
            _ => return None,
        })
    }
}

/// A statement `avatar_get` runs on every call, planned once per backend.
struct Statement {
    sql: &'static str,
    /// The same statement for older schemas: each for the schemas up to
    /// its own, oldest first.
    older: &'static [(Schema, &'static str)],
    args: &'static [PgOid],
    mutating: bool,
}

impl Statement {
    fn sql_for(&self, schema: Schema) -> &'static str {
        self.older
            .iter()
            .find(|(upto, _)| schema <= *upto)
            .map_or(self.sql, |(_, sql)| sql)
    }
}

const UUID: PgOid = PgOid::BuiltIn(PgBuiltInOids::UUIDOID);
const INT4: PgOid = PgOid::BuiltIn(PgBuiltInOids::INT4OID);
const TEXT: PgOid = PgOid::BuiltIn(PgBuiltInOids::TEXTOID);
const BYTEA: PgOid = PgOid::BuiltIn(PgBuiltInOids::BYTEAOID);

/// Hit and miss share one round trip. A cache row counts only if it was
/// made from the master that is current now (same SHA-1), so a rendition of
/// an older image is never served, whatever the writers' isolation level.
/// The master's bytes are not selected: a hit never loads them.
const LOOKUP: Statement = Statement {
    sql: "
    SELECT a.sha1, a.width, c.image
      FROM avatar.avatar a
      LEFT JOIN avatar.avatar_cache c
             ON c.avatar_id = a.id AND c.size = $2 AND c.format = $3 AND c.sha1 = a.sha1
     WHERE a.id = $1 AND avatar.avatar_is_served(a)",
    older: &[
        // 0.1.0 cached JPEG only, and could not disable.
        (
            Schema::V0_1,
            "
    SELECT a.sha1, a.width, c.image
      FROM avatar.avatar a
      LEFT JOIN avatar.avatar_cache c
             ON c.avatar_id = a.id AND c.size = $2 AND $3 = 'jpeg' AND c.sha1 = a.sha1
     WHERE a.id = $1",
        ),
        // 0.2.0 had no avatar_is_served.
        (
            Schema::V0_2,
            "
    SELECT a.sha1, a.width, c.image
      FROM avatar.avatar a
      LEFT JOIN avatar.avatar_cache c
             ON c.avatar_id = a.id AND c.size = $2 AND c.format = $3 AND c.sha1 = a.sha1
     WHERE a.id = $1 AND a.disabled_at IS NULL",
        ),
    ],
    args: &[UUID, INT4, TEXT],
    mutating: false,
};

/// The master with the digest and side that belong to these very bytes.
const MASTER: Statement = Statement {
    sql: "SELECT a.image, a.sha1, a.width FROM avatar.avatar a
           WHERE a.id = $1 AND avatar.avatar_is_served(a)",
    older: &[
        (
            Schema::V0_1,
            "SELECT image, sha1, width FROM avatar.avatar WHERE id = $1",
        ),
        (
            Schema::V0_2,
            "SELECT image, sha1, width FROM avatar.avatar WHERE id = $1 AND disabled_at IS NULL",
        ),
    ],
    args: &[UUID],
    mutating: false,
};

/// Runs only in READ COMMITTED, where every statement takes a fresh
/// snapshot, and stores the rendition only if the master it was made from
/// (`$4`) is still the current one. It takes no lock a writer would wait
/// for; what changes before this transaction commits is caught by the
/// check at commit (`commit_check`).
///
/// Nor does it wait for another reader: two that insert the same key wait
/// for each other through the unique index, so only the one that gets the
/// gate (`$6`, `$7`: a transaction-level advisory lock on one of
/// [`GATES`], by key) inserts, and the other returns its rendition
/// unstored. Conflicts with committed rows are identical renditions (the
/// digest is in the key), so concurrent misses of one size end in one row.
const MEMOIZE: Statement = Statement {
    sql: "
    WITH gate AS (SELECT pg_catalog.pg_try_advisory_xact_lock($6, $7) AS open)
    INSERT INTO avatar.avatar_cache (avatar_id, size, format, sha1, image)
    SELECT a.id, $2, $3, a.sha1, $5
      FROM gate, avatar.avatar a
     WHERE gate.open AND a.id = $1 AND a.sha1 = $4
    ON CONFLICT DO NOTHING",
    older: &[(
        Schema::V0_1,
        "
    WITH gate AS (SELECT pg_catalog.pg_try_advisory_xact_lock($6, $7) AS open)
    INSERT INTO avatar.avatar_cache (avatar_id, size, sha1, image)
    SELECT a.id, $2, a.sha1, $5
      FROM gate, avatar.avatar a
     WHERE gate.open AND a.id = $1 AND a.sha1 = $4 AND $3 = 'jpeg'
    ON CONFLICT DO NOTHING",
    )],
    args: &[UUID, INT4, TEXT, TEXT, BYTEA, INT4, INT4],
    mutating: true,
};

/// The memoizing gates' advisory lock class ("avtr"), the first key of
/// PostgreSQL's two-key form. An application's lock of the same pair only
/// makes a reader skip storing one rendition.
const GATE_CLASS: i32 = 0x6176_7472;

/// How many gates renditions are spread over: a transaction holds at most
/// this many advisory locks, however many renditions it stores, so a bulk
/// read cannot fill the shared lock table (`max_locks_per_transaction` is
/// 64 by default). Two readers whose keys share a gate within the moment
/// between one's insert and its commit store one rendition between them.
const GATES: u32 = 64;

/// The gate of a rendition key: FNV-1a, the same in every backend and
/// every build.
fn gate(id: pgrx::Uuid, side: u32, format: Format) -> i32 {
    let mut hash: u32 = 0x811c_9dc5;
    let side = side.to_le_bytes();
    let bytes = id
        .as_bytes()
        .iter()
        .chain(&side)
        .chain(format.name().as_bytes());
    for byte in bytes {
        hash = (hash ^ u32::from(*byte)).wrapping_mul(0x0100_0193);
    }
    (hash % GATES) as i32
}

/// Plans kept for the life of the backend, so a warm `avatar_get` costs an
/// executor run and no parsing or planning. Which text each is planned
/// from depends on the installed schema, so they are dropped whenever
/// `avatar.avatar` changes (an extension update, a drop and re-create).
#[derive(Default)]
struct Plans {
    lookup: OnceCell<OwnedPreparedStatement>,
    master: OnceCell<OwnedPreparedStatement>,
    memoize: OnceCell<OwnedPreparedStatement>,
}

thread_local! {
    static PLANS: RefCell<Plans> = RefCell::default();
    /// Set by the relcache callback; the plans are rebuilt on next use.
    static STALE: Cell<bool> = const { Cell::new(false) };
    /// `avatar.avatar`'s oid when the plans were made.
    static TABLE: Cell<pg_sys::Oid> = const { Cell::new(pg_sys::Oid::INVALID) };
}

/// Registered in `_PG_init`. It runs inside invalidation processing, where
/// no catalog access is allowed, so it only marks the plans stale.
pub unsafe extern "C-unwind" fn relation_changed(_arg: pg_sys::Datum, relid: pg_sys::Oid) {
    if relid == pg_sys::Oid::INVALID || relid == TABLE.with(Cell::get) {
        STALE.with(|stale| stale.set(true));
    }
}

fn with_plans<R>(f: impl FnOnce(&Plans) -> R) -> R {
    PLANS.with(|plans| {
        // Not while a plan is in use further up the stack (a nested call);
        // the outermost call rebuilds them next time.
        if STALE.with(Cell::get) {
            if let Ok(mut stale) = plans.try_borrow_mut() {
                *stale = Plans::default();
                STALE.with(|flag| flag.set(false));
            }
        }
        f(&plans.borrow())
    })
}

fn kept<'a>(
    client: &SpiClient<'_>,
    cell: &'a OnceCell<OwnedPreparedStatement>,
    statement: &Statement,
) -> SpiResult<&'a OwnedPreparedStatement> {
    if let Some(plan) = cell.get() {
        return Ok(plan);
    }
    refuse_while_updating();
    let (table, schema) = schema(client)?;
    TABLE.with(|t| t.set(table));
    let sql = statement.sql_for(schema);
    let plan = if statement.mutating {
        client.prepare_mut(sql, statement.args)?
    } else {
        client.prepare(sql, statement.args)?
    };
    Ok(cell.get_or_init(|| plan.keep()))
}

/// While pg_avatar's own install or update script runs, the installed
/// version already names the new schema but its objects are half made, so
/// nothing is planned against them (only a superuser's event trigger or
/// script can call in then).
fn refuse_while_updating() {
    // SAFETY: backend globals, read on the backend's own thread; the
    // name is a NUL-terminated literal.
    let updating = unsafe {
        pg_sys::creating_extension
            && pg_sys::CurrentExtensionObject
                == pg_sys::get_extension_oid(c"pg_avatar".as_ptr(), true)
    };
    if updating {
        fail(
            report(
                Class::WrongState,
                "pg_avatar is being installed or updated",
                "pg_avatar",
            )
            .set_hint("Call it once CREATE or ALTER EXTENSION pg_avatar has finished."),
        );
    }
}

/// `avatar.avatar`'s oid, and the schema the installed version has. A
/// version this library does not know is newer than it (a downgrade of the
/// library alone), and is read as the newest it knows.
fn schema(client: &SpiClient<'_>) -> SpiResult<(pg_sys::Oid, Schema)> {
    let row = client
        .select(
            "SELECT 'avatar.avatar'::pg_catalog.regclass::pg_catalog.oid, e.extversion
               FROM pg_catalog.pg_extension e WHERE e.extname = 'pg_avatar'",
            Some(1),
            &[],
        )?
        .first();
    let version = row.get::<String>(2)?.unwrap_or_default();
    Ok((
        row.get::<pg_sys::Oid>(1)?.unwrap_or(pg_sys::Oid::INVALID),
        Schema::of_version(&version).unwrap_or(Schema::NEWEST),
    ))
}

/// One avatar's rows, as the rendition logic reads and fills them.
pub struct Tables {
    pub id: pgrx::Uuid,
}

impl avatar_pipeline::Store for Tables {
    fn lookup(&mut self, side: u32, format: Format) -> Option<Lookup> {
        lookup(self.id, side, format)
    }

    fn master(&mut self) -> Option<Master> {
        master(self.id)
    }

    fn memoize(&mut self, side: u32, format: Format, made_from: &str, image: &[u8]) {
        if may_memoize() {
            memoize(self.id, side, format, made_from, image);
        }
    }
}

/// The current master's digest and side, with the rendition of `side` in
/// `format` if one was memoized from it.
fn lookup(id: pgrx::Uuid, side: u32, format: Format) -> Option<Lookup> {
    // `select` runs read-only when this transaction has no xid yet, which is
    // what lets a hot standby serve avatars. Once it has one, each statement
    // takes its own snapshot, so `lookup` and `master` may see different
    // images: a digest is only ever used with the bytes its read returned.
    with_plans(|plans| {
        Spi::connect(|client| -> SpiResult<Option<Lookup>> {
            let plan = kept(client, &plans.lookup, &LOOKUP)?;
            let table = client.select(
                plan,
                Some(1),
                &[id.into(), (side as i32).into(), format.name().into()],
            )?;
            if table.is_empty() {
                return Ok(None);
            }
            let row = table.first();
            Ok(Some(Lookup {
                sha1: row.get::<String>(1)?.unwrap_or_default(),
                master_side: row.get::<i32>(2)?.unwrap_or_default() as u32,
                image: row.get::<Vec<u8>>(3)?,
            }))
        })
    })
    .unwrap_or_else(|e| spi_failed(e))
}

/// The stored master of `id`, or `None` if it is gone or disabled.
fn master(id: pgrx::Uuid) -> Option<Master> {
    with_plans(|plans| {
        Spi::connect(|client| -> SpiResult<Option<Master>> {
            let plan = kept(client, &plans.master, &MASTER)?;
            let table = client.select(plan, Some(1), &[id.into()])?;
            if table.is_empty() {
                return Ok(None);
            }
            let row = table.first();
            let (sha1, side) = (row.get::<String>(2)?, row.get::<i32>(3)?);
            Ok(row.get::<Vec<u8>>(1)?.map(|image| Master {
                image,
                sha1: sha1.unwrap_or_default(),
                side: side.unwrap_or_default() as u32,
            }))
        })
    })
    .unwrap_or_else(|e| spi_failed(e))
}

/// Whether `avatar_get` may store what it rendered. A standby, a read-only
/// transaction and snapshot isolation (where a concurrent insert of the same
/// size would be a serialization failure) all get the image, unstored.
fn may_memoize() -> bool {
    unsafe {
        !pg_sys::RecoveryInProgress()
            && !pg_sys::XactReadOnly
            && pg_sys::XactIsoLevel == pg_sys::XACT_READ_COMMITTED as i32
    }
}

fn memoize(id: pgrx::Uuid, side: u32, format: Format, master_sha1: &str, image: &[u8]) {
    if !commit_check::may_store() {
        return;
    }
    let stored = with_plans(|plans| {
        Spi::connect_mut(|client| {
            let plan = kept(client, &plans.memoize, &MEMOIZE)?;
            client
                .update(
                    plan,
                    None,
                    &[
                        id.into(),
                        (side as i32).into(),
                        format.name().into(),
                        master_sha1.into(),
                        image.into(),
                        GATE_CLASS.into(),
                        gate(id, side, format).into(),
                    ],
                )
                .map(|inserted| !inserted.is_empty())
        })
    })
    .unwrap_or_else(|e| spi_failed(e));
    if stored {
        commit_check::rendition_stored(id, side as i32, format.name(), master_sha1);
    }
}

/// Keeps the id of an existing avatar, so its public URL survives a new image.
/// A new image keeps the avatar's id and rating (a resource rated above
/// `g` stays so until the application rates it again, which errs on the
/// side of hiding), and drops its alt text, which described the old one.
const UPSERT: Statement = Statement {
    sql: "
    INSERT INTO avatar.avatar AS a (id, resource, image, width, sha1)
    VALUES ($1, $2, $3, $4, $5)
    ON CONFLICT (resource) DO UPDATE
       SET image = excluded.image, width = excluded.width, sha1 = excluded.sha1,
           updated_at = now(), description = NULL
    RETURNING a.id",
    // Before 0.3.0 there was no alt text.
    older: &[(
        Schema::V0_2,
        "
    INSERT INTO avatar.avatar AS a (id, resource, image, width, sha1)
    VALUES ($1, $2, $3, $4, $5)
    ON CONFLICT (resource) DO UPDATE
       SET image = excluded.image, width = excluded.width, sha1 = excluded.sha1,
           updated_at = now()
    RETURNING a.id",
    )],
    args: &[UUID, TEXT, BYTEA, INT4, TEXT],
    mutating: true,
};

/// A separate statement from UPSERT on purpose: it takes its snapshot after
/// UPSERT has waited out any concurrent memoizer, so it sees that row too.
const CLEAR_CACHE: &str = "DELETE FROM avatar.avatar_cache WHERE avatar_id = $1";

/// Stores `jpeg` as the master of `resource` and returns the avatar's id.
pub fn save(resource: &str, master: &Avatar) -> pgrx::Uuid {
    let fresh = random_id();
    let sha1 = master.sha1_hex();
    Spi::connect_mut(|client| -> SpiResult<pgrx::Uuid> {
        let (_, schema) = schema(client)?;
        let id = client
            .update(
                UPSERT.sql_for(schema),
                Some(1),
                &[
                    fresh.into(),
                    resource.into(),
                    master.jpeg.as_slice().into(),
                    (master.side as i32).into(),
                    sha1.as_str().into(),
                ],
            )?
            .first()
            .get_one::<pgrx::Uuid>()?
            .expect("UPSERT returns the id");
        client.update(CLEAR_CACHE, None, &[id.into()])?;
        Ok(id)
    })
    .unwrap_or_else(|e| spi_failed(e))
}

/// A version 4 UUID straight from the operating system's CSPRNG: public ids
/// must be unguessable, and a per-process generator could repeat across
/// forked backends.
pub(crate) fn random_id() -> pgrx::Uuid {
    let mut bytes = [0u8; 16];
    OsRng
        .try_fill_bytes(&mut bytes)
        .unwrap_or_else(|e| error!("the operating system's random source failed: {e}"));
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    pgrx::Uuid::from_bytes(bytes)
}

/// The SHA-256 of an address that is set, as stored, or `None`.
pub fn address(sha256: &str) -> Option<String> {
    Spi::connect(|client| -> SpiResult<Option<String>> {
        let table = client.select(
            "SELECT e.sha256 FROM avatar.avatar_email e WHERE e.sha256 = lower($1)",
            Some(1),
            &[sha256.into()],
        )?;
        if table.is_empty() {
            return Ok(None);
        }
        table.first().get::<String>(1)
    })
    .unwrap_or_else(|e| spi_failed(e))
}
