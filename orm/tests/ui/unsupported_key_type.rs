use diesel_avatar::Avatar;

diesel::table! {
    readings (at) {
        at -> Timestamp,
    }
}

#[derive(Avatar)]
#[diesel(table_name = readings, primary_key(at))]
struct Reading {
    at: String,
}

fn main() {}
