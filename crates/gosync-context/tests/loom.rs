//! Loom models of the races in a context tree: a waiter registering against a cancel (no lost
//! wake), a child being created against its parent's cancel (the child always ends up done),
//! two cancels of one tree, and handles being dropped (nodes leaving their parent) against a
//! cancel of an ancestor or of the node itself (a cancelled node leaves its parent at once),
//! and a deadline seen passed (recorded lazily, by whoever looks first) against a cancel of an
//! ancestor, a child being created and the node's own cancel. (A wait on a context whose
//! deadline has passed returns before it parks, so no model parks against one: loom has no
//! clock to let a deadline pass during a model.)
//!
//! Run as `cargo xtask verify` does (the debug assertions check every slot a detach reads):
//! `RUSTFLAGS="--cfg gosync_loom -C debug-assertions" LOOM_MAX_PREEMPTIONS=3 cargo test -p gosync-context --test loom --release`

#![cfg(gosync_loom)]

use std::time::{Duration, Instant};

use gosync_context::{Context, ContextError};
use gosync_park::thread;

/// A thread waiting on a context always returns when another thread cancels it, whichever of
/// the waiter's steps (check, register, sleep) the cancel lands between.
#[test]
fn cancel_races_waiter() {
    loom::model(|| {
        let (ctx, cancel) = Context::background().with_cancel();
        let waiter = {
            let ctx = ctx.clone();
            thread::spawn(move || {
                ctx.wait();
                ctx.err()
            })
        };
        cancel.cancel();
        assert_eq!(waiter.join().unwrap(), Some(ContextError::Canceled));
    });
}

/// A waiter on a grandchild is woken by a cancel of the root.
#[test]
fn root_cancel_wakes_grandchild_waiter() {
    loom::model(|| {
        let (root, cancel) = Context::background().with_cancel();
        let (child, _child_cancel) = root.with_cancel();
        let (grandchild, _grandchild_cancel) = child.with_cancel();
        let waiter = thread::spawn(move || {
            grandchild.wait();
            grandchild.err()
        });
        cancel.cancel();
        assert_eq!(waiter.join().unwrap(), Some(ContextError::Canceled));
    });
}

/// `wait_for` (whose timeout counts as passed at once under loom) returns, and says `true`
/// exactly when the context is done.
#[test]
fn cancel_races_wait_for() {
    loom::model(|| {
        let (ctx, cancel) = Context::background().with_cancel();
        let waiter = {
            let ctx = ctx.clone();
            thread::spawn(move || {
                let done = ctx.wait_for(Duration::from_secs(1));
                assert!(!done || ctx.is_done());
            })
        };
        cancel.cancel();
        waiter.join().unwrap();
        assert!(ctx.is_done());
    });
}

/// A child made while its parent is being cancelled ends up done: either it was listed before
/// the cancel took the list, or it saw the parent done.
#[test]
fn parent_cancel_races_child_creation() {
    loom::model(|| {
        let (parent, cancel) = Context::background().with_cancel();
        let maker = {
            let parent = parent.clone();
            thread::spawn(move || {
                let (child, child_cancel) = parent.with_cancel();
                (child, child_cancel)
            })
        };
        cancel.cancel();
        let (child, _child_cancel) = maker.join().unwrap();
        assert_eq!(child.err(), Some(ContextError::Canceled));
    });
}

/// A thread makes a child and waits on it while the parent is cancelled: it always returns.
#[test]
fn waiter_on_a_new_child_races_parent_cancel() {
    loom::model(|| {
        let (parent, cancel) = Context::background().with_cancel();
        let waiter = {
            let parent = parent.clone();
            thread::spawn(move || {
                let (child, _child_cancel) = parent.with_cancel();
                child.wait();
                child.err()
            })
        };
        cancel.cancel();
        assert_eq!(waiter.join().unwrap(), Some(ContextError::Canceled));
    });
}

/// Two cancels of the same tree, at the root and at the child: both end done with `Canceled`,
/// and a waiter on the child wakes.
#[test]
fn cancel_races_cancel() {
    loom::model(|| {
        let (root, cancel_root) = Context::background().with_cancel();
        let (child, cancel_child) = root.with_cancel();
        let other = thread::spawn(move || cancel_child.cancel());
        cancel_root.cancel();
        other.join().unwrap();
        assert_eq!(root.err(), Some(ContextError::Canceled));
        assert_eq!(child.err(), Some(ContextError::Canceled));
    });
}

/// A middle context's handles are dropped (it must stay listed, for its child's sake) while
/// the root is cancelled: the leaf is always reached. Then the leaf's handles go, racing
/// nothing, which must leave the tree consistent.
#[test]
fn dropping_a_middle_races_root_cancel() {
    loom::model(|| {
        let (root, cancel) = Context::background().with_cancel();
        let (mid, mid_cancel) = root.with_cancel();
        let (leaf, leaf_cancel) = mid.with_cancel();
        let dropper = thread::spawn(move || drop((mid, mid_cancel)));
        cancel.cancel();
        dropper.join().unwrap();
        assert_eq!(leaf.err(), Some(ContextError::Canceled));
        drop((leaf, leaf_cancel));
        assert!(root.is_done());
    });
}

/// A leaf's last handles are dropped (the leaf and its handle-less parent leave the tree)
/// while the root is cancelled.
#[test]
fn detach_races_root_cancel() {
    loom::model(|| {
        let (root, cancel) = Context::background().with_cancel();
        let (leaf, leaf_cancel) = root.with_cancel().0.with_cancel();
        let dropper = thread::spawn(move || drop((leaf, leaf_cancel)));
        cancel.cancel();
        dropper.join().unwrap();
        let (late, _c) = root.with_cancel();
        assert!(late.is_done());
    });
}

