//! The copies of the contract that SQL has to write out itself (a `CHECK`,
//! a channel name in a trigger, a message raised in plpgsql), checked
//! against the one definition. The upgrade test checks that an upgraded
//! database ends up with exactly the SQL of a fresh install.

use std::path::PathBuf;

use avatar_contract::notify::{self, ADDRESS_CHANNEL, AVATAR_CHANNEL};
use avatar_contract::resource::{FALLBACK_PREFIX, MAX_BYTES};
use avatar_contract::size::MAX_SIZE;
use avatar_contract::{Class, Format, MARKER};

/// A file of `sql/`, without its `--` comments.
fn sql(file: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../sql")
        .join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .map(|line| line.find("--").map_or(line, |at| &line[..at]))
        .collect::<Vec<_>>()
        .join("\n")
}

/// What is written now: a fresh install's SQL and the upgrade to it.
fn current() -> Vec<(&'static str, String)> {
    ["schema.sql", "functions.sql", "pg_avatar--0.2.0--0.3.0.sql"]
        .into_iter()
        .map(|f| (f, sql(f)))
        .collect()
}

#[test]
fn checks_hold_the_contracts_limits_and_names() {
    let schema = sql("schema.sql");
    for column in ["width", "size"] {
        let check = format!("CHECK ({column} BETWEEN 1 AND {MAX_SIZE})");
        assert!(schema.contains(&check), "schema.sql has {check}");
    }
    let formats = format!("CHECK (format IN ({}))", Format::sql_list());
    assert!(schema.contains(&formats), "schema.sql has {formats}");
    let resource =
        format!("CHECK (btrim(resource) <> '' AND octet_length(resource) <= {MAX_BYTES})");
    assert_eq!(
        schema.matches(&resource).count(),
        2,
        "both tables that hold resources have {resource}"
    );
    // No other spelling of a limit slipped in beside them.
    assert_eq!(schema.matches("BETWEEN 1 AND").count(), 2);
    assert_eq!(schema.matches("octet_length(resource)").count(), 2);
}

#[test]
fn triggers_notify_on_the_contracts_channels_with_its_fields() {
    let functions = sql("functions.sql");
    let mut channels: Vec<&str> = functions
        .match_indices("pg_notify('")
        .map(|(at, m)| {
            let rest = &functions[at + m.len()..];
            &rest[..rest.find('\'').expect("a closing quote")]
        })
        .collect();
    channels.sort_unstable();
    let mut expected = vec![AVATAR_CHANNEL, ADDRESS_CHANNEL];
    expected.sort_unstable();
    assert_eq!(channels, expected);

    let payload = |channel: &str| -> Vec<String> {
        let at = functions.find(&format!("pg_notify('{channel}'")).unwrap();
        let call = &functions[at..];
        let object = &call[call.find("json_build_object(").unwrap()..];
        let object = &object[..object.find("::text").unwrap()];
        // The keys are the literals followed by a comma (a value is an
        // expression, and may hold literals of its own).
        object
            .match_indices('\'')
            .collect::<Vec<_>>()
            .chunks(2)
            .filter_map(|quotes| {
                let (open, close) = (quotes[0].0, quotes.get(1)?.0);
                object[close + 1..]
                    .starts_with(',')
                    .then(|| object[open + 1..close].to_string())
            })
            .collect()
    };
    use notify::{address, avatar};
    assert_eq!(
        payload(AVATAR_CHANNEL),
        [avatar::ID, avatar::RESOURCE, avatar::SHA1]
    );
    assert_eq!(payload(ADDRESS_CHANNEL), [address::MD5, address::SHA256]);
}

#[test]
fn the_fallbacks_prefix_is_the_contracts() {
    for (file, text) in current() {
        for (at, _) in text.match_indices("'libravatar") {
            let literal = &text[at + 1..];
            let literal = &literal[..literal.find('\'').unwrap()];
            assert!(
                literal == FALLBACK_PREFIX || literal == format!("{FALLBACK_PREFIX}%"),
                "{file}: '{literal}' is not {FALLBACK_PREFIX:?}"
            );
        }
    }
}

