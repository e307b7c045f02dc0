//! A fresh PostgreSQL database on a server, for one test or one benchmark run: created empty,
//! dropped when asked. Names are plain identifiers, so they can be spliced into the DDL.

use crate::StoreError;
use sqlx::{Connection, Executor};

pub struct ScratchDatabase {
    server: String,
    name: String,
    /// The new database's URL (the server's, with this database as its path).
    pub url: String,
}

impl ScratchDatabase {
    /// `server`: a `postgres://` URL whose user may create databases; `name`: lower-case
    /// letters, digits and `_`. An old database of that name is dropped first.
    pub async fn create(server: &str, name: &str) -> Result<Self, StoreError> {
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            return Err(StoreError::Scratch(format!(
                "{name:?} is not a plain database name"
            )));
        }
        let mut url = url::Url::parse(server)
            .map_err(|e| StoreError::Scratch(format!("the server URL does not parse: {e}")))?;
        sqlx::any::install_default_drivers();
        let mut admin = sqlx::AnyConnection::connect(server).await?;
        admin
            .execute(format!("DROP DATABASE IF EXISTS {name}").as_str())
            .await?;
        admin
            .execute(format!("CREATE DATABASE {name}").as_str())
            .await?;
        admin.close().await?;
        url.set_path(name);
        Ok(Self {
            server: server.to_owned(),
            name: name.to_owned(),
            url: url.to_string(),
        })
    }

    /// Drops it; every connection to it must be closed first.
    pub async fn drop_database(self) -> Result<(), StoreError> {
        let mut admin = sqlx::AnyConnection::connect(&self.server).await?;
        admin
            .execute(format!("DROP DATABASE IF EXISTS {}", self.name).as_str())
            .await?;
        admin.close().await?;
        Ok(())
    }
}
