use diesel_avatar::Avatar;

diesel::table! {
    tags (name) {
        name -> Text,
    }
}

#[derive(Avatar)]
#[diesel(table_name = tags)]
struct Tag {
    name: String,
}

fn main() {}
