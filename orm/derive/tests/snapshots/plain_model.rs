const _: () = {
    impl diesel_avatar::Avatar for User {
        type Table = users::table;
        fn avatar_resource(&self) -> ::std::string::String {
            diesel_avatar::__private::resource(
                "users",
                &[&self.id as &dyn ::core::fmt::Display],
            )
        }
        fn avatar_resource_sql() -> diesel_avatar::ResourceSql<Self::Table> {
            diesel_avatar::__private::resource_sql(
                "users",
                ::std::vec![diesel_avatar::__private::part(users::id)],
            )
        }
    }
};
