//! Time for the runner and executors: a [`Clock`] gives `now` and sleeps until a deadline.
//!
//! The pure machines never read a clock; the runner does, through this trait only, so tests
//! can drive it with a [`ManualClock`] instead of real sleeps. [`SystemClock`] (feature
//! `runtime`) is the real one.
//!
//! ```
//! use batch_core::clock::{Clock, ManualClock};
//! use chrono::{Duration, TimeZone, Utc};
//!
//! let clock = ManualClock::new(Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap());
//! clock.advance(Duration::seconds(90));
//! assert_eq!(clock.now(), Utc.with_ymd_and_hms(2026, 1, 1, 0, 1, 30).unwrap());
//! ```

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};

use crate::model::Timestamp;

/// A boxed, `Send` future, as the object-safe traits of this crate return them.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A source of time.
///
/// `sleep_until` must complete once `now() >= deadline` (at once when it already is).
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// The current time.
    fn now(&self) -> Timestamp;
    /// A future that completes at `deadline`.
    fn sleep_until(&self, deadline: Timestamp) -> BoxFuture<'static, ()>;
}

impl<C: Clock + ?Sized> Clock for Arc<C> {
    fn now(&self) -> Timestamp {
        (**self).now()
    }
    fn sleep_until(&self, deadline: Timestamp) -> BoxFuture<'static, ()> {
        (**self).sleep_until(deadline)
    }
}

impl<C: Clock + ?Sized> Clock for Box<C> {
    fn now(&self) -> Timestamp {
        (**self).now()
    }
    fn sleep_until(&self, deadline: Timestamp) -> BoxFuture<'static, ()> {
        (**self).sleep_until(deadline)
    }
}

#[derive(Debug)]
struct ManualState {
    now: Timestamp,
    sleepers: Vec<(Timestamp, Waker)>,
}

/// A clock that moves only when told to ([`ManualClock::advance`], [`ManualClock::set`]).
///
/// Cloning gives another handle to the same clock. Sleepers wake when the clock passes their
/// deadline; nothing else makes time pass, so tests are deterministic.
#[derive(Debug, Clone)]
pub struct ManualClock {
    state: Arc<Mutex<ManualState>>,
}

impl ManualClock {
    /// A clock standing at `start`.
    pub fn new(start: Timestamp) -> Self {
        ManualClock {
            state: Arc::new(Mutex::new(ManualState {
                now: start,
                sleepers: Vec::new(),
            })),
        }
    }

    /// Moves the clock forward by `by` (a negative duration is ignored) and wakes every
    /// sleeper whose deadline has come.
    pub fn advance(&self, by: chrono::Duration) {
        let now = self.now();
        if let Some(t) = now.checked_add_signed(by.max(chrono::Duration::zero())) {
            self.set(t);
        }
    }

    /// Sets the clock to `t` if that is later than now, waking due sleepers.
    pub fn set(&self, t: Timestamp) {
        let wake: Vec<Waker> = {
            let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            if t > s.now {
                s.now = t;
            }
            let now = s.now;
            let (due, rest): (Vec<_>, Vec<_>) = s.sleepers.drain(..).partition(|(d, _)| *d <= now);
            s.sleepers = rest;
            due.into_iter().map(|(_, w)| w).collect()
        };
        for w in wake {
            w.wake();
        }
    }

    /// The earliest deadline anyone is sleeping until, if any.
    pub fn next_deadline(&self) -> Option<Timestamp> {
        let s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        s.sleepers.iter().map(|(d, _)| *d).min()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .now
    }

    fn sleep_until(&self, deadline: Timestamp) -> BoxFuture<'static, ()> {
        Box::pin(ManualSleep {
            state: Arc::clone(&self.state),
            deadline,
        })
    }
}

struct ManualSleep {
    state: Arc<Mutex<ManualState>>,
    deadline: Timestamp,
}

impl Future for ManualSleep {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if s.now >= self.deadline {
            return Poll::Ready(());
        }
        s.sleepers.push((self.deadline, cx.waker().clone()));
        Poll::Pending
    }
}

/// The real clock: UTC wall time, sleeping with tokio's timer.
#[cfg(feature = "runtime")]
#[cfg_attr(docsrs, doc(cfg(feature = "runtime")))]
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

#[cfg(feature = "runtime")]
impl Clock for SystemClock {
    // The one place batch-core reads the wall clock (STYLE §2).
    #[allow(clippy::disallowed_methods)]
    fn now(&self) -> Timestamp {
        chrono::DateTime::<chrono::Utc>::from(std::time::SystemTime::now())
    }

    fn sleep_until(&self, deadline: Timestamp) -> BoxFuture<'static, ()> {
        let wait = (deadline - self.now())
            .to_std()
            .unwrap_or(std::time::Duration::ZERO);
        Box::pin(tokio::time::sleep(wait))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn manual_sleep_completes_only_after_the_clock_passes_the_deadline() {
        let t0 = chrono::Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let clock = ManualClock::new(t0);
        let mut sleep = clock.sleep_until(t0 + chrono::Duration::seconds(10));
        let waker = Waker::noop();
        let mut cx = Context::from_waker(waker);
        assert!(sleep.as_mut().poll(&mut cx).is_pending());
        assert_eq!(
            clock.next_deadline(),
            Some(t0 + chrono::Duration::seconds(10))
        );
        clock.advance(chrono::Duration::seconds(9));
        assert!(sleep.as_mut().poll(&mut cx).is_pending());
        clock.advance(chrono::Duration::seconds(1));
        assert!(sleep.as_mut().poll(&mut cx).is_ready());
    }
}
