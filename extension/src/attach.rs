//! `avatar.attach`: the rows of a table own the avatars named after them,
//! and go with them.
//!
//! An attachment is a row of `avatar.avatar_attachment` (the table, the
//! root of a partitioned one; its key columns; its resource prefix, the
//! table's name), and two triggers that only act for a recorded table:
//! deleting a row wipes its resource (image, cache, address digests and the
//! fallback's copies), and `TRUNCATE` wipes every resource under the prefix.
//!
//! The triggers run with the extension owner's rights, on tables that
//! tenants own, so they never evaluate a row: they read the recorded key
//! columns, of the key types the derive supports only, as plain values. The
//! one question that needs the tenant's table (is a row with this key still
//! there, after a move between partitions?) is asked as the table's owner,
//! as PostgreSQL's own maintenance commands do, so whatever of the owner's
//! code it runs (a row-level security policy, say) runs with the owner's
//! rights.

use avatar_contract::resource;
use pgrx::datum::DatumWithOid;
use pgrx::pg_sys::{self, PgBuiltInOids, PgOid};
use pgrx::prelude::*;
use pgrx::spi::{SpiClient, SpiResult, SpiTupleTable};
use pgrx::AnyArray;

use crate::error::{fail, report, spi_failed};
use crate::privilege::{as_role, extension_owner};
use avatar_contract::Class;

/// The key types `#[derive(Avatar)]` supports (diesel's `Integer`,
/// `BigInt`, `Text`, which `varchar` also is, and `Uuid`), and their names.
const KEY_TYPES: [(PgBuiltInOids, &str); 5] = [
    (PgBuiltInOids::INT4OID, "integer"),
    (PgBuiltInOids::INT8OID, "bigint"),
    (PgBuiltInOids::TEXTOID, "text"),
    (PgBuiltInOids::VARCHAROID, "varchar"),
    (PgBuiltInOids::UUIDOID, "uuid"),
];

fn key_type_names() -> String {
    KEY_TYPES.map(|(_, name)| name).join(", ")
}

fn supported(type_oid: pg_sys::Oid) -> bool {
    KEY_TYPES.iter().any(|(oid, _)| type_oid == oid.value())
}

/// One key column's value, read as the plain value of its type. Text is
/// borrowed from the row (detoasted by PostgreSQL, whose allocations fail
/// with an ERROR), never copied into Rust's memory, whatever its length.
enum Key<'a> {
    Int4(i32),
    Int8(i64),
    Text(&'a str),
    Uuid(pgrx::Uuid),
}

impl Key<'_> {
    /// The text diesel-avatar and `::text` give the same value.
    fn text(&self) -> std::borrow::Cow<'_, str> {
        match self {
            Key::Int4(v) => v.to_string().into(),
            Key::Int8(v) => v.to_string().into(),
            Key::Text(v) => (*v).into(),
            Key::Uuid(v) => v.to_string().into(),
        }
    }

    fn datum(&self) -> DatumWithOid<'_> {
        match self {
            Key::Int4(v) => (*v).into(),
            Key::Int8(v) => (*v).into(),
            Key::Text(v) => (*v).into(),
            Key::Uuid(v) => (*v).into(),
        }
    }
}

/// What is recorded of an attached table, with what the triggers need.
struct Attachment {
    root: pg_sys::Oid,
    /// `schema.table`, quoted, for statements on the root.
    root_name: String,
    root_owner: pg_sys::Oid,
    prefix: String,
    key_columns: Vec<String>,
}

const OID: PgOid = PgOid::BuiltIn(PgBuiltInOids::OIDOID);

/// The attachment `relid` belongs to: its own, or its partition root's.
fn attachment_of(client: &SpiClient<'_>, relid: pg_sys::Oid) -> SpiResult<Option<Attachment>> {
    one_row(
        client,
        "SELECT a.relid::oid, format('%I.%I', n.nspname, c.relname), c.relowner,
                a.prefix, a.key_columns::text[]
           FROM avatar.avatar_attachment a
           JOIN pg_class c ON c.oid = a.relid
           JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE a.relid = coalesce(pg_partition_root($1::regclass), $1::regclass)",
        &[relid_datum(relid)],
        |row| {
            Ok(Attachment {
                root: row.get::<pg_sys::Oid>(1)?.unwrap_or(pg_sys::Oid::INVALID),
                root_name: row.get::<String>(2)?.unwrap_or_default(),
                root_owner: row.get::<pg_sys::Oid>(3)?.unwrap_or(pg_sys::Oid::INVALID),
                prefix: row.get::<String>(4)?.unwrap_or_default(),
                key_columns: row.get::<Vec<String>>(5)?.unwrap_or_default(),
            })
        },
    )
}

