use diesel_avatar::Avatar;

diesel::table! {
    people (person_id) {
        person_id -> Int4,
    }
}

#[derive(Avatar)]
#[diesel(table_name = people, primary_key(person_id))]
struct Person {
    id: i32,
}

fn main() {}
