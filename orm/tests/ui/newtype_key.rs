use diesel_avatar::Avatar;

diesel::table! {
    users (id) {
        id -> Int4,
    }
}

/// A key whose Display is not its column's text: it would name a resource
/// that the database never computes.
struct UserId(i32);

impl std::fmt::Display for UserId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "user-{}", self.0)
    }
}

#[derive(Avatar)]
struct User {
    id: UserId,
}

fn main() {}