/// The first row `sql` returns, read by `read`, or `None` if it returns none.
fn one_row<T>(
    client: &SpiClient<'_>,
    sql: &str,
    args: &[DatumWithOid],
    read: impl FnOnce(&SpiTupleTable) -> SpiResult<T>,
) -> SpiResult<Option<T>> {
    let table = client.select(sql, Some(1), args)?;
    if table.is_empty() {
        return Ok(None);
    }
    read(&table.first()).map(Some)
}

fn relid_datum(relid: pg_sys::Oid) -> DatumWithOid<'static> {
    // SAFETY: an oid is a by-value datum of type oid.
    unsafe { DatumWithOid::new(relid, OID.value()) }
}

/// Whether a row with `keys` is in the attached table, asked as its owner.
fn still_there(attachment: &Attachment, keys: &[Key]) -> bool {
    let condition = attachment
        .key_columns
        .iter()
        .enumerate()
        .map(|(i, column)| format!("{} = ${}", quote_identifier(column), i + 1))
        .collect::<Vec<_>>()
        .join(" AND ");
    let sql = format!(
        "SELECT EXISTS (SELECT FROM {} WHERE {condition})",
        attachment.root_name
    );
    let args: Vec<DatumWithOid> = keys.iter().map(Key::datum).collect();
    as_role(attachment.root_owner, true, || {
        Spi::connect(|client| client.select(&sql, Some(1), &args)?.first().get::<bool>(1))
    })
    .unwrap_or_else(|e| spi_failed(e))
    .unwrap_or(false)
}

fn quote_identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn not_attached(relation: &str, trigger: &'static str) -> ! {
    fail(
        report(
            Class::WrongState,
            format!("{relation} is not attached, so its rows own no avatars"),
            trigger,
        )
        .set_hint(format!(
            "Drop this trigger, and attach the table with avatar.attach('{relation}', key columns...)."
        )),
    )
}

/// Wipes what is kept about one resource, or about every resource under a
/// prefix, as the extension owner (this function's definer).
fn wipe(resource_or_prefix: &str, prefix: bool) {
    let sql = if prefix {
        "SELECT count(avatar.avatar_wipe(r))::int
           FROM (SELECT resource FROM avatar.avatar
                 UNION SELECT resource FROM avatar.avatar_email) owned (r)
          WHERE starts_with(r, $1 || ',')"
    } else {
        "SELECT avatar.avatar_wipe($1)::int"
    };
    Spi::connect_mut(|client| {
        client
            .update(sql, None, &[resource_or_prefix.into()])
            .map(drop)
    })
    .unwrap_or_else(|e| spi_failed(e))
}

/// Whether anything is kept about `resource`, so that a delete of a row
/// without an avatar, the common case, costs one index probe or two.
fn anything_kept(resource: &str) -> bool {
    Spi::connect(|client| {
        client
            .select(
                "SELECT EXISTS (SELECT FROM avatar.avatar WHERE resource = $1)
                     OR EXISTS (SELECT FROM avatar.avatar_email WHERE resource = $1)",
                Some(1),
                &[resource.into()],
            )?
            .first()
            .get::<bool>(1)
    })
    .unwrap_or_else(|e| spi_failed(e))
    .unwrap_or(true)
}

