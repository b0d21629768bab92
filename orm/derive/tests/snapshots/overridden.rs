const _: () = {
    use diesel_avatar::__private::diesel;
    impl diesel_avatar::Avatar for ResUser {
        type Table = res_users::table;
        fn avatar_resource(&self) -> ::std::string::String {
            diesel_avatar::__private::resource(
                "res.user",
                &[<uuid::Uuid as diesel_avatar::AvatarKey>::key_text(&self.uid)],
            )
        }
        fn avatar_resource_sql() -> diesel_avatar::ResourceSql<Self::Table> {
            ::std::boxed::Box::new(
                diesel_avatar::__private::avatar_resource(
                    "res.user",
                    diesel::dsl::array::<
                        diesel::sql_types::Text,
                        _,
                    >((
                        diesel_avatar::__private::part::<
                            uuid::Uuid,
                            _,
                            _,
                        >(res_users::uid),
                    )),
                ),
            )
        }
    }
    const _: fn() = || {
        fn is_a_key<K: diesel_avatar::AvatarKey>() {}
        is_a_key::<uuid::Uuid>();
    };
};
