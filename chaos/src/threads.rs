//! The runner of CPU-bound local phases: one OS thread per core, timed per operation.

use std::time::{Duration, Instant};

use crate::budget::Budget;
use crate::stats::{PhaseSummary, Tally, round3};

/// Runs `operation(thread, iteration)` on `threads` threads until `budget` runs out (blocks).
pub fn run_on_threads<F>(threads: usize, budget: &Budget, operation: F) -> PhaseSummary
where
    F: Fn(usize, u64) -> Result<(), String> + Sync,
{
    let started = Instant::now();
    let operation = &operation;
    let tallies: Vec<(Tally, Duration)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads.max(1))
            .map(|thread| scope.spawn(move || thread_loop(thread, budget, operation)))
            .collect();
        workers
            .into_iter()
            .map(|worker| {
                worker
                    .join()
                    .unwrap_or_else(|_| (Tally::panicked(), Duration::ZERO))
            })
            .collect()
    });
    let elapsed = started.elapsed();
    let mut total = Tally::default();
    let mut per_thread = Vec::with_capacity(tallies.len());
    for (tally, thread_elapsed) in tallies {
        per_thread.push(per_second(tally.operations(), thread_elapsed));
        total.merge(tally);
    }
    let mut summary = total.summarize(elapsed);
    summary.threads = Some(per_thread.len());
    summary.per_thread_per_sec = Some(per_thread);
    summary
}

fn thread_loop<F>(thread: usize, budget: &Budget, operation: &F) -> (Tally, Duration)
where
    F: Fn(usize, u64) -> Result<(), String>,
{
    let started = Instant::now();
    let mut tally = Tally::default();
    let mut iteration = 0;
    while budget.claim() {
        let begun = Instant::now();
        match operation(thread, iteration) {
            Ok(()) => tally.success(begun.elapsed()),
            Err(code) => tally.error(&code),
        }
        iteration += 1;
    }
    (tally, started.elapsed())
}

/// Operations per second, zero for an empty interval.
pub fn per_second(operations: u64, elapsed: Duration) -> f64 {
    let seconds = elapsed.as_secs_f64();
    if seconds > 0.0 {
        round3(operations as f64 / seconds)
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threads_share_the_count_and_report_each_rate() {
        let budget = Budget::new(Duration::from_secs(60), 40);
        let summary = run_on_threads(2, &budget, |_, iteration| {
            if iteration % 4 == 3 {
                Err("ODD".to_owned())
            } else {
                Ok(())
            }
        });
        assert_eq!(summary.operations + summary.errors, 40);
        assert_eq!(summary.threads, Some(2));
        assert_eq!(summary.per_thread_per_sec.map(|rates| rates.len()), Some(2));
    }
}
