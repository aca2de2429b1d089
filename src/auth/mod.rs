//! Access control: who may read or write which document.
//!
//! - [`authorizer`]: the [`Authorizer`] seam (a host application passes its
//!   own), [`AllowAll`] (`auth.mode = "none"`) and [`TokenAuthorizer`]
//!   (`auth.mode = "token"`);
//! - [`token`]: the JWT access tokens, checked and minted;
//! - [`grants`]: the `docs` claim, document id or prefix to permission;
//! - [`revocations`]: revoked subjects and tokens.
//!
//! What a session may do once connected ([`crate::vocabulary::Access`]) is
//! enforced by the protocols (read-only), the transport (expiry) and the
//! document (a client id belongs to the subject that first wrote with it).

pub mod authorizer;
pub mod grants;
pub mod revocations;
pub mod token;

pub use authorizer::{
    AllowAll, Authorizer, Denied, TokenAuthorizer, bearer_header, bearer_token, same_secret,
};
pub use grants::{Grants, permission_for};
pub use revocations::{Revocation, Revocations};
pub use token::{Claims, EmptySecret, MintedToken, TokenError, TokenKeys, unix_now};
