const _: () = {
    impl diesel_avatar::Avatar for Membership {
        type Table = crate::schema::memberships::table;
        fn avatar_resource(&self) -> ::std::string::String {
            diesel_avatar::__private::resource(
                "memberships",
                &[
                    &self.org_id as &dyn ::core::fmt::Display,
                    &self.login as &dyn ::core::fmt::Display,
                ],
            )
        }
        fn avatar_resource_sql() -> diesel_avatar::ResourceSql<Self::Table> {
            diesel_avatar::__private::resource_sql(
                "memberships",
                ::std::vec![
                    diesel_avatar::__private::part(crate ::schema::memberships::org_id),
                    diesel_avatar::__private::part(crate
                    ::schema::memberships::user_login)
                ],
            )
        }
    }
};
