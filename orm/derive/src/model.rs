use proc_macro2::TokenStream;
use quote::quote;
use syn::meta::ParseNestedMeta;
use syn::punctuated::Punctuated;
use syn::{Data, DeriveInput, Fields, Ident, LitStr, Path, Token};

/// What the derive needs to know about a model.
struct Model {
    /// The diesel `table!` module, for the SQL expression.
    table_path: Path,
    /// The table's name as it appears in resources.
    table_name: String,
    /// Each primary-key part: (struct field, table column, field type).
    keys: Vec<(Ident, Ident, syn::Type)>,
}

pub fn derive(input: DeriveInput) -> syn::Result<TokenStream> {
    let model = Model::read(&input)?;
    let ident = &input.ident;
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    let Model {
        table_path,
        table_name,
        keys,
    } = model;
    let fields = keys.iter().map(|(field, _, _)| field);
    let columns = keys.iter().map(|(_, column, _)| column);
    let types: Vec<_> = keys.iter().map(|(_, _, ty)| ty).collect();
    // Blamed on the field's type, where a newtype key would be fixed.
    let key_checks = types.iter().map(|ty| {
        quote::quote_spanned! {syn::spanned::Spanned::span(ty)=>
            const _: fn() = || {
                fn is_a_key<K: diesel_avatar::AvatarKey>() {}
                is_a_key::<#ty>();
            };
        }
    });
    Ok(quote! {
        const _: () = {
            use diesel_avatar::__private::diesel;

            impl #impl_generics diesel_avatar::Avatar for #ident #ty_generics #where_clause {
                type Table = #table_path::table;

                fn avatar_resource(&self) -> ::std::string::String {
                    diesel_avatar::__private::resource(
                        #table_name,
                        &[#(<#types as diesel_avatar::AvatarKey>::key_text(&self.#fields)),*],
                    )
                }

                fn avatar_resource_sql() -> diesel_avatar::ResourceSql<Self::Table> {
                    ::std::boxed::Box::new(diesel_avatar::__private::avatar_resource(
                        #table_name,
                        diesel::dsl::array::<diesel::sql_types::Text, _>((
                            #(diesel_avatar::__private::part::<#types, _, _>(#table_path::#columns),)*
                        )),
                    ))
                }
            }

            #(#key_checks)*
        };
    })
}

impl Model {
    fn read(input: &DeriveInput) -> syn::Result<Model> {
        let Data::Struct(data) = &input.data else {
            return Err(syn::Error::new_spanned(
                &input.ident,
                "#[derive(Avatar)] works on structs with named fields, like diesel models",
            ));
        };
        let Fields::Named(named) = &data.fields else {
            return Err(syn::Error::new_spanned(
                &input.ident,
                "#[derive(Avatar)] needs named fields, to find the primary key",
            ));
        };

        let mut diesel_table: Option<Path> = None;
        let mut diesel_key: Option<Vec<Ident>> = None;
        let mut avatar_table: Option<LitStr> = None;
        let mut avatar_key: Option<Vec<Ident>> = None;
        for attr in &input.attrs {
            if attr.path().is_ident("diesel") {
                attr.parse_nested_meta(|meta| {
                    if meta.path.is_ident("table_name") {
                        diesel_table = Some(meta.value()?.parse()?);
                    } else if meta.path.is_ident("primary_key") {
                        diesel_key = Some(ident_list(&meta)?);
                    } else {
                        skip(&meta)?;
                    }
                    Ok(())
                })?;
            } else if attr.path().is_ident("avatar") {
                attr.parse_nested_meta(|meta| {
                    if meta.path.is_ident("table") {
                        let table: LitStr = meta.value()?.parse()?;
                        if table.value().is_empty() || table.value().contains([',', '%']) {
                            return Err(syn::Error::new_spanned(&table, "the table name must be non-empty, without ',' or '%': it begins every resource"));
                        }
                        avatar_table = Some(table);
                    } else if meta.path.is_ident("key") {
                        avatar_key = Some(ident_list(&meta)?);
                    } else {
                        return Err(meta.error("unknown #[avatar] option: expected `table = \"...\"` or `key(field, ...)`"));
                    }
                    Ok(())
                })?;
            }
        }

        let table_path = diesel_table.unwrap_or_else(|| {
            // diesel's own default: the struct name in snake case, plus "s".
            Ident::new(
                &format!("{}s", snake_case(&input.ident.to_string())),
                input.ident.span(),
            )
            .into()
        });
        let table_name = match avatar_table {
            Some(name) => name.value(),
            None => table_path
                .segments
                .last()
                .expect("a path has a segment")
                .ident
                .to_string(),
        };

        let named_keys = avatar_key.or(diesel_key);
        if named_keys.as_ref().is_some_and(Vec::is_empty) {
            return Err(syn::Error::new_spanned(
                &input.ident,
                "the primary key needs at least one field",
            ));
        }
        // An implicit `id` is blamed on the struct, a named key on its name.
        let implicit = named_keys.is_none();
        let key_names = named_keys.unwrap_or_else(|| vec![Ident::new("id", input.ident.span())]);
        let mut keys = Vec::new();
        for key in key_names {
            let field = named.named.iter().find(|f| f.ident.as_ref() == Some(&key)).ok_or_else(|| {
                syn::Error::new(
                    if implicit { input.ident.span() } else { key.span() },
                    format!(
                        "no field `{key}` in `{}` to use as the avatar's key; name the primary key with \
                         #[diesel(primary_key(...))] or #[avatar(key(...))]",
                        input.ident
                    ),
                )
            })?;
            keys.push((
                key.clone(),
                column_name(field)?.unwrap_or(key),
                field.ty.clone(),
            ));
        }
        Ok(Model {
            table_path,
            table_name,
            keys,
        })
    }
}

/// A field's `#[diesel(column_name = ...)]`, if it has one.
fn column_name(field: &syn::Field) -> syn::Result<Option<Ident>> {
    let mut column = None;
    for attr in field.attrs.iter().filter(|a| a.path().is_ident("diesel")) {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("column_name") {
                column = Some(meta.value()?.parse()?);
            } else {
                skip(&meta)?;
            }
            Ok(())
        })?;
    }
    Ok(column)
}

fn ident_list(meta: &ParseNestedMeta<'_>) -> syn::Result<Vec<Ident>> {
    let content;
    syn::parenthesized!(content in meta.input);
    Ok(Punctuated::<Ident, Token![,]>::parse_terminated(&content)?
        .into_iter()
        .collect())
}

/// Passes over a diesel option this derive does not need, whatever its form.
fn skip(meta: &ParseNestedMeta<'_>) -> syn::Result<()> {
    if meta.input.peek(Token![=]) {
        meta.value()?.parse::<syn::Expr>()?;
    } else if meta.input.peek(syn::token::Paren) {
        let content;
        syn::parenthesized!(content in meta.input);
        content.parse::<TokenStream>()?;
    }
    Ok(())
}

fn snake_case(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.extend(c.to_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests;
