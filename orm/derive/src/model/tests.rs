//! Expansion snapshots: the generated code, pretty-printed, is compared
//! with `tests/snapshots/<name>.rs`. After an intended change, run with
//! `UPDATE_SNAPSHOTS=1` and review the diff.

use std::path::PathBuf;

use syn::parse_quote;

fn assert_expansion(name: &str, input: syn::DeriveInput) {
    let tokens = super::derive(input).unwrap_or_else(|e| panic!("{name}: {e}"));
    let file: syn::File = syn::parse2(tokens).expect("the expansion parses as items");
    let actual = prettyplease::unparse(&file);
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/snapshots")
        .join(format!("{name}.rs"));
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, &actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!(
            "no snapshot {}; run with UPDATE_SNAPSHOTS=1",
            path.display()
        )
    });
    assert_eq!(
        actual, expected,
        "expansion of {name} changed; run with UPDATE_SNAPSHOTS=1 if intended"
    );
}

fn error(input: syn::DeriveInput) -> String {
    super::derive(input)
        .expect_err("should not derive")
        .to_string()
}

#[test]
fn plain_model() {
    assert_expansion(
        "plain_model",
        parse_quote! {
            #[derive(Queryable, Identifiable, Avatar)]
            #[diesel(table_name = users, check_for_backend(diesel::pg::Pg))]
            struct User { id: i32, name: String }
        },
    );
}

#[test]
fn composite_key_with_renamed_column_and_schema_path() {
    assert_expansion(
        "composite_key",
        parse_quote! {
            #[diesel(table_name = crate::schema::memberships, primary_key(org_id, login))]
            #[diesel(belongs_to(Org, foreign_key = org_id))]
            struct Membership {
                org_id: i64,
                #[diesel(column_name = user_login, serialize_as = String)]
                login: String,
            }
        },
    );
}

#[test]
fn avatar_attributes_win() {
    assert_expansion(
        "overridden",
        parse_quote! {
            #[diesel(table_name = res_users)]
            #[avatar(table = "res.user", key(uid))]
            struct ResUser { uid: uuid::Uuid }
        },
    );
}

#[test]
fn inferred_table_name_follows_diesel() {
    assert_eq!(super::snake_case("BlogPost"), "blog_post");
    let out = super::derive(parse_quote! { struct BlogPost { id: i32 } })
        .unwrap()
        .to_string();
    assert!(out.contains("blog_posts :: table"), "{out}");
}

#[test]
fn helpful_errors() {
    assert!(error(parse_quote! { enum E { A } }).contains("structs with named fields"));
    assert!(error(parse_quote! { struct T(i32); }).contains("needs named fields"));
    assert!(
        error(parse_quote! { struct NoId { name: String } }).contains("no field `id` in `NoId`")
    );
    assert!(
        error(parse_quote! { #[diesel(primary_key(uid))] struct U { id: i32 } })
            .contains("no field `uid`")
    );
    assert!(
        error(parse_quote! { #[avatar(size = 3)] struct U { id: i32 } })
            .contains("unknown #[avatar] option")
    );
    assert!(
        error(parse_quote! { #[avatar(key())] struct U { id: i32 } })
            .contains("at least one field")
    );
    assert!(
        error(parse_quote! { #[avatar(table = "a,b")] struct U { id: i32 } })
            .contains("without ',' or '%'")
    );
    assert!(
        error(parse_quote! { #[avatar(table = "50%")] struct U { id: i32 } })
            .contains("without ',' or '%'")
    );
}
