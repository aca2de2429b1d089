//! Short names for the entities.

pub use crate::documents::Entity as Documents;
pub use crate::operations::Entity as Operations;
pub use crate::revocations::Entity as Revocations;
pub use crate::snapshots::Entity as Snapshots;
