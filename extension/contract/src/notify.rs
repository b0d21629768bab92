//! The notifications pg_avatar sends, and their JSON payloads' fields.
//! The SQL triggers that send them are tested against these names.

/// A new avatar, new image, disable, enable, wipe or delete:
/// `{"id": uuid, "resource": text, "sha1": text or null}`.
pub const AVATAR_CHANNEL: &str = "avatar_changed";

/// An address digest may now lead to another avatar, or none:
/// `{"md5": text, "sha256": text}`.
pub const ADDRESS_CHANNEL: &str = "avatar_address_changed";

/// The fields of [`AVATAR_CHANNEL`]'s payload.
pub mod avatar {
    pub const ID: &str = "id";
    pub const RESOURCE: &str = "resource";
    /// Null once the avatar is gone or disabled.
    pub const SHA1: &str = "sha1";
}

/// The fields of [`ADDRESS_CHANNEL`]'s payload.
pub mod address {
    pub const MD5: &str = "md5";
    pub const SHA256: &str = "sha256";
}
