//! Work that goes on beside the agent loop (the step notifications), driven by hand.
//!
//! The SDK's executor rejects a waker invoked by anything but itself, and `FuturesUnordered`
//! wakes itself to yield, so the workflow cannot use it. Here every pending future is polled, in
//! the order it was started, whenever the workflow is polled: nothing but the SDK wakes anything,
//! and the commands come out in the same order on every replay.

use futures::future::LocalBoxFuture;
use std::future::{Future, poll_fn};
use std::pin::pin;
use std::task::{Context, Poll};

#[derive(Default)]
pub(crate) struct InFlight<'a> {
    pending: Vec<LocalBoxFuture<'a, ()>>,
}

impl<'a> InFlight<'a> {
    /// Adds `work`; it first runs (issues its commands) on the next poll.
    pub(crate) fn start(&mut self, work: impl Future<Output = ()> + 'a) {
        self.pending.push(Box::pin(work));
    }

    /// Runs `main` to completion while the work in flight makes progress; `main` is polled
    /// first. Work still pending when `main` is done stays in flight.
    pub(crate) async fn alongside<T>(&mut self, main: impl Future<Output = T>) -> T {
        let mut main = pin!(main);
        poll_fn(|cx| {
            let output = main.as_mut().poll(cx);
            self.poll_pending(cx);
            output
        })
        .await
    }

    /// Waits for all the work in flight.
    pub(crate) async fn finish(&mut self) {
        poll_fn(|cx| {
            self.poll_pending(cx);
            if self.pending.is_empty() {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await
    }

    fn poll_pending(&mut self, cx: &mut Context<'_>) {
        self.pending
            .retain_mut(|work| work.as_mut().poll(cx).is_pending());
    }
}

/// Runs `all` side by side (their commands go out together, in order) and returns their outputs
/// in the same order; polled like [`InFlight`], so only the SDK wakes anything.
pub(crate) async fn all_in_order<'a, T>(all: Vec<LocalBoxFuture<'a, T>>) -> Vec<T> {
    let mut pending: Vec<Option<LocalBoxFuture<'a, T>>> = all.into_iter().map(Some).collect();
    let mut done: Vec<Option<T>> = pending.iter().map(|_| None).collect();
    poll_fn(|cx| {
        for (slot, output) in pending.iter_mut().zip(done.iter_mut()) {
            if let Some(work) = slot
                && let Poll::Ready(value) = work.as_mut().poll(cx)
            {
                *output = Some(value);
                *slot = None;
            }
        }
        if pending.iter().all(Option::is_none) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await;
    done.into_iter().flatten().collect()
}
