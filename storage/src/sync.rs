//! Lock helpers shared by every module.

/// Locks `mutex`, recovering the data if a panicking thread poisoned it: every critical
/// section here leaves its data consistent before anything that could panic.
pub(crate) fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
