//! The writer queue: `WRITER` or `UPGRADABLE` taken by CAS when free, otherwise handed over
//! by the holder, in arrival order, to the writers and upgradable readers parked for it.

use std::time::Instant;

use gosync_park::sync::Ordering;
use gosync_park::{park, unpark_filter, FilterOp, ParkOptions, ParkResult, SpinWait};

use super::{
    has_passed, RawRwMutex, PARKED_WRITERS, READER, READERS_OVERFLOW, TOKEN_HANDOFF, UPGRADABLE,
    WANTS_WRITE, WRITER, WRITER_KEY,
};

impl RawRwMutex {
    /// Gets `WRITER` (for `WANTS_WRITE`) or `UPGRADABLE` plus one reader (for
    /// `WANTS_UPGRADABLE`), by CAS when neither is held, otherwise by hand-off from the holder
    /// after parking on the writer key. Returns `false` if `deadline` passed first.
    pub(super) fn acquire_claim(&self, wants: usize, deadline: Option<Instant>) -> bool {
        let mut spin = SpinWait::new();
        // Relaxed: the CAS below re-reads the value.
        let mut state = self.state.load(Ordering::Relaxed);
        loop {
            if state & (WRITER | UPGRADABLE) == 0 {
                let new = if wants == WANTS_WRITE {
                    state | WRITER
                } else {
                    if state & READERS_OVERFLOW != 0 {
                        panic!("sync: too many readers");
                    }
                    state + UPGRADABLE + READER
                };
                // Acquire: pairs with the Release of the previous holder's release.
                match self.state.compare_exchange_weak(
                    state,
                    new,
                    Ordering::Acquire,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => return true,
                    Err(actual) => {
                        state = actual;
                        continue;
                    }
                }
            }
            if has_passed(deadline) {
                return false;
            }
            if spin.spin() {
                // Relaxed: as above.
                state = self.state.load(Ordering::Relaxed);
                continue;
            }
            let validate = || self.set_parked_while(PARKED_WRITERS, WRITER | UPGRADABLE);
            let on_abort = |_, was_last| {
                if was_last {
                    // Relaxed: under the writer queue's lock.
                    self.state.fetch_and(!PARKED_WRITERS, Ordering::Relaxed);
                }
            };
            let options = ParkOptions {
                token: wants,
                deadline,
                ..ParkOptions::default()
            };
            match park(self.key(WRITER_KEY), options, validate, || {}, on_abort) {
                ParkResult::Unparked(TOKEN_HANDOFF) => return true,
                ParkResult::TimedOut | ParkResult::Cancelled => return false,
                ParkResult::Unparked(_) | ParkResult::Invalid => spin.reset(),
            }
            // Relaxed: as above.
            state = self.state.load(Ordering::Relaxed);
        }
    }

    /// Gives up `held` (`WRITER`, `UPGRADABLE + READER` or `UPGRADABLE`), handing it over to the
    /// longest waiter on the writer key if there is one. Returns whether `WRITER` is still set
    /// (handed to a writer).
    pub(super) fn pass_on_claim(&self, held: usize) -> bool {
        // Relaxed: the CAS below re-reads the value.
        let mut state = self.state.load(Ordering::Relaxed);
        loop {
            if state & PARKED_WRITERS == 0 {
                // Release: pairs with the Acquire of the next reader or claimant.
                match self.state.compare_exchange_weak(
                    state,
                    state - held,
                    Ordering::Release,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => return false,
                    Err(actual) => {
                        state = actual;
                        continue;
                    }
                }
            }
            let mut handed = None;
            unpark_filter(
                self.key(WRITER_KEY),
                |wants| {
                    if handed.is_some() {
                        return FilterOp::Stop;
                    }
                    let take = if wants == WANTS_WRITE {
                        WRITER
                    } else {
                        UPGRADABLE + READER
                    };
                    // Release: when `WRITER` becomes `UPGRADABLE`, readers may enter through
                    // their fast path reading from this very change: it must publish the
                    // writer's writes to them (the new holder learns them from its wake-up).
                    self.state
                        .fetch_add(take.wrapping_sub(held), Ordering::Release);
                    handed = Some(take);
                    FilterOp::Unpark
                },
                |result| {
                    if !result.have_more {
                        // Relaxed: under the writer queue's lock.
                        self.state.fetch_and(!PARKED_WRITERS, Ordering::Relaxed);
                    }
                    TOKEN_HANDOFF
                },
            );
            if let Some(take) = handed {
                return take == WRITER;
            }
            // Every parked waiter gave up meanwhile; the bit is clear now.
            // Relaxed: as above.
            state = self.state.load(Ordering::Relaxed);
        }
    }
}
