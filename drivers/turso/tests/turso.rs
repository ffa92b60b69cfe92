//! The Turso driver's tests, one binary: the whole conformance suite in
//! every mode (file, `:memory:`, remote and embedded replica against a real
//! libSQL server), the differential property test against the memory
//! driver, and the driver's own tests (modes, URLs, tokens, replica sync,
//! tenant routing, vectors).
//!
//! The server comes from `OBJECTQL_TURSO_URL` and `OBJECTQL_TURSO_AUTH_TOKEN`
//! (`scripts/test` starts `sqld`, the libSQL server, with JWT auth and sets
//! both). Without them the remote and replica tests fail with a message
//! saying so: nothing is skipped.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::missing_panics_doc,
    missing_docs
)]

mod common;
mod differential;
mod faults;
mod modes;
mod tenants;
mod vectors;

use std::sync::Arc;

use common::{ServerLock, dir, remote_options, wipe};
use objectql_conformance::{Harness, async_trait};
use objectql_driver_turso::{TursoDriver, TursoOptions};

/// Each case in its own database file.
struct FileHarness;

#[async_trait]
impl Harness for FileHarness {
    fn name(&self) -> String {
        "turso (file)".into()
    }

    async fn connect(&self, namespace: &str) -> objectql::Result<Arc<dyn objectql::Driver>> {
        let path = dir().join(format!("{namespace}.db"));
        Ok(Arc::new(TursoDriver::open(TursoOptions::file(path)).await?))
    }

    async fn cleanup(&self, namespace: &str) -> objectql::Result<()> {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(dir().join(format!("{namespace}.db{suffix}")));
        }
        Ok(())
    }
}

/// Each case in its own `:memory:` database.
struct MemoryHarness;

#[async_trait]
impl Harness for MemoryHarness {
    fn name(&self) -> String {
        "turso (memory)".into()
    }

    async fn connect(&self, _namespace: &str) -> objectql::Result<Arc<dyn objectql::Driver>> {
        Ok(Arc::new(
            TursoDriver::open(TursoOptions::in_memory()).await?,
        ))
    }
}

/// The server's database, one case at a time (a server — a real Turso
/// database too — is one database: cases take turns and each starts from
/// an empty one).
struct RemoteHarness {
    _turn: ServerLock,
}

#[async_trait]
impl Harness for RemoteHarness {
    fn name(&self) -> String {
        "turso (remote)".into()
    }

    async fn connect(&self, _namespace: &str) -> objectql::Result<Arc<dyn objectql::Driver>> {
        let driver = TursoDriver::open(remote_options()).await?;
        Ok(Arc::new(driver))
    }

    async fn cleanup(&self, _namespace: &str) -> objectql::Result<()> {
        wipe().await
    }
}

/// Embedded replicas of the server's database, one case at a time. A
/// replica file is reused by later cases (as a deployed replica would be):
/// a new file would replay the primary's whole history on its first sync.
struct ReplicaHarness {
    _turn: ServerLock,
    files: std::sync::Mutex<std::collections::HashMap<String, std::path::PathBuf>>,
}

impl ReplicaHarness {
    fn take() -> Self {
        Self {
            _turn: ServerLock::take(),
            files: std::sync::Mutex::default(),
        }
    }
}

#[async_trait]
impl Harness for ReplicaHarness {
    fn name(&self) -> String {
        "turso (replica)".into()
    }

    async fn connect(&self, namespace: &str) -> objectql::Result<Arc<dyn objectql::Driver>> {
        let path = common::take_replica_file();
        self.files
            .lock()
            .unwrap()
            .insert(namespace.to_owned(), path.clone());
        let driver = TursoDriver::open(common::replica_options(&path)).await?;
        Ok(Arc::new(driver))
    }

    async fn cleanup(&self, namespace: &str) -> objectql::Result<()> {
        let wiped = wipe().await;
        if let Some(path) = self.files.lock().unwrap().remove(namespace) {
            common::give_back_replica_file(path);
        }
        wiped
    }
}

mod file_mode {
    use super::*;

    objectql_conformance::conformance_suite!(FileHarness);
}

mod memory_mode {
    use super::*;

    objectql_conformance::conformance_suite!(MemoryHarness);
}

mod remote_mode {
    use super::*;

    objectql_conformance::conformance_suite!(RemoteHarness {
        _turn: ServerLock::take()
    });
}

mod replica_mode {
    use super::*;

    objectql_conformance::conformance_suite!(ReplicaHarness::take());
}
