//! Helpers shared by the benchmark targets in `benches/` (the benchmarks
//! themselves live there).

// Benchmark support, never shipped: a benchmark that cannot start a runtime stops.
#![allow(clippy::missing_panics_doc, clippy::panic)]

/// 2024-01-01T00:00:00Z in microseconds: the start of generated timestamps.
pub const EPOCH_2024_MICROS: i64 = 1_704_067_200_000_000;

/// A deterministic pseudo-random sequence (PCG's LCG step, high bits out), so
/// every run and every target sees the same data.
#[derive(Debug, Clone)]
pub struct Lcg(pub u64);

impl Lcg {
    /// The next value (31 significant bits).
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    /// Uniform-ish in `0..bound`.
    pub fn below(&mut self, bound: u32) -> u32 {
        // `next() % bound` is below `bound`, so it fits.
        u32::try_from(self.next() % u64::from(bound)).unwrap_or(0)
    }
}

/// The PostgreSQL server the benchmarks use: `OBJECTQL_BENCH_POSTGRES_URL`,
/// else `OBJECTQL_TEST_POSTGRES_URL`, else the local default.
pub fn postgres_url() -> String {
    std::env::var("OBJECTQL_BENCH_POSTGRES_URL")
        .or_else(|_| std::env::var("OBJECTQL_TEST_POSTGRES_URL"))
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// The MySQL/MariaDB server the benchmarks use: `OBJECTQL_BENCH_MYSQL_URL`,
/// else `OBJECTQL_TEST_MYSQL_URL`, else the local default.
pub fn mysql_url() -> String {
    std::env::var("OBJECTQL_BENCH_MYSQL_URL")
        .or_else(|_| std::env::var("OBJECTQL_TEST_MYSQL_URL"))
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".to_owned())
}

/// A current-thread tokio runtime: benchmarks measure single-threaded work.
pub fn runtime() -> tokio::runtime::Runtime {
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => panic!("cannot start a tokio runtime: {e}"),
    }
}

/// Runs `ours` and `raw` alternately, `n` times each, and prints
/// `{label} interleaved x{n}: objectql … {raw_name} … ratio …` — the ratio
/// of their total wall times. On a shared 2-core VM the criterion medians of
/// two separately measured functions drift; interleaving cancels the drift.
pub fn interleaved<A, B, FA, FB>(
    rt: &tokio::runtime::Runtime,
    label: &str,
    raw_name: &str,
    n: u32,
    ours: A,
    raw: B,
) where
    A: Fn() -> FA,
    B: Fn() -> FB,
    FA: std::future::Future<Output = ()>,
    FB: std::future::Future<Output = ()>,
{
    use std::time::{Duration, Instant};
    let (mut t_ours, mut t_raw) = (Duration::ZERO, Duration::ZERO);
    rt.block_on(async {
        for _ in 0..n {
            let t = Instant::now();
            ours().await;
            t_ours += t.elapsed();
            let t = Instant::now();
            raw().await;
            t_raw += t.elapsed();
        }
    });
    eprintln!(
        "{label} interleaved x{n}: objectql {:.2?} {raw_name} {:.2?} ratio {:.3}",
        t_ours / n.max(1),
        t_raw / n.max(1),
        t_ours.as_secs_f64() / t_raw.as_secs_f64()
    );
}
