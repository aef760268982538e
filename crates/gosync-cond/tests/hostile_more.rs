//! Hostile cases for `Cond` beyond the other test files.

use std::sync::Arc;
use std::thread;

use gosync_cond::Cond;
use gosync_context::Context;
use gosync_mutex::Mutex;
use gosync_testkit::{join_within, wait_until, within};

/// `wait_while_ctx` documents `Err` "when [the context] is done before the condition turned
/// `false`". Here the condition turns `false` first (under the lock, without a signal), and only
/// then is the context cancelled: the waiter wakes for the cancellation, holds the lock again,
/// and the condition is `false`, yet it reports `Canceled`. `wait_while_until` in the same
/// situation gives the last word to the condition (`timed_out() == false`).
#[test]
fn wait_while_ctx_gives_the_last_word_to_the_condition() {
    within(|| {
        let shared = Arc::new((Mutex::new(true), Cond::new()));
        let (ctx, cancel) = Context::background().with_cancel();
        let waiter = {
            let shared = Arc::clone(&shared);
            thread::spawn(move || {
                let (flag, cond) = &*shared;
                let mut guard = flag.lock();
                let result = cond.wait_while_ctx(&mut guard, &ctx, |blocked| *blocked);
                (result, *guard)
            })
        };
        let (flag, cond) = &*shared;
        wait_until(|| format!("{cond:?}").contains("has_waiters: true"));
        *flag.lock() = false; // the condition turns false first (no signal)
        cancel.cancel(); // then the context is done
        let (result, blocked) = join_within(waiter);
        assert!(!blocked, "the waiter saw the condition false with the lock held");
        assert_eq!(
            result,
            Ok(()),
            "the condition turned false before the context was done"
        );
    });
}