/// One child is cancelled (leaving its parent's list, which moves its sibling to its slot)
/// while the sibling's last handles are dropped (the sibling leaving through its slot): both
/// leave, and nothing else.
#[test]
fn child_cancel_races_sibling_leaving() {
    loom::model(|| {
        let (root, _cancel) = Context::background().with_cancel();
        let (first, first_cancel) = root.with_cancel();
        let second = root.with_cancel();
        let (kept, _kept_cancel) = root.with_cancel();
        let dropper = thread::spawn(move || drop(second));
        first_cancel.cancel();
        dropper.join().unwrap();
        assert_eq!(root.listed_children(), 1);
        assert!(first.is_done() && !kept.is_done());
        drop((kept, _kept_cancel));
        assert_eq!(root.listed_children(), 0, "the wrong sibling left");
    });
}

/// A middle context is cancelled while the root is, on two threads: whichever cancellation
/// reaches the middle first, each `cancel` returns only once the leaf below is done (as in Go,
/// where the later one waits for the middle's lock), not while the other is still on its way
/// down. With `root_here`, this thread cancels the root and the other the middle; otherwise the
/// other way round.
fn nested_cancels_race(root_here: bool) {
    loom::model(move || {
        let (root, cancel) = Context::background().with_cancel();
        let (middle, middle_cancel) = root.with_cancel();
        let (leaf, _c) = middle.with_cancel();
        let (here, there) = if root_here {
            (cancel, middle_cancel)
        } else {
            (middle_cancel, cancel)
        };
        let canceller = thread::spawn(move || there.cancel());
        here.cancel();
        assert!(leaf.is_done(), "a cancel returned before the leaf was done");
        canceller.join().unwrap();
        assert_eq!(leaf.err(), Some(ContextError::Canceled));
        assert_eq!(root.listed_children(), 0);
    });
}

#[test]
fn root_cancel_races_middle_cancel() {
    nested_cancels_race(true);
}

#[test]
fn middle_cancel_races_root_cancel() {
    nested_cancels_race(false);
}

/// A child is cancelled while its parent is: the child is done either way, and the parent's
/// list ends empty whether the child left it or the parent's cancel took it.
#[test]
fn child_cancel_races_parent_cancel() {
    loom::model(|| {
        let (root, cancel) = Context::background().with_cancel();
        let (child, child_cancel) = root.with_cancel();
        let canceller = thread::spawn(move || {
            child_cancel.cancel();
            child_cancel
        });
        cancel.cancel();
        let child_cancel = canceller.join().unwrap();
        assert_eq!(child.err(), Some(ContextError::Canceled));
        assert_eq!(root.listed_children(), 0);
        drop((child, child_cancel));
        assert_eq!(root.listed_children(), 0);
    });
}

/// A leaf is cancelled while the last handles of its parent are dropped: the handle-less
/// parent, left with no children, leaves the root, whichever side sees the other's change.
#[test]
fn leaf_cancel_races_its_parent_losing_its_handles() {
    loom::model(|| {
        let (root, _cancel) = Context::background().with_cancel();
        let (mid, mid_cancel) = root.with_cancel();
        let (leaf, leaf_cancel) = mid.with_cancel();
        let dropper = thread::spawn(move || drop((mid, mid_cancel)));
        leaf_cancel.cancel();
        dropper.join().unwrap();
        assert_eq!(root.listed_children(), 0);
        assert_eq!(leaf.err(), Some(ContextError::Canceled));
    });
}

/// A context whose deadline has passed, not yet looked at, is read, given a child and reached
/// by its parent's cancel, on three threads. The deadline came first, so the context and the
/// new child end with `DeadlineExceeded` whichever thread records it (reading the clock is
/// deterministic here: the deadline is already past when the model starts), and the parent
/// with `Canceled`.
#[test]
fn a_passed_deadline_races_a_parent_cancel_and_a_new_child() {
    loom::model(|| {
        let (root, cancel) = Context::background().with_cancel();
        let (expired, _expired_cancel) = root.with_deadline(Instant::now());
        let reader = {
            let expired = expired.clone();
            thread::spawn(move || expired.err())
        };
        let canceller = thread::spawn(move || cancel.cancel());
        let (child, _child_cancel) = expired.with_cancel();
        assert_eq!(child.err(), Some(ContextError::DeadlineExceeded));
        assert_eq!(reader.join().unwrap(), Some(ContextError::DeadlineExceeded));
        canceller.join().unwrap();
        assert_eq!(expired.err(), Some(ContextError::DeadlineExceeded));
        assert_eq!(root.err(), Some(ContextError::Canceled));
    });
}

/// A reader sees a passed deadline while the context's own `cancel` runs: both agree on
/// `DeadlineExceeded` (the deadline came before the cancel, which looks at the clock first),
/// and the expired context leaves its parent's list, whichever of the two recorded it.
#[test]
fn a_passed_deadline_races_its_own_cancel() {
    loom::model(|| {
        let (root, _cancel) = Context::background().with_cancel();
        let (expired, expired_cancel) = root.with_deadline(Instant::now());
        let reader = {
            let expired = expired.clone();
            thread::spawn(move || expired.err())
        };
        expired_cancel.cancel();
        assert_eq!(reader.join().unwrap(), Some(ContextError::DeadlineExceeded));
        assert_eq!(expired.err(), Some(ContextError::DeadlineExceeded));
        assert_eq!(root.listed_children(), 0);
    });
}
