//! Loom models of `singleflight::Group`: a caller joining as the flight lands (one `f` run per
//! flight, every caller one value, `shared` exact), and a timed waiter giving up as the flight
//! lands (it leaves with nothing or receives the value, and the other caller's `shared` agrees).

#![cfg(gosync_loom)]

use std::time::{Duration, Instant};

use gosync_park::sync::Arc;
use gosync_park::sync::{AtomicUsize, Ordering};
use gosync_park::thread;
use gosync_singleflight::Group;

#[test]
fn a_caller_joining_as_the_flight_lands() {
    loom::model(|| {
        let group = Arc::new(Group::new());
        let calls = Arc::new(AtomicUsize::new(0));
        let joiner = {
            let (group, calls) = (group.clone(), calls.clone());
            thread::spawn(move || group.call(0, || calls.fetch_add(1, Ordering::Relaxed)))
        };
        let leader = group.call(0, || calls.fetch_add(1, Ordering::Relaxed));
        let joiner = joiner.join().unwrap();
        match calls.load(Ordering::Relaxed) {
            // One flight: both got its value, shared.
            1 => assert_eq!((leader, joiner), ((0, true), (0, true))),
            // Two flights one after the other: each ran its own `f`, nothing shared.
            2 => {
                assert!(!leader.1 && !joiner.1);
                assert_ne!(leader.0, joiner.0);
            }
            calls => panic!("{calls} calls"),
        }
        assert_eq!(format!("{:?}", *group), "Group { flights: 0, waiting: 0 }");
    });
}

#[test]
fn a_timed_waiter_giving_up_as_the_flight_lands() {
    loom::model(|| {
        let group = Arc::new(Group::new());
        let waiter = {
            let group = group.clone();
            // Under loom a far deadline fires at the wait's first look: "at any point".
            thread::spawn(move || {
                let deadline = Instant::now() + Duration::from_secs(60);
                group.try_call_until(0, deadline, || 2)
            })
        };
        let caller = group.call(0, || 1);
        match (caller, waiter.join().unwrap()) {
            // One flight, shared: led by either.
            ((1, true), Some((1, true))) | ((2, true), Some((2, true))) => {}
            // The timed caller joined and gave up: the flight was not shared.
            ((1, false), None) => {}
            // Two flights one after the other.
            ((1, false), Some((2, false))) => {}
            other => panic!("{other:?}"),
        }
        assert_eq!(format!("{:?}", *group), "Group { flights: 0, waiting: 0 }");
    });
}
