//! Loom models of `Barrier`: the last arrival racing another party's timeout (under loom every
//! finite deadline fires at the park layer's first look, so the timeout is explored at every
//! point of the race, including while the action runs), and `reset` racing two waiters. Each
//! waiter gets exactly one outcome, the outcomes agree, and the action runs once per trip.
#![cfg(gosync_loom)]

use std::time::{Duration, Instant};

use gosync_barrier::{Barrier, BarrierError};
use gosync_park::sync::{Arc, AtomicUsize, Ordering};
use gosync_park::thread;

/// A deadline the test's own clock never reaches: only the park layer's loom rule can time out.
fn far_deadline() -> Instant {
    Instant::now() + Duration::from_secs(3600)
}

fn counting_barrier(parties: usize) -> (Arc<Barrier>, Arc<AtomicUsize>) {
    let actions = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&actions);
    let barrier = Barrier::with_action(parties, move || {
        counter.fetch_add(1, Ordering::Relaxed);
    });
    (Arc::new(barrier), actions)
}

/// Two parties: one waits with a timeout, the other arrives last. Either the barrier trips for
/// both (one leader, one action), or the timed one gave up first and the other finds it broken.
#[test]
fn last_arrival_vs_timeout() {
    loom::model(|| {
        let (barrier, actions) = counting_barrier(2);
        let timed = {
            let barrier = Arc::clone(&barrier);
            thread::spawn(move || barrier.wait_until(far_deadline()))
        };
        let last = barrier.wait();
        let timed = timed.join().unwrap();
        match (timed, last) {
            (Ok(a), Ok(b)) => {
                assert!(a.is_leader() != b.is_leader());
                assert_eq!((a.generation(), b.generation()), (0, 0));
                assert_eq!(actions.load(Ordering::Relaxed), 1);
                assert!(!barrier.is_broken());
            }
            (Err(BarrierError::TimedOut), Err(BarrierError::Broken)) => {
                assert_eq!(actions.load(Ordering::Relaxed), 0);
                assert!(barrier.is_broken());
            }
            other => panic!("inconsistent outcomes {other:?}"),
        }
        assert_eq!(barrier.n_waiting(), 0);
    });
}

/// Two timed parties and a `reset`: whatever the order, the outcomes agree (both passed the
/// same trip with one leader, or neither did), the action ran once per trip, and nobody is
/// left waiting.
#[test]
fn reset_vs_waiters() {
    loom::model(|| {
        let (barrier, actions) = counting_barrier(2);
        let parties: Vec<_> = (0..2)
            .map(|_| {
                let barrier = Arc::clone(&barrier);
                thread::spawn(move || barrier.wait_until(far_deadline()))
            })
            .collect();
        barrier.reset();
        let outcomes: Vec<_> = parties.into_iter().map(|p| p.join().unwrap()).collect();
        match (&outcomes[0], &outcomes[1]) {
            (Ok(a), Ok(b)) => {
                assert!(a.is_leader() != b.is_leader());
                assert_eq!(a.generation(), b.generation());
                assert_eq!(actions.load(Ordering::Relaxed), 1);
            }
            (Err(_), Err(_)) => assert_eq!(actions.load(Ordering::Relaxed), 0),
            other => panic!("inconsistent outcomes {other:?}"),
        }
        assert_eq!(barrier.n_waiting(), 0);
    });
}

/// A thread pending behind a late party gives up (it breaks the barrier) in the window where the
/// last late party has finished but has not yet woken the pending threads: a thread arriving in
/// that window is a party of the next generation, and must get `Broken` rather than sleep on a
/// broken barrier. Two parties: `late` may time out while the trip's action runs (under loom at
/// its first look), `twice` waits twice without a deadline, `pending` waits with a timeout. Once
/// the timed ones are done, a broken barrier must let `twice` finish by itself; otherwise the
/// test breaks it, as `twice` may be waiting for a partner that will not come. Each generation
/// that tripped has two parties and one leader. (The hang this guards against needs about five
/// preemptions, more than verify's loom runs allow: the unit test in `src/lib.rs` drives that
/// decision directly; this model checks every path around it.)
#[test]
fn pending_giving_up_breaks_the_next_generation_for_its_parties() {
    loom::model(|| {
        let (barrier, _actions) = counting_barrier(2);
        let timed = |barrier: &Arc<Barrier>| {
            let barrier = Arc::clone(barrier);
            thread::spawn(move || barrier.wait_until(far_deadline()))
        };
        let late = timed(&barrier);
        let pending = timed(&barrier);
        let twice = {
            let barrier = Arc::clone(&barrier);
            thread::spawn(move || [barrier.wait(), barrier.wait()])
        };
        let mut results = vec![late.join().unwrap(), pending.join().unwrap()];
        if !barrier.is_broken() {
            barrier.break_barrier();
        }
        results.extend(twice.join().unwrap());
        let mut passed = std::collections::BTreeMap::new();
        for result in results.iter().flatten() {
            let (parties, leaders) = passed.entry(result.generation()).or_insert((0, 0));
            *parties += 1;
            *leaders += usize::from(result.is_leader());
        }
        assert!(
            passed.values().all(|&counts| counts == (2, 1)),
            "{results:?}"
        );
        assert_eq!(barrier.n_waiting(), 0);
    });
}
