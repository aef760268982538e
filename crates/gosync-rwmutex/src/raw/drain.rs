//! A writer holding `WRITER` waits for the readers inside (in the word or in the shards) to
//! leave.

use gosync_park::sync::{fence, Ordering};
use gosync_park::{park, ParkResult, ParkedBits, SpinWait};

use crate::shards::ShardsSeen;

use super::{GiveUp, RawRwMutex, ReadersSeen, DRAIN_KEY, PARKED_DRAIN, READERS_MASK, SHARDED};

impl RawRwMutex {
    /// With `WRITER` held by the caller, what it finds of the readers, given `state`, a value
    /// of the word read after `WRITER` was set.
    fn readers_seen(&self, state: usize) -> ReadersSeen {
        if state & READERS_MASK != 0 {
            return ReadersSeen::Inside;
        }
        if state & SHARDED == 0 {
            return ReadersSeen::Gone;
        }
        // SeqCst: pairs with a reader's SeqCst shard increment and look at the word, and with a
        // leaving reader's SeqCst decrement and look (see the notes at the top).
        fence(Ordering::SeqCst);
        let ShardsSeen::Empty { entered } = self.shards.look() else {
            return ReadersSeen::Inside;
        };
        // A guard moving its lock from a shard into the word counts itself there first
        // (`count_in_word`): look at the word again. Acquire: pairs with the Release decrement of
        // that shard, which `look` read, and with the Release fetch_sub of readers leaving the
        // word.
        if self.state.load(Ordering::Acquire) & READERS_MASK != 0 {
            return ReadersSeen::Inside;
        }
        ReadersSeen::GoneFromShards { entered }
    }

    /// With `WRITER` held by the caller, whether no reader is inside (see
    /// [`readers_seen`](Self::readers_seen)). If so, the caller holds the exclusive lock, and
    /// if few readers came through the shards since the previous writer looked, sends readers
    /// back to the word. Called once per exclusive lock taken: it counts the reads between.
    pub(super) fn take_over(&self, state: usize) -> bool {
        match self.readers_seen(state) {
            ReadersSeen::Inside => false,
            ReadersSeen::Gone => true,
            ReadersSeen::GoneFromShards { entered } => {
                self.keep_or_drop_shards(entered);
                true
            }
        }
    }

    /// With the exclusive lock just taken from a sharded lock whose shards summed `entered`
    /// entries: if few readers came through the shards since the previous writer looked, sends
    /// readers back to the word.
    pub(super) fn keep_or_drop_shards(&self, entered: usize) {
        if self.shards.few_entered_since(entered) {
            // Relaxed: the argument at the top rests on the word's modification order alone.
            self.state.fetch_and(!SHARDED, Ordering::Relaxed);
        }
    }

    /// With `WRITER` held, waits until no reader is inside. Returns `false` if `give_up` came
    /// first (the caller still holds `WRITER`).
    pub(super) fn wait_for_readers(&self, give_up: GiveUp<'_>) -> bool {
        let mut spin = SpinWait::new();
        loop {
            // Acquire: pairs with the Release fetch_sub of the readers leaving, so their reads
            // happen before this writer's writes.
            if self.take_over(self.state.load(Ordering::Acquire)) {
                return true;
            }
            if give_up.has_come() {
                return false;
            }
            if spin.spin() {
                continue;
            }
            // Not `park_while`, which looks at the state before it sets the bit: a reader leaving
            // a shard is seen only by setting the bit first, then fencing, then looking (the
            // store-buffering pattern in the notes at the top).
            let validate = || {
                // Relaxed: a reader leaving the word sees the bit in its fetch_sub (one word's
                // modification order) and takes the drain queue's lock to wake us; one leaving a
                // shard is ordered against it by the fence in `readers_seen` (see the notes at the
                // top).
                let state = self.state.fetch_or(PARKED_DRAIN, Ordering::Relaxed);
                if self.readers_seen(state) != ReadersSeen::Inside {
                    // Only this thread parks on the drain key.
                    self.state.clear_parked(PARKED_DRAIN);
                    return false;
                }
                true
            };
            let on_abort = |_, _| self.state.clear_parked(PARKED_DRAIN);
            let options = give_up.park_options(0);
            match park(self.key(DRAIN_KEY), options, validate, || {}, on_abort) {
                ParkResult::TimedOut | ParkResult::Cancelled => return false,
                ParkResult::Unparked(_) | ParkResult::Invalid => spin.reset(),
            }
        }
    }
}
