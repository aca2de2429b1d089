//! Schema migrations of Collab-Engine, run at start-up by the server (unless
//! `database.run_migrations = false`) through [`Migrator`].

pub use sea_orm_migration::prelude::*;

mod m20261125_000001_create_tables;
mod m20261201_000001_longer_document_ids;
mod m20261201_000002_access_control;
mod m20261201_000003_versions;
mod m20261201_000004_client_progress;

/// Applies every migration of Collab-Engine in order.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261125_000001_create_tables::Migration),
            Box::new(m20261201_000001_longer_document_ids::Migration),
            Box::new(m20261201_000002_access_control::Migration),
            Box::new(m20261201_000003_versions::Migration),
            Box::new(m20261201_000004_client_progress::Migration),
        ]
    }
}
