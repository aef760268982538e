//! Every re-export of the umbrella crate is reachable and is the subcrate's own item.

use std::sync::Arc;
use std::time::Duration;

#[test]
fn mutex() {
    let m: gosync::Mutex<i32> = gosync_mutex::Mutex::new(1);
    let guard: gosync::MutexGuard<'_, i32> = m.lock();
    assert_eq!(*guard, 1);
    drop(guard);
    let _raw: fn() -> bool = || gosync::RawMutex::new().try_lock();
}

#[test]
fn rwmutex() {
    let rw: gosync::RwMutex<i32> = gosync_rwmutex::RwMutex::new(1);
    let read: gosync::RwMutexReadGuard<'_, i32> = rw.read();
    drop(read);
    let upgradable: gosync::RwMutexUpgradableReadGuard<'_, i32> = rw.upgradable_read();
    let mut write: gosync::RwMutexWriteGuard<'_, i32> =
        gosync::RwMutexUpgradableReadGuard::upgrade(upgradable);
    *write += 1;
    drop(write);
    assert_eq!(rw.into_inner(), 2);
    let _raw: fn() -> gosync::RawRwMutex = gosync::RawRwMutex::new;
}

#[test]
fn cond() {
    let cond: gosync::Cond = gosync_cond::Cond::new();
    let m = gosync::Mutex::new(());
    let mut guard = m.lock();
    let result: gosync::WaitTimeoutResult = cond.wait_for(&mut guard, Duration::ZERO);
    assert!(result.timed_out());
    fn lockable<G: gosync::Lockable>(_: &G) {}
    lockable(&guard);
}

#[test]
fn once() {
    let once: gosync::Once = gosync_once::Once::new();
    once.call_once(|| {});
    assert!(once.is_done());
    let cell: gosync::OnceCell<i32> = gosync_once::OnceCell::new();
    assert_eq!(*cell.get_or_init(|| 3), 3);
    let f = gosync::once_func(|| {});
    f();
    let v = gosync::once_value(|| 5);
    assert_eq!(v(), 5);
}

#[test]
fn waitgroup() {
    let wg: Arc<gosync::WaitGroup> = Arc::new(gosync_waitgroup::WaitGroup::new());
    wg.go(|| {});
    wg.wait();
    assert_eq!(wg.count(), 0);
    wg.add(1);
    let guard: gosync::DoneGuard<'_> = wg.done_guard();
    drop(guard);
    wg.go(|| panic!("one"));
    wg.go(|| panic!("two"));
    let caught = std::panic::catch_unwind(|| wg.wait()).unwrap_err();
    assert_eq!(caught.downcast::<gosync::GoPanics>().unwrap().count(), 2);
}

#[test]
fn pool() {
    let pool: gosync::Pool<Vec<u8>> = gosync_pool::Pool::with_reset(Vec::new, Vec::clear);
    let mut buf: gosync::Pooled<'_, Vec<u8>> = pool.get();
    buf.push(1);
    drop(buf);
    assert!(gosync::Pooled::into_inner(pool.get()).is_empty());
    let capped: gosync::Pool<u8> = gosync::Pool::new(|| 0).with_max_idle(gosync::MAX_IDLE);
    assert_eq!(capped.max_idle(), gosync_pool::MAX_IDLE);
}

#[test]
fn context() {
    let background: gosync::context::Context = gosync_context::Context::background();
    let (ctx, cancel): (_, gosync::context::Canceler) = background.with_cancel();
    cancel.cancel();
    assert_eq!(ctx.err(), Some(gosync::context::ContextError::Canceled));
}

#[test]
fn semaphore() {
    let sem: gosync::Semaphore = gosync_semaphore::Semaphore::new(2);
    let permit: gosync::Permit<'_> = sem.acquire_permit(2);
    assert_eq!(sem.available(), 0);
    drop(permit);
    assert_eq!(sem.available(), 2);
}

#[test]
fn barrier() {
    let barrier: gosync::Barrier = gosync_barrier::Barrier::new(1);
    let result: gosync::BarrierWaitResult = barrier.wait().unwrap();
    assert!(result.is_leader());
    barrier.break_barrier();
    assert_eq!(barrier.wait(), Err(gosync::BarrierError::Broken));
}

#[test]
fn errgroup() {
    let g: gosync::errgroup::Group<&str> = gosync_errgroup::Group::new();
    g.go(|| Err("first"));
    assert_eq!(g.wait(), Err("first"));
    let scoped = gosync::errgroup::scope(|g: &gosync::errgroup::ScopedGroup<'_, '_, ()>| {
        g.go(|| Ok(()));
        1
    });
    assert_eq!(
        scoped,
        gosync_errgroup::scope(|_: &gosync_errgroup::ScopedGroup<'_, '_, ()>| 1)
    );
}

#[test]
fn singleflight() {
    let group: gosync::singleflight::Group<u8, u8> = gosync_singleflight::Group::new();
    assert_eq!(group.call(1, || 2), (2, false));
}

#[test]
fn atomic() {
    let value: gosync::atomic::Value<i32> = gosync_atomic::Value::new(1);
    let guard: gosync::atomic::ValueGuard<'_, i32> = value.load();
    assert_eq!(*guard, 1);
    drop(guard);
    let mut reader: gosync::atomic::ValueReader<'_, i32> = value.reader();
    value.store(2);
    assert_eq!(**reader.load(), 2);
    let counter: gosync::atomic::Counter = gosync_atomic::Counter::new();
    counter.inc();
    assert_eq!(counter.value(), 1);
}

#[test]
fn map() {
    let m: gosync::Map<&str, i32> = gosync_map::Map::new();
    m.store("a", 1);
    assert_eq!(m.load("a"), Some(1));
}
