use diesel_avatar::Avatar;

diesel::table! {
    users (id) {
        id -> Int4,
    }
}

#[derive(Avatar)]
#[avatar(sizes(64, 128))]
struct User {
    id: i32,
}

fn main() {}
