//! Lowering the CPU priority of the calling thread, for background work that must
//! yield to checkouts on a busy machine (backups, webhook deliveries) and still run
//! at full speed on an idle one.

/// Sets the calling thread's niceness (0 normal … 19 lowest). Best effort: where it
/// cannot be set, the thread runs at normal priority and a debug line says so.
pub fn lower_this_thread(nice: i32) {
    if let Err(e) = rustix::process::setpriority_process(Some(rustix::thread::gettid()), nice) {
        tracing::debug!(error = %e, nice, "thread priority not lowered");
    }
}
