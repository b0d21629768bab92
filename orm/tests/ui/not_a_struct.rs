use diesel_avatar::Avatar;

#[derive(Avatar)]
enum Role {
    Admin,
    User,
}

fn main() {}
