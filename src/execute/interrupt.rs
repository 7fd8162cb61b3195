//! SIGINT and SIGTERM (SPEC "Signals"): no new order starts, long waits stop, temporary
//! containers are removed, and the run exits with 130. A second signal exits at once.

use std::sync::LazyLock;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::Notify;

static INTERRUPTED: AtomicBool = AtomicBool::new(false);
static NOTIFY: LazyLock<Notify> = LazyLock::new(Notify::new);

/// Starts listening for SIGINT and SIGTERM. Call once, inside the runtime.
pub fn install() {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut int) = signal(SignalKind::interrupt()) else {
        return;
    };
    let Ok(mut term) = signal(SignalKind::terminate()) else {
        return;
    };
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
            if INTERRUPTED.swap(true, Ordering::SeqCst) {
                crate::output::error(
                    "interrupt",
                    "interrupted again: exiting without cleaning up",
                );
                std::process::exit(130);
            }
            crate::output::warn(
                "interrupt",
                "interrupted: finishing the current step and cleaning up (interrupt again to exit at once)",
            );
            NOTIFY.notify_waiters();
        }
    });
}

/// Whether the run was interrupted.
pub fn is_set() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Resolves when the run is interrupted (at once if it already was).
pub async fn wait() {
    loop {
        let notified = NOTIFY.notified();
        if is_set() {
            return;
        }
        notified.await;
        if is_set() {
            return;
        }
    }
}
