//! The one definition of a resource: `avatar_contract::resource::encode`
//! over each key part's text. In Rust it is [`AvatarKey::key_text`] of the
//! model's fields; in SQL it is `avatar.avatar_resource(prefix, parts)`,
//! the same Rust function inside the extension, over the columns' `::text`,
//! which the extension's delete trigger also calls. The key types are
//! sealed to those whose Rust text is PostgreSQL's, which
//! `tests/tests/integration/resources.rs` checks value by value.

use diesel::expression::{is_aggregate, BoxableExpression, Expression};
use diesel::expression::{SelectableExpression, ValidGrouping};
use diesel::pg::Pg;
use diesel::query_builder::QueryFragment;
use diesel::sql_types::{BigInt, Integer, SqlType, Text};
use diesel::ExpressionMethods;

mod sealed {
    pub trait Sealed {}
}

/// A primary-key part that can name a row's avatar: the types
/// `avatar.attach` accepts as key columns, and no others, so no type can
/// write its key differently from the database.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be part of an avatar's resource",
    note = "#[derive(Avatar)] keys are i32, i64, String or uuid::Uuid fields (SQL Integer, BigInt, Text and Uuid), because their text in Rust is exactly their text in PostgreSQL"
)]
pub trait AvatarKey: sealed::Sealed {
    /// The SQL type of the key's column.
    type SqlType: SqlType;

    /// The key as PostgreSQL's `::text` writes it.
    fn key_text(&self) -> String;

    /// A column of this key's type as text, in SQL.
    #[doc(hidden)]
    fn column_text<QS, E>(column: E) -> Box<dyn BoxableExpression<QS, Pg, SqlType = Text>>
    where
        E: Expression<SqlType = Self::SqlType> + Part<QS>;
}

/// What diesel needs to put an expression in a boxed select.
#[doc(hidden)]
pub trait Part<QS>:
    SelectableExpression<QS>
    + QueryFragment<Pg>
    + ValidGrouping<(), IsAggregate = is_aggregate::No>
    + Send
    + 'static
{
}

impl<QS, E> Part<QS> for E where
    E: SelectableExpression<QS>
        + QueryFragment<Pg>
        + ValidGrouping<(), IsAggregate = is_aggregate::No>
        + Send
        + 'static
{
}

macro_rules! key {
    ($($rust:ty => $sql:ty, |$column:ident| $text:expr;)*) => {$(
        impl sealed::Sealed for $rust {}
        impl AvatarKey for $rust {
            type SqlType = $sql;

            fn key_text(&self) -> String {
                self.to_string()
            }

            fn column_text<QS, E>($column: E) -> Box<dyn BoxableExpression<QS, Pg, SqlType = Text>>
            where
                E: Expression<SqlType = Self::SqlType> + Part<QS>,
            {
                Box::new($text)
            }
        }
    )*};
}

key! {
    i32 => Integer, |column| column.cast::<Text>();
    i64 => BigInt, |column| column.cast::<Text>();
    String => Text, |column| column;
    // Lower-case hyphenated, as uuid_out writes it.
    uuid::Uuid => diesel::sql_types::Uuid, |column| column.cast::<Text>();
}

/// The resource of a row of `table` whose key parts have these texts:
/// `""` when it would be longer than any resource may be, exactly as the
/// database computes it, so that both name no avatar.
pub fn resource(table: &str, parts: &[String]) -> String {
    avatar_contract::resource::encode_stored(table, parts).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_written_as_postgres_writes_them() {
        assert_eq!(resource("users", &[42i32.key_text()]), "users,42");
        assert_eq!(resource("users", &[(-7i64).key_text()]), "users,-7");
        assert_eq!(
            resource("m", &["a,b%".to_string().key_text(), 1i32.key_text()]),
            "m,a%2Cb%25,1"
        );
        let id = uuid::Uuid::from_u128(0xABCDEF);
        assert_eq!(
            resource("t", &[id.key_text()]),
            "t,00000000-0000-0000-0000-000000abcdef"
        );
    }
}
