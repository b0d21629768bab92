//! What every part of pg_avatar must agree on, in one place: the SQL
//! extension, the image pipeline, diesel-avatar and its HTTP route all use
//! these definitions rather than writing them down again. The SQL that
//! cannot use them (a `CHECK`, a trigger's literal) is tested against them.
//!
//! No dependencies, so the smallest client can have it.

pub mod limits;
pub mod resource;
pub mod size;

/// Every error pg_avatar raises because of its caller's input (SQLSTATEs
/// 22023, 22P03, 22004 and 54000) starts its message with this, in Rust
/// and in SQL alike; nothing else it raises does. Clients that cannot see
/// the SQLSTATE (diesel reports unknown ones without it) tell bad input
/// from failures by it.
pub const INVALID_INPUT_MARKER: &str = "pg_avatar: ";