/// Every error plpgsql raises is of a contract class and carries the
/// marker exactly when its class is the caller's input.
#[test]
fn plpgsql_errors_follow_the_error_contract() {
    let mut raised = 0;
    for (file, text) in current() {
        for (at, m) in text.match_indices("RAISE EXCEPTION '") {
            let statement = &text[at + m.len()..];
            let statement = &statement[..statement.find(';').unwrap()];
            let code = statement
                .split("ERRCODE = '")
                .nth(1)
                .map(|rest| &rest[..5])
                .unwrap_or_else(|| panic!("{file}: RAISE without ERRCODE: {statement}"));
            let class = Class::from_sqlstate(code)
                .unwrap_or_else(|| panic!("{file}: {code} is not a contract class"));
            assert_eq!(
                statement.starts_with(MARKER),
                class.is_invalid_input(),
                "{file}: {statement}"
            );
            raised += 1;
        }
    }
    assert!(raised >= 3, "found the RAISEs ({raised})");
}

/// The MIME types SQL writes (masters are JPEG) are the contract's.
#[test]
fn mime_types_are_the_contracts() {
    let functions = sql("functions.sql");
    let types: Vec<&str> = functions
        .match_indices("'image/")
        .map(|(at, _)| {
            let literal = &functions[at + 1..];
            &literal[..literal.find('\'').unwrap()]
        })
        .collect();
    assert!(!types.is_empty());
    for mime in types {
        assert!(
            Format::ALL.iter().any(|f| f.mime_type() == mime),
            "{mime} is not a contract format's"
        );
    }
}

/// Every list of ratings SQL writes (the CHECK, the arguments it accepts,
/// the order `r=` compares in, the hints) is the contract's, in its order.
#[test]
fn ratings_are_the_contracts_in_its_order() {
    use avatar_contract::Rating;
    let quoted: Vec<String> = Rating::ALL
        .iter()
        .map(|r| format!("'{}'", r.name()))
        .collect();
    let check = format!("CHECK (rating IN ({}))", quoted.join(", "));
    let array = format!("ARRAY[{}]", quoted.join(", "));
    let hint = format!("HINT = 'Use {}.'", Rating::sql_list().replace('\'', "''"));
    for (file, text) in current() {
        let mentions = text.matches("rating").count();
        if mentions == 0 {
            continue;
        }
        if text.contains("rating IN (") {
            assert!(text.contains(&check), "{file} has {check}");
        }
        // Any other spelling of the list would be a second definition.
        assert_eq!(
            text.matches("'pg'").count(),
            text.matches(&check).count()
                + text.matches(&array).count()
                + text.matches(&hint).count(),
            "{file}: every list of ratings is the contract's ({array}, {check} or {hint})"
        );
    }
    let functions = sql("functions.sql");
    assert_eq!(
        functions.matches(&array).count(),
        2,
        "avatar_set_rating and avatar_by_digest"
    );
    assert_eq!(functions.matches(&hint).count(), 2);
}

#[test]
fn the_description_limit_is_the_contracts() {
    use avatar_contract::limits::MAX_DESCRIPTION_CHARS;
    let check = format!("CHECK (char_length(description) <= {MAX_DESCRIPTION_CHARS})");
    assert!(sql("schema.sql").contains(&check), "schema.sql has {check}");
    let functions = sql("functions.sql");
    for copy in [
        format!("char_length($2) > {MAX_DESCRIPTION_CHARS}"),
        format!("over the limit of {MAX_DESCRIPTION_CHARS}"),
        format!("at most {MAX_DESCRIPTION_CHARS} characters"),
    ] {
        assert!(functions.contains(&copy), "functions.sql has {copy}");
    }
    assert_eq!(
        functions.matches("1500").count(),
        3,
        "no other spelling of the limit"
    );
}
