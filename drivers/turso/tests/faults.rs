//! Issue 13's fault target for the Turso driver's network modes: seeded
//! random cancellation over every write path against the libSQL server,
//! remote and embedded replica. (File and `:memory:` run the SQLite
//! engine's own code, whose 500-point test is in the SQLite driver.)

use std::sync::Arc;
use std::time::Duration;

use objectql::{Engine, IsolationLevel, record};
use objectql_conformance::faults::{CutPlan, random_cuts, seed_from_env};
use objectql_driver_turso::TursoDriver;

use crate::common::{
    ServerLock, give_back_replica_file, remote_options, replica_options, take_replica_file, wipe,
};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn plan(seed: u64) -> CutPlan {
    CutPlan {
        iterations: 500,
        seed,
        max_cut: Duration::from_millis(25),
        max_batch: 1_500,
        isolation: IsolationLevel::Serializable,
    }
}

/// After the cuts, the server takes a write from another client. A cut
/// transaction's stream is closed by the client when it can (its last
/// handle dropped sends the baton), and otherwise expires on the server
/// (`sqld`: 10 s of inactivity), releasing the write lock: the write is
/// tried for up to 30 s.
async fn server_takes_a_write(seed: u64) {
    let other = Engine::new();
    other
        .add_driver(
            "default",
            Arc::new(TursoDriver::open(remote_options()).await.unwrap()),
        )
        .unwrap();
    other
        .register(objectql_conformance::faults::cuts_schema())
        .await
        .unwrap();
    let db = other.default_session();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        match db
            .insert("cuts", record! {"id" => "after", "n" => -1})
            .await
        {
            Ok(_) => break,
            Err(e) if std::time::Instant::now() < deadline => {
                eprintln!("seed {seed}: the server does not take a write yet: {e}");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => panic!("seed {seed}: the server refused a write 30 s after the cuts: {e}"),
        }
    }
    other.close().await.unwrap();
}

#[test]
fn remote_random_cancellations_leave_no_partial_writes() {
    let _turn = ServerLock::take();
    rt().block_on(async {
        wipe().await.unwrap();
        let seed = seed_from_env(0x7e50_c075);
        let engine = Engine::new();
        engine
            .add_driver(
                "default",
                Arc::new(TursoDriver::open(remote_options()).await.unwrap()),
            )
            .unwrap();
        let report = random_cuts(&engine, plan(seed)).await.unwrap();
        assert!(
            report.cut >= 50,
            "seed {seed}: too few calls were cut: {report:?}"
        );
        assert!(
            report.finished >= 50,
            "seed {seed}: too few calls finished: {report:?}"
        );
        engine.close().await.unwrap();
        server_takes_a_write(seed).await;
        wipe().await.unwrap();
    });
}

#[test]
fn replica_random_cancellations_leave_no_partial_writes() {
    let _turn = ServerLock::take();
    rt().block_on(async {
        wipe().await.unwrap();
        let seed = seed_from_env(0x7e50_c076);
        let path = take_replica_file();
        let engine = Engine::new();
        engine
            .add_driver(
                "default",
                Arc::new(TursoDriver::open(replica_options(&path)).await.unwrap()),
            )
            .unwrap();
        let report = random_cuts(&engine, plan(seed)).await.unwrap();
        assert!(
            report.cut >= 50,
            "seed {seed}: too few calls were cut: {report:?}"
        );
        assert!(
            report.finished >= 50,
            "seed {seed}: too few calls finished: {report:?}"
        );
        engine.close().await.unwrap();
        drop(engine);
        give_back_replica_file(path);
        server_takes_a_write(seed).await;
        wipe().await.unwrap();
    });
}
