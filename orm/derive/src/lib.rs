//! `#[derive(Avatar)]`: use it through `diesel-avatar`, which re-exports it.

use proc_macro::TokenStream;

mod model;

/// Implements `diesel_avatar::Avatar` for a diesel model.
///
/// The table and primary key come from the attributes diesel already reads,
/// `#[diesel(table_name = users, primary_key(id))]`, with `id` as the default
/// key and diesel's inferred table name as the default table. Override
/// either with `#[avatar(table = "people", key(person_id))]`.
#[proc_macro_derive(Avatar, attributes(avatar, diesel))]
pub fn derive_avatar(input: TokenStream) -> TokenStream {
    syn::parse(input)
        .and_then(model::derive)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}
