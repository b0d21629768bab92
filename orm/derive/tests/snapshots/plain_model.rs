const _: () = {
    use diesel_avatar::__private::diesel;
    impl diesel_avatar::Avatar for User {
        type Table = users::table;
        fn avatar_resource(&self) -> ::std::string::String {
            diesel_avatar::__private::resource(
                "users",
                &[<i32 as diesel_avatar::AvatarKey>::key_text(&self.id)],
            )
        }
        fn avatar_resource_sql() -> diesel_avatar::ResourceSql<Self::Table> {
            ::std::boxed::Box::new(
                diesel_avatar::__private::avatar_resource(
                    "users",
                    diesel::dsl::array::<
                        diesel::sql_types::Text,
                        _,
                    >((diesel_avatar::__private::part::<i32, _, _>(users::id),)),
                ),
            )
        }
    }
    const _: fn() = || {
        fn is_a_key<K: diesel_avatar::AvatarKey>() {}
        is_a_key::<i32>();
    };
};