/// `AFTER DELETE ... FOR EACH ROW` on an attached table (and, cloned by
/// PostgreSQL, on each of its partitions).
#[pg_trigger(sql = false)]
fn avatar_owner_deleted<'a>(
    trigger: &'a PgTrigger<'a>,
) -> Result<Option<PgHeapTuple<'a, AllocatedByPostgres>>, PgTriggerError> {
    let relation = trigger.relation()?;
    let fired_as = (trigger.when()?, trigger.level(), trigger.op()?);
    if !matches!(
        fired_as,
        (
            PgTriggerWhen::After,
            PgTriggerLevel::Row,
            PgTriggerOperation::Delete
        )
    ) {
        error!("avatar_owner_deleted must run AFTER DELETE FOR EACH ROW");
    }
    let name = relation.name().to_string();
    let attachment = Spi::connect(|client| attachment_of(client, relation.oid()))
        .unwrap_or_else(|e| spi_failed(e))
        .unwrap_or_else(|| not_attached(&name, "avatar_owner_deleted"));
    let Some(old) = trigger.old() else {
        return Ok(None);
    };
    let mut keys = Vec::with_capacity(attachment.key_columns.len());
    for column in &attachment.key_columns {
        let Some((index, attribute)) = old.get_attribute_by_name(column) else {
            key_error(&name, column, "is missing");
        };
        let type_oid = attribute.type_oid().value();
        let is = |oid: PgBuiltInOids| type_oid == oid.value();
        let value = if is(PgBuiltInOids::INT4OID) {
            old.get_by_index::<i32>(index).map(|v| v.map(Key::Int4))
        } else if is(PgBuiltInOids::INT8OID) {
            old.get_by_index::<i64>(index).map(|v| v.map(Key::Int8))
        } else if is(PgBuiltInOids::TEXTOID) || is(PgBuiltInOids::VARCHAROID) {
            old.get_by_index::<&str>(index).map(|v| v.map(Key::Text))
        } else if is(PgBuiltInOids::UUIDOID) {
            old.get_by_index::<pgrx::Uuid>(index)
                .map(|v| v.map(Key::Uuid))
        } else {
            key_error(&name, column, "is no longer of a key type")
        };
        match value {
            Ok(Some(key)) => keys.push(key),
            // A NULL key names no resource.
            Ok(None) => return Ok(None),
            Err(e) => error!("reading key column {column} of {name}: {e}"),
        }
    }
    // A key too long to name any resource owns nothing.
    let Some(resource) = resource::encode_stored(&attachment.prefix, keys.iter().map(Key::text))
    else {
        return Ok(None);
    };
    if !anything_kept(&resource) {
        return Ok(None);
    }
    // Moving a row to another partition is a delete and an insert, and
    // fires this trigger; the row is still its avatar's owner.
    if relation.oid() != attachment.root && still_there(&attachment, &keys) {
        return Ok(None);
    }
    wipe(&resource, false);
    Ok(None)
}

fn key_error(relation: &str, column: &str, what: &str) -> ! {
    fail(
        report(
            Class::DatatypeMismatch,
            format!("the avatar key column {column} of {relation} {what}"),
            "avatar_owner_deleted",
        )
        .set_hint(format!(
            "Attach the table again with key columns of type {}.",
            key_type_names()
        )),
    )
}

/// `AFTER TRUNCATE` on an attached table and each of its partitions.
/// Truncating the whole table wipes every avatar under its prefix; a
/// partition alone cannot say which avatars were its rows', so that is
/// refused while the rest of the table has rows.
#[pg_trigger(sql = false)]
fn avatar_owner_truncated<'a>(
    trigger: &'a PgTrigger<'a>,
) -> Result<Option<PgHeapTuple<'a, AllocatedByPostgres>>, PgTriggerError> {
    let relation = trigger.relation()?;
    let name = relation.name().to_string();
    let attachment = Spi::connect(|client| attachment_of(client, relation.oid()))
        .unwrap_or_else(|e| spi_failed(e))
        .unwrap_or_else(|| not_attached(&name, "avatar_owner_truncated"));
    let sql = format!("SELECT NOT EXISTS (SELECT FROM {})", attachment.root_name);
    let emptied = as_role(attachment.root_owner, true, || {
        Spi::connect(|client| client.select(&sql, Some(1), &[])?.first().get::<bool>(1))
    })
    .unwrap_or_else(|e| spi_failed(e))
    .unwrap_or(false);
    if !emptied {
        fail(
            report(
                Class::Unsupported,
                format!("TRUNCATE of {name} alone would leave its rows' avatars behind"),
                "avatar_owner_truncated",
            )
            .set_detail(format!(
                "{name} is a partition of {}, which owns avatars, and only a whole table can \
                 be truncated with its avatars.",
                attachment.root_name
            ))
            .set_hint(format!(
                "DELETE FROM {name}, which deletes its rows' avatars, or TRUNCATE {}.",
                attachment.root_name
            )),
        );
    }
    wipe(&attachment.prefix, true);
    Ok(None)
}

