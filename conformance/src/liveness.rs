//! Whether a call lets the runtime's other tasks run while it works.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Runs `work` beside a task that counts its own turns (yielding after
/// each), and returns `work`'s output with the number of turns that task
/// got while `work` ran. On a one-thread runtime a call that never yields
/// (or never awaits something that is not ready) leaves it 0 turns.
pub async fn other_task_turns_during<F: std::future::Future>(work: F) -> (F::Output, u64) {
    let turns = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let ticker = tokio::spawn({
        let (turns, stop) = (Arc::clone(&turns), Arc::clone(&stop));
        async move {
            while !stop.load(Ordering::Relaxed) {
                turns.fetch_add(1, Ordering::Relaxed);
                tokio::task::yield_now().await;
            }
        }
    });
    // Let it start, so only turns taken during `work` are counted.
    tokio::task::yield_now().await;
    let before = turns.load(Ordering::Relaxed);
    let out = work.await;
    let during = turns.load(Ordering::Relaxed) - before;
    stop.store(true, Ordering::Relaxed);
    // The ticker only stops; it cannot fail.
    let _ = ticker.await;
    (out, during)
}
