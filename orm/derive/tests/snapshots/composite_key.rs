const _: () = {
    use diesel_avatar::__private::diesel;
    impl diesel_avatar::Avatar for Membership {
        type Table = crate::schema::memberships::table;
        fn avatar_resource(&self) -> ::std::string::String {
            diesel_avatar::__private::resource(
                "memberships",
                &[
                    <i64 as diesel_avatar::AvatarKey>::key_text(&self.org_id),
                    <String as diesel_avatar::AvatarKey>::key_text(&self.login),
                ],
            )
        }
        fn avatar_resource_sql() -> diesel_avatar::ResourceSql<Self::Table> {
            ::std::boxed::Box::new(
                diesel_avatar::__private::avatar_resource(
                    "memberships",
                    diesel::dsl::array::<
                        diesel::sql_types::Text,
                        _,
                    >((
                        diesel_avatar::__private::part::<
                            i64,
                            _,
                            _,
                        >(crate::schema::memberships::org_id),
                        diesel_avatar::__private::part::<
                            String,
                            _,
                            _,
                        >(crate::schema::memberships::user_login),
                    )),
                ),
            )
        }
    }
    const _: fn() = || {
        fn is_a_key<K: diesel_avatar::AvatarKey>() {}
        is_a_key::<i64>();
    };
    const _: fn() = || {
        fn is_a_key<K: diesel_avatar::AvatarKey>() {}
        is_a_key::<String>();
    };
};