/// `avatar.attach(owner regclass, VARIADIC key_columns name[])`: records
/// the table and installs the triggers, for the table's owner only. Runs
/// as its caller until the checks have passed, then as the extension's
/// owner for the record and the triggers, which the caller cannot write.
#[pg_extern(sql = false)]
fn attach(owner: pg_sys::Oid, key_columns: AnyArray) {
    const F: &str = "attach";
    let relation = owned_table(owner, F);
    // The triggers will wipe every resource under the table's name: only a
    // role that may wipe avatars itself may hand them that power.
    let may_wipe = Spi::connect(|client| {
        client
            .select(
                "SELECT has_function_privilege('avatar.avatar_wipe(text)'::regprocedure, 'EXECUTE')",
                Some(1),
                &[],
            )?
            .first()
            .get::<bool>(1)
    })
    .unwrap_or_else(|e| spi_failed(e))
    .unwrap_or(false);
    if !may_wipe {
        fail(
            report(
                Class::InsufficientPrivilege,
                format!("attaching {} needs EXECUTE on avatar.avatar_wipe(text)", relation.name),
                F,
            )
            .set_detail(format!(
                "Deleting a row of an attached table wipes the avatar named after it, and \
                 attaching claims every resource {},... in the database.",
                relation.relname
            ))
            .set_hint("Grant avatar.avatar_wipe(text) to the role that attaches its tables, as the README grants app_owner."),
        );
    }
    let columns: Vec<String> = Spi::connect(|client| {
        client
            .select(
                "SELECT array_agg(c::text ORDER BY n) FROM unnest($1) WITH ORDINALITY k (c, n)",
                Some(1),
                // SAFETY: the array argument, with the type PostgreSQL gave it.
                &[unsafe { DatumWithOid::new(key_columns.datum(), key_columns.oid()) }],
            )?
            .first()
            .get::<Vec<String>>(1)
    })
    .unwrap_or_else(|e| spi_failed(e))
    .unwrap_or_default();
    let bad = |code, message: String, hint: String| -> ! {
        fail(report(code, message, F).set_hint(hint))
    };
    if columns.is_empty() {
        bad(
            Class::InvalidParameter,
            "attach needs at least one key column".into(),
            "For example: SELECT avatar.attach('users', 'id');".into(),
        );
    }
    for (i, column) in columns.iter().enumerate() {
        if columns[..i].contains(column) {
            bad(
                Class::InvalidParameter,
                format!("key column {column} is named twice"),
                "Name each key column once, in the order of the model's primary key.".into(),
            );
        }
        match relation.column_type(column) {
            None => bad(
                Class::UndefinedColumn,
                format!("column {column} does not exist in {}", relation.name),
                "Name the columns of the model's primary key.".into(),
            ),
            Some((type_oid, type_name)) if !supported(type_oid) => bad(
                Class::DatatypeMismatch,
                format!(
                    "key column {column} of {} is of type {type_name}",
                    relation.name
                ),
                format!(
                    "Key columns are of type {}, as diesel-avatar's derive supports.",
                    key_type_names()
                ),
            ),
            Some(_) => {}
        }
    }
    let prefix = relation.relname.clone();
    if prefix.contains([',', '%']) {
        bad(
            Class::InvalidParameter,
            format!("the name of {} cannot begin a resource", relation.name),
            "A table's name is its resources' prefix, so it may not contain ',' or '%'.".into(),
        );
    }
    // The caller may not read the records; the extension's owner does.
    let definer = extension_owner();
    let taken: Option<String> = as_role(definer, false, || {
        Spi::connect(|client| {
            one_row(
                client,
                "SELECT a.relid::text FROM avatar.avatar_attachment a
                  WHERE a.prefix = $1 AND a.relid <> $2",
                &[prefix.as_str().into(), relid_datum(owner)],
                |row| Ok(row.get::<String>(1)?.unwrap_or_default()),
            )
        })
    })
    .unwrap_or_else(|e| spi_failed(e));
    if let Some(other) = taken {
        bad(
            Class::DuplicateObject,
            format!("the resources named {prefix},... already belong to {other}"),
            format!(
                "Two tables whose names give the same prefix cannot both be attached; detach {other} first."
            ),
        );
    }
    as_role(definer, false, || {
        Spi::connect_mut(|client| -> SpiResult<()> {
            drop_triggers(client, owner)?;
            client.update(
                "INSERT INTO avatar.avatar_attachment (relid, prefix, key_columns)
                 VALUES ($1, $2, $3::name[])
                 ON CONFLICT (relid) DO UPDATE
                    SET prefix = excluded.prefix, key_columns = excluded.key_columns",
                None,
                &[relid_datum(owner), prefix.as_str().into(), columns.clone().into()],
            )?;
            client.update(
                &format!(
                    "CREATE TRIGGER avatar_owner_deleted AFTER DELETE ON {}
                         FOR EACH ROW EXECUTE FUNCTION avatar.avatar_owner_deleted()",
                    relation.name
                ),
                None,
                &[],
            )?;
            // Statement triggers are not cloned to partitions, so each one
            // gets its own; partitions made later need attach to run again.
            let tree = client.select(
                "SELECT format('%I.%I', n.nspname, c.relname)
                   FROM (SELECT $1::regclass AS relid UNION SELECT relid FROM pg_partition_tree($1)) t
                   JOIN pg_class c ON c.oid = t.relid
                   JOIN pg_namespace n ON n.oid = c.relnamespace",
                None,
                &[relid_datum(owner)],
            )?;
            let members: Vec<String> = tree
                .map(|row| row.get::<String>(1).map(Option::unwrap_or_default))
                .collect::<SpiResult<_>>()?;
            for member in members {
                client.update(
                    &format!(
                        "CREATE TRIGGER avatar_owner_truncated AFTER TRUNCATE ON {member}
                             FOR EACH STATEMENT EXECUTE FUNCTION avatar.avatar_owner_truncated()"
                    ),
                    None,
                    &[],
                )?;
            }
            Ok(())
        })
    })
    .unwrap_or_else(|e| spi_failed(e));
}

