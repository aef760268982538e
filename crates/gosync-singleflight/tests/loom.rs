//! Loom models of `singleflight::Group`: a caller joining as the flight lands (one `f` run per
//! flight, every caller one value, `shared` exact), and a timed waiter giving up as the flight
//! lands (it leaves with nothing or receives the value, and the leader's `shared` agrees).

#![cfg(gosync_loom)]

use std::time::{Duration, Instant};

use gosync_park::sync::atomic::{AtomicUsize, Ordering};
use gosync_park::sync::Arc;
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
        assert_eq!(format!("{group:?}"), "Group { flights: 0, waiting: 0 }");
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
        let leader = group.call(0, || 1);
        match waiter.join().unwrap() {
            Some((1, true)) => assert_eq!(leader, (1, true)),
            // Gave up, or came after the landing and ran its own flight.
            None | Some((2, false)) => assert_eq!(leader, (1, false)),
            other => panic!("waiter got {other:?}"),
        }
    });
}
