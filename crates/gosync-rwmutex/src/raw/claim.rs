//! The writer queue: `WRITER` or `UPGRADABLE` taken by CAS when free, otherwise handed over
//! by the holder, in arrival order, to the writers and upgradable readers parked for it.

use std::cell::Cell;

use gosync_park::sync::{fence, Ordering};
use gosync_park::{
    park_while_with_token, unpark_filter, FilterOp, ParkResult, ParkedBits, SpinWait,
};

use super::{
    GiveUp, RawRwMutex, PARKED_WRITERS, QUEUED_WRITER, READER, READERS_OVERFLOW, TICKET_STEP,
    TOKEN_HANDOFF, TOKEN_RETRY, UPGRADABLE, WANTS_MASK, WANTS_UPGRADABLE, WANTS_WRITE, WRITER,
    WRITER_KEY,
};

impl RawRwMutex {
    /// Gets `WRITER` (for `WANTS_WRITE`) or `UPGRADABLE` plus one reader (for
    /// `WANTS_UPGRADABLE`), by CAS when neither is held, otherwise by hand-off from the holder
    /// after parking on the writer key. Returns `false` if `give_up` came first.
    ///
    /// A parked writer sets `QUEUED_WRITER`, which holds new readers back also while an
    /// upgradable reader holds the lock (Go's writer preference).
    #[track_caller]
    pub(super) fn acquire_claim(&self, wants: usize, give_up: GiveUp<'_>) -> bool {
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
            if give_up.has_come() {
                return false;
            }
            if spin.spin() {
                // Relaxed: as above.
                state = self.state.load(Ordering::Relaxed);
                continue;
            }
            let parked = if wants == WANTS_WRITE {
                PARKED_WRITERS | QUEUED_WRITER
            } else {
                PARKED_WRITERS
            };
            // A writer's token carries a ticket, taken under the queue's lock (so tickets follow
            // the queue's order) just before the park sets `QUEUED_WRITER`.
            let token = || {
                if wants != WANTS_WRITE {
                    return WANTS_UPGRADABLE;
                }
                // Relaxed: taken under the writer queue's lock, like every ticket, and published
                // by the fence below.
                let ticket = self
                    .writer_tickets
                    .fetch_add(TICKET_STEP, Ordering::Relaxed);
                // Release: pairs with the Acquire fence of a reader that parks after seeing the
                // `QUEUED_WRITER` this park sets, so that the reader's ticket comes after this
                // one. (If an earlier writer had set it, that reader may not see this ticket:
                // it has not seen this writer queue either, and may go first.)
                fence(Ordering::Release);
                ticket | WANTS_WRITE
            };
            match park_while_with_token(
                &self.state,
                self.key(WRITER_KEY),
                parked,
                |state| state & (WRITER | UPGRADABLE) != 0,
                token,
                give_up.park_options(0),
            ) {
                ParkResult::Unparked(TOKEN_HANDOFF) => return true,
                ParkResult::TimedOut | ParkResult::Cancelled => {
                    if wants == WANTS_WRITE {
                        self.writer_left_queue();
                    }
                    return false;
                }
                ParkResult::Unparked(_) | ParkResult::Invalid => spin.reset(),
            }
            // Relaxed: as above.
            state = self.state.load(Ordering::Relaxed);
        }
    }

    /// Gives up `held` (`WRITER`, `UPGRADABLE + READER` or `UPGRADABLE`), handing it over to the
    /// longest waiter on the writer key if there is one. Returns whether `WRITER` is still set
    /// (handed to a writer).
    #[track_caller]
    pub(super) fn pass_on_claim(&self, held: usize) -> bool {
        // Relaxed: the CAS below re-reads the value; `UPGRADABLE` is the caller's own bit (or,
        // misused, nobody's), which no other thread clears.
        let mut state = self.state.load(Ordering::Relaxed);
        if held & UPGRADABLE != 0 && state & UPGRADABLE == 0 {
            panic!("sync: release of a RwMutex not locked upgradable");
        }
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
            let writer_behind = Cell::new(false);
            unpark_filter(
                self.key(WRITER_KEY),
                |token| {
                    let wants = token & WANTS_MASK;
                    if handed.is_some() {
                        // Only looks on, for a writer still queued after the one handed over.
                        writer_behind.set(wants == WANTS_WRITE);
                        return if writer_behind.get() {
                            FilterOp::Stop
                        } else {
                            FilterOp::Skip
                        };
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
                    let mut gone = if writer_behind.get() {
                        0
                    } else {
                        QUEUED_WRITER
                    };
                    if !result.have_more {
                        gone |= PARKED_WRITERS;
                    }
                    // A `QUEUED_WRITER` cleared here either went with the writer handed
                    // `WRITER` or was left by a writer that gave up, which lets in the readers
                    // it held back (`writer_left_queue`).
                    self.state.clear_parked(gone);
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

    /// After a writer left the writer queue without the lock (its deadline passed or its
    /// context is done): keeps `QUEUED_WRITER` only if another writer is still queued, and lets
    /// in the parked readers that no writer still queued came before (and the ones about to
    /// park), so that nothing of the writer that gave up stays behind. They are counted in by
    /// this thread rather than woken to try again, which a writer queueing meanwhile would send
    /// back to sleep behind it.
    #[cold]
    fn writer_left_queue(&self) {
        let bound = self.admission_bound(|writer_queued| {
            if !writer_queued {
                self.state.clear_parked(QUEUED_WRITER);
            }
        });
        self.admit_readers_up_to(bound);
    }

    /// The latest ticket that a parked reader may hold to go in now (see
    /// `RawRwMutex::writer_tickets`): the first queued writer's, or, with none queued, the next
    /// ticket to be taken. Read under the writer queue's lock, where every ticket is taken and
    /// `then` runs (told whether a writer is queued): a writer that queues afterwards takes a
    /// later ticket, and a reader that parks after seeing it queued holds a later one still.
    pub(super) fn admission_bound(&self, then: impl FnOnce(bool)) -> usize {
        let first_writer = Cell::new(None::<usize>);
        let mut bound = 0;
        unpark_filter(
            self.key(WRITER_KEY),
            |token| {
                if token & WANTS_MASK == WANTS_WRITE {
                    first_writer.set(Some(token & !WANTS_MASK));
                    FilterOp::Stop // queue order is ticket order
                } else {
                    FilterOp::Skip
                }
            },
            |_| {
                bound = match first_writer.get() {
                    Some(ticket) => ticket,
                    // Relaxed: every ticket is taken under this lock, which we hold.
                    None => self.writer_tickets.load(Ordering::Relaxed),
                };
                then(first_writer.get().is_some());
                TOKEN_RETRY
            },
        );
        bound
    }
}