/// `avatar.detach(owner regclass)`: undoes `attach`; the avatars stay. True
/// if the table was attached.
#[pg_extern(sql = false)]
fn detach(owner: pg_sys::Oid) -> bool {
    owned_table(owner, "detach");
    as_role(extension_owner(), false, || {
        Spi::connect_mut(|client| -> SpiResult<bool> {
            drop_triggers(client, owner)?;
            let gone = client.update(
                "DELETE FROM avatar.avatar_attachment WHERE relid = $1",
                None,
                &[relid_datum(owner)],
            )?;
            Ok(!gone.is_empty())
        })
    })
    .unwrap_or_else(|e| spi_failed(e))
}

/// pg_avatar's triggers on `relid` and its partitions, wherever they came
/// from (an earlier attach, or 0.2.0's, which took arguments).
fn drop_triggers(client: &mut SpiClient<'_>, relid: pg_sys::Oid) -> SpiResult<()> {
    let found = client.select(
        "SELECT format('%I ON %I.%I', t.tgname, n.nspname, c.relname)
           FROM pg_trigger t
           JOIN pg_class c ON c.oid = t.tgrelid
           JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE t.tgrelid IN (SELECT $1::regclass UNION SELECT relid FROM pg_partition_tree($1))
            AND t.tgfoid IN ('avatar.avatar_owner_deleted()'::regprocedure,
                             'avatar.avatar_owner_truncated()'::regprocedure)
            AND t.tgparentid = 0",
        None,
        &[relid_datum(relid)],
    )?;
    let triggers: Vec<String> = found
        .map(|row| row.get::<String>(1).map(Option::unwrap_or_default))
        .collect::<SpiResult<_>>()?;
    for trigger in triggers {
        client.update(&format!("DROP TRIGGER {trigger}"), None, &[])?;
    }
    Ok(())
}

/// A table as `attach` and `detach` see it.
struct Table {
    relid: pg_sys::Oid,
    /// `schema.table`, quoted.
    name: String,
    relname: String,
}

