//! Short names for the three entities.

pub use crate::documents::Entity as Documents;
pub use crate::operations::Entity as Operations;
pub use crate::snapshots::Entity as Snapshots;
