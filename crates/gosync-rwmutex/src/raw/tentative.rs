//! `try_write` and `try_upgrade` on a sharded lock: a tentative claim that sends no reader away
//! until it is decided (the steps and their proof are in the notes at the top of `raw.rs`).

use gosync_park::sync::{fence, Ordering};

use crate::shards::ShardsSeen;

use super::{RawRwMutex, READER, READERS_MASK, TRYING_UPGRADE, TRYING_WRITE, UPGRADABLE, WRITER};

/// A tentative claim: what it marks, and what the caller holds and gives up for `WRITER`.
#[derive(Clone, Copy)]
pub(super) enum Tentative {
    /// `try_write`: the caller holds nothing.
    Write,
    /// `try_upgrade`: the caller holds the upgradable lock.
    Upgrade,
}

impl Tentative {
    /// The bit that marks this claim in the state word.
    fn bit(self) -> usize {
        match self {
            Self::Write => TRYING_WRITE,
            Self::Upgrade => TRYING_UPGRADE,
        }
    }

    /// What the caller holds, as counted in the word.
    fn held(self) -> usize {
        match self {
            Self::Write => 0,
            Self::Upgrade => UPGRADABLE + READER,
        }
    }

    /// Whether `state` shows nobody but the caller holding or claiming the lock, with this
    /// claim's bit as `marked` says.
    fn only_caller(self, state: usize, marked: bool) -> bool {
        let mine = if marked { self.bit() } else { 0 };
        state & (WRITER | UPGRADABLE | READERS_MASK | self.bit()) == self.held() | mine
    }
}

impl RawRwMutex {
    /// Tries to take the exclusive lock of a sharded lock by a tentative claim, from `state`
    /// (a recent value of the word). Returns whether it did; if not, the word is as if the
    /// attempt had never happened, and no reader was sent away meanwhile.
    pub(super) fn try_claim_tentatively(&self, claim: Tentative, mut state: usize) -> bool {
        // Step 1. Relaxed: the fence below orders it before the look at the shards; a reader
        // that sees it only counts itself in the word.
        loop {
            if !claim.only_caller(state, false) {
                return false;
            }
            match self.state.compare_exchange_weak(
                state,
                state | claim.bit(),
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => break,
                Err(actual) => state = actual,
            }
        }
        // Step 2. SeqCst: pairs with a reader's SeqCst shard increment and look at the word
        // (see the notes at the top).
        fence(Ordering::SeqCst);
        let ShardsSeen::Empty { entered } = self.shards.look() else {
            self.drop_tentative_claim(claim);
            return false;
        };
        // Step 3. Relaxed: the CAS re-reads the value.
        let mut state = self.state.load(Ordering::Relaxed);
        loop {
            if !claim.only_caller(state, true) {
                self.drop_tentative_claim(claim);
                return false;
            }
            // Acquire: pairs with the Release of the last release of a writer or upgradable
            // reader and of the readers that left the word (the read-modify-writes between,
            // step 1's among them, continue their release sequences); the readers that left a
            // shard were read by `look`'s Acquire.
            match self.state.compare_exchange_weak(
                state,
                state - claim.held() - claim.bit() + WRITER,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => break,
                Err(actual) => state = actual,
            }
        }
        self.keep_or_drop_shards(entered);
        true
    }

    /// Takes back a tentative claim that failed: it held nobody back, so nobody is woken.
    fn drop_tentative_claim(&self, claim: Tentative) {
        // Relaxed: the claim published nothing (the claimer never got in).
        self.state.fetch_and(!claim.bit(), Ordering::Relaxed);
    }
}
