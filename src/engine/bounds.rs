//! No engine call hangs for ever (SPEC "Command line"): a call that should answer promptly
//! fails after `DSTART_HTTP_TIMEOUT` seconds (default 60, like `COMPOSE_HTTP_TIMEOUT`); a
//! stream (build, pull, push, archives, logs without follow) fails when no data arrives for
//! that long. Waits a unit asks for (attach, `wait`, a command's run, `ready:`) are bounded by
//! their own timeouts, not here. The error names the engine and the call.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::{Stream, StreamExt};

use super::{Engine, EngineError};

/// The variable that sets the bound, in seconds.
pub const HTTP_TIMEOUT_VAR: &str = "DSTART_HTTP_TIMEOUT";

/// The bound when `DSTART_HTTP_TIMEOUT` is not set.
pub const DEFAULT_HTTP_TIMEOUT: Duration = Duration::from_secs(60);

/// Reads `DSTART_HTTP_TIMEOUT` as given (`None`: not set): whole seconds, at least 1.
pub fn http_timeout(text: Option<&str>) -> Result<Duration, String> {
    match text.map(str::trim).filter(|t| !t.is_empty()) {
        None => Ok(DEFAULT_HTTP_TIMEOUT),
        Some(t) => t
            .parse::<u64>()
            .ok()
            .filter(|s| (1..=86_400).contains(s))
            .map(Duration::from_secs)
            .ok_or_else(|| {
                format!("{HTTP_TIMEOUT_VAR} is `{t}`; give whole seconds from 1 to 86400")
            }),
    }
}

/// A boxed stream of results.
type Bounded<T> = Pin<Box<dyn Stream<Item = Result<T, EngineError>> + Send>>;

impl Engine {
    /// The bound on every prompt answer and on every gap in a stream.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    pub(super) fn timed_out(&self, call: &str, stream: bool) -> EngineError {
        EngineError::Timeout {
            address: self.address.clone(),
            call: call.to_string(),
            secs: self.timeout.as_secs(),
            stream,
        }
    }

    /// `fut`, failing when it does not finish within the bound (plus `extra`: a stop's grace
    /// period).
    pub(super) async fn bounded<T>(
        &self,
        call: impl AsRef<str>,
        extra: Duration,
        fut: impl Future<Output = Result<T, EngineError>>,
    ) -> Result<T, EngineError> {
        match tokio::time::timeout(self.timeout + extra, fut).await {
            Ok(result) => result,
            Err(_) => Err(self.timed_out(call.as_ref(), false)),
        }
    }

    /// A bollard call, failing when it does not answer within the bound. The call's own
    /// error is left for the caller to classify.
    pub(super) async fn within<T>(
        &self,
        call: &str,
        fut: impl Future<Output = Result<T, bollard::errors::Error>>,
    ) -> Result<Result<T, bollard::errors::Error>, EngineError> {
        tokio::time::timeout(self.timeout, fut)
            .await
            .map_err(|_| self.timed_out(call, false))
    }

    /// The next item of `stream`, failing when none arrives within the bound.
    pub(super) async fn next_within<S: Stream + Unpin>(
        &self,
        stream: &mut S,
        call: &str,
    ) -> Result<Option<S::Item>, EngineError> {
        tokio::time::timeout(self.timeout, stream.next())
            .await
            .map_err(|_| self.timed_out(call, true))
    }

    /// `stream`, failing (and ending) when no item arrives within the bound.
    pub(super) fn idle<T: Send + 'static>(
        &self,
        call: &str,
        stream: impl Stream<Item = Result<T, EngineError>> + Send + 'static,
    ) -> Bounded<T> {
        let timeout = self.timeout;
        let error = self.timed_out(call, true);
        Box::pin(futures_util::stream::unfold(
            Some(Box::pin(stream)),
            move |state| {
                let error = error.clone();
                async move {
                    let mut stream = state?;
                    match tokio::time::timeout(timeout, stream.next()).await {
                        Ok(Some(item)) => Some((item, Some(stream))),
                        Ok(None) => None,
                        Err(_) => Some((Err(error), None)),
                    }
                }
            },
        ))
    }

    /// Runs `work`, failing when `activity` has seen nothing for the bound: for calls whose
    /// request body is a stream (an upload, a build's context) and whose answer may come
    /// after all of it was sent.
    pub(super) async fn watched<T>(
        &self,
        call: &str,
        activity: &Activity,
        work: impl Future<Output = Result<T, EngineError>>,
    ) -> Result<T, EngineError> {
        tokio::pin!(work);
        let mut tick = tokio::time::interval((self.timeout / 4).min(Duration::from_secs(1)));
        loop {
            tokio::select! {
                result = &mut work => return result,
                _ = tick.tick() => {
                    if activity.idle() > self.timeout {
                        return Err(self.timed_out(call, true));
                    }
                }
            }
        }
    }
}

/// When a stream last moved (a chunk of a request body taken, an item of an answer read).
#[derive(Clone)]
pub(super) struct Activity {
    start: Instant,
    last_ms: Arc<AtomicU64>,
}

impl Activity {
    pub(super) fn new() -> Activity {
        Activity {
            start: Instant::now(),
            last_ms: Arc::new(AtomicU64::new(0)),
        }
    }

    pub(super) fn touch(&self) {
        let ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    fn idle(&self) -> Duration {
        self.start
            .elapsed()
            .saturating_sub(Duration::from_millis(self.last_ms.load(Ordering::Relaxed)))
    }

    /// `stream`, touching this activity with every item taken from it.
    pub(super) fn track<S: Stream>(&self, stream: S) -> impl Stream<Item = S::Item> + use<S> {
        let activity = self.clone();
        stream.inspect(move |_| activity.touch())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_timeout_is_whole_seconds() {
        assert_eq!(http_timeout(None).unwrap(), Duration::from_secs(60));
        assert_eq!(http_timeout(Some("")).unwrap(), Duration::from_secs(60));
        assert_eq!(http_timeout(Some(" 5 ")).unwrap(), Duration::from_secs(5));
        for bad in ["0", "-1", "1.5", "inf", "x", "86401"] {
            let err = http_timeout(Some(bad)).unwrap_err();
            assert!(err.starts_with("DSTART_HTTP_TIMEOUT is `"), "{err}");
        }
    }
}
