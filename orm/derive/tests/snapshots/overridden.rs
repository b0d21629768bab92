const _: () = {
    impl diesel_avatar::Avatar for ResUser {
        type Table = res_users::table;
        fn avatar_resource(&self) -> ::std::string::String {
            diesel_avatar::__private::resource(
                "res.user",
                &[&self.uid as &dyn ::core::fmt::Display],
            )
        }
        fn avatar_resource_sql() -> diesel_avatar::ResourceSql<Self::Table> {
            diesel_avatar::__private::resource_sql(
                "res.user",
                ::std::vec![diesel_avatar::__private::part(res_users::uid)],
            )
        }
    }
};