impl Table {
    fn column_type(&self, column: &str) -> Option<(pg_sys::Oid, String)> {
        Spi::connect(|client| {
            one_row(
                client,
                "SELECT a.atttypid, format_type(a.atttypid, NULL) FROM pg_attribute a
                  WHERE a.attrelid = $1 AND a.attname = $2 AND a.attnum > 0 AND NOT a.attisdropped",
                &[relid_datum(self.relid), column.into()],
                |row| {
                    Ok((
                        row.get::<pg_sys::Oid>(1)?.unwrap_or(pg_sys::Oid::INVALID),
                        row.get::<String>(2)?.unwrap_or_default(),
                    ))
                },
            )
        })
        .unwrap_or_else(|e| spi_failed(e))
    }
}

/// What `attach` and `detach` need to know of a relation.
struct Described {
    name: String,
    relname: String,
    /// `relkind` then `relpersistence`.
    kind: String,
    partition: bool,
    inheritance_children: bool,
    owned: bool,
}

fn describe(relid: pg_sys::Oid) -> Option<Described> {
    Spi::connect(|client| {
        one_row(
            client,
            "SELECT format('%I.%I', n.nspname, c.relname), c.relname::text,
                    c.relkind::text || c.relpersistence::text, c.relispartition,
                    EXISTS (SELECT FROM pg_inherits i WHERE i.inhparent = c.oid)
                        AND c.relkind = 'r',
                    pg_has_role(c.relowner, 'USAGE')
               FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE c.oid = $1",
            &[relid_datum(relid)],
            |row| {
                Ok(Described {
                    name: row.get::<String>(1)?.unwrap_or_default(),
                    relname: row.get::<String>(2)?.unwrap_or_default(),
                    kind: row.get::<String>(3)?.unwrap_or_default(),
                    partition: row.get::<bool>(4)?.unwrap_or(false),
                    inheritance_children: row.get::<bool>(5)?.unwrap_or(false),
                    owned: row.get::<bool>(6)?.unwrap_or(false),
                })
            },
        )
    })
    .unwrap_or_else(|e| spi_failed(e))
}

/// `relid`, checked to be a table its caller owns (and, for `attach`, one
/// that can own avatars), and locked against concurrent changes to its
/// triggers. Checked once to take the lock as the caller, so PostgreSQL
/// checks the caller's rights, and again once it is held.
fn owned_table(relid: pg_sys::Oid, function: &'static str) -> Table {
    let bad = |code, message: String, hint: &str| -> ! {
        fail(report(code, message, function).set_hint(hint))
    };
    let checked = || -> Described {
        let Some(relation) = describe(relid) else {
            bad(
                Class::UndefinedTable,
                format!("relation {relid} does not exist"),
                "Name a table.",
            );
        };
        if !relation.owned {
            fail(
                report(
                    Class::InsufficientPrivilege,
                    format!("must be the owner of {} to {function} it", relation.name),
                    function,
                )
                .set_hint("Only a table's owner decides what its rows own."),
            );
        }
        relation
    };
    let name = checked().name;
    Spi::connect_mut(|client| {
        client
            .update(
                &format!("LOCK TABLE {name} IN SHARE ROW EXCLUSIVE MODE"),
                None,
                &[],
            )
            .map(drop)
    })
    .unwrap_or_else(|e| spi_failed(e));
    let relation = checked();
    if function == "attach" {
        match relation.kind.as_str() {
            "rt" | "pt" => bad(
                Class::InvalidParameter,
                format!("{} is a temporary table", relation.name),
                "Its rows vanish with the session, and its name could claim another table's avatars; attach a permanent table.",
            ),
            "rp" | "pp" | "ru" | "pu" => {}
            _ => bad(
                Class::InvalidParameter,
                format!("{} is not a table", relation.name),
                "Attach the table whose rows own the avatars.",
            ),
        }
        if relation.partition {
            bad(
                Class::InvalidParameter,
                format!("{} is a partition", relation.name),
                "Attach the partitioned table it belongs to; its partitions are covered with it.",
            );
        }
        if relation.inheritance_children {
            bad(
                Class::InvalidParameter,
                format!("{} has inheritance children", relation.name),
                "Their rows would not be seen; attach a table without children, or a partitioned table.",
            );
        }
    }
    Table {
        relid,
        name: relation.name,
        relname: relation.relname,
    }
}
