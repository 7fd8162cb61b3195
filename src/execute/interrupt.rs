//! SIGINT and SIGTERM (SPEC "Signals"): no new order starts, long waits stop, temporary
//! containers are removed, and the run exits with 130 (SIGINT) or 143 (SIGTERM). A second
//! signal exits at once.
//!
//! One [`CancellationToken`] per run, held by the [`Runtime`](super::Runtime): every wait that
//! must end on a signal goes through [`Interrupt::race`]; blocking readers poll
//! [`Interrupt::flag`].

use std::future::Future;
use std::sync::{Arc, OnceLock};

use tokio_util::sync::CancellationToken;

use crate::error::Signal;
use crate::execute::{OrderError, OrderResult};

/// Whether, and by which signal, a run was interrupted.
#[derive(Debug, Clone, Default)]
pub struct Interrupt {
    token: CancellationToken,
    /// The first signal; later ones do not replace it.
    signal: Arc<OnceLock<Signal>>,
}

impl Interrupt {
    /// Starts listening for SIGINT and SIGTERM. Call once, inside the runtime.
    pub fn listen(&self) {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut int) = signal(SignalKind::interrupt()) else {
            return;
        };
        let Ok(mut term) = signal(SignalKind::terminate()) else {
            return;
        };
        let this = self.clone();
        tokio::spawn(async move {
            loop {
                let got = tokio::select! {
                    _ = int.recv() => Signal::Interrupt,
                    _ = term.recv() => Signal::Terminate,
                };
                if this.is_set() {
                    crate::output::error(
                        "interrupt",
                        format!("{got} again: exiting without cleaning up"),
                    );
                    std::process::exit(got.exit_code().into());
                }
                crate::output::warn(
                    "interrupt",
                    format!(
                        "{got}: finishing the current step and cleaning up (interrupt again to exit at once)"
                    ),
                );
                this.trigger(got);
            }
        });
    }

    /// Interrupts the run as `signal` does.
    pub fn trigger(&self, signal: Signal) {
        let _ = self.signal.set(signal);
        self.token.cancel();
    }

    /// Whether the run was interrupted.
    pub fn is_set(&self) -> bool {
        self.token.is_cancelled()
    }

    /// The signal that interrupted the run, if one did.
    pub fn signal(&self) -> Option<Signal> {
        self.is_set()
            .then(|| self.signal.get().copied().unwrap_or(Signal::Interrupt))
    }

    /// Fails with `Interrupted` once the run was interrupted.
    pub fn check(&self) -> OrderResult {
        if self.is_set() {
            Err(OrderError::Interrupted)
        } else {
            Ok(())
        }
    }

    /// Runs `work` unless the run is interrupted first (also before it starts): then `work`
    /// is dropped and the result is `Interrupted`.
    pub async fn race<F: Future>(&self, work: F) -> OrderResult<F::Output> {
        self.token
            .run_until_cancelled(work)
            .await
            .ok_or(OrderError::Interrupted)
    }

    /// Sleeps for `d`, unless the run is interrupted first.
    pub async fn sleep(&self, d: std::time::Duration) -> OrderResult {
        self.race(tokio::time::sleep(d)).await
    }

    /// Whether the run was interrupted, for code on another thread that cannot await.
    pub fn flag(&self) -> Box<dyn Fn() -> bool + Send + Sync> {
        let token = self.token.clone();
        Box::new(move || token.is_cancelled())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn race_ends_pending_work_and_remembers_the_first_signal() {
        let interrupt = Interrupt::default();
        assert_eq!(interrupt.race(async { 7 }).await.ok(), Some(7));
        assert!(interrupt.check().is_ok() && interrupt.signal().is_none());

        let pending = interrupt.race(std::future::pending::<()>());
        let trigger = async {
            tokio::task::yield_now().await;
            interrupt.trigger(Signal::Terminate);
        };
        let (result, ()) = tokio::join!(pending, trigger);
        assert!(matches!(result, Err(OrderError::Interrupted)));

        interrupt.trigger(Signal::Interrupt);
        assert_eq!(interrupt.signal(), Some(Signal::Terminate));
        assert!(matches!(interrupt.check(), Err(OrderError::Interrupted)));
        assert!((interrupt.flag())());
        // Work that would finish at once does not start once the run is interrupted.
        assert!(matches!(
            interrupt.race(async { 7 }).await,
            Err(OrderError::Interrupted)
        ));
    }
}
