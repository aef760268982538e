//! `Pool`: where idle objects wait, how a thread finds one, and how idle memory is bounded.

// Notes about memory ordering: this file adds none. An object changes threads only through a
// `Slot` (whose orderings are argued in `slot.rs`) or a `BoundedQueue` (a push happens-before
// the pop that takes its value), so a thread that gets an object sees everything the thread
// that put it wrote into it.

use std::fmt;

use crossbeam_utils::CachePadded;
use gosync_park::thread_ticket;

use crate::queue::BoundedQueue;
use crate::slot::Slot;
use crate::Pooled;

/// The most idle objects a pool keeps, whatever it is told.
pub const MAX_IDLE: usize = 4096;

/// Idle objects a pool keeps by default, per core (at most [`MAX_IDLE`] in all).
const DEFAULT_IDLE_PER_CORE: usize = 8;

/// The most private slots a pool has.
const MAX_SLOTS: usize = 64;

/// A set of reusable objects that threads take and give back: Go's `sync.Pool`.
///
/// [`get`](Self::get) hands out an object wrapped in a [`Pooled`] guard that puts it back when
/// dropped; [`take`](Self::take) and [`put`](Self::put) are Go's `Get` and `Put` on owned
/// values. When no object is idle, the `new` function given at construction makes one. The
/// optional reset function runs on every object on its way back in, so one user's data never
/// reaches the next.
///
/// # How it is built
///
/// As Go's pool, with threads in the place of Go's Ps:
///
/// - **A private slot per thread.** Each thread draws a ticket
///   ([`gosync_park::thread_ticket`]) and uses the slot it selects; a thread that gets and
///   gives back in turn finds its own object there again. A [`Pooled`] guard claims the slot
///   and uses the object where it lies, so `get` and dropping the guard move nothing and cost
///   one uncontended atomic read-modify-write in all (`take` + `put`: two, and two moves).
///   While a guard is out its slot is claimed: other gets and puts that land on it go to the
///   shared queue, and a second guard on the thread holds its object itself. Slots are a power
///   of two, about one per core, and tickets go round them in turn, so threads that start
///   together get slots of their own; threads whose tickets select the same slot share it,
///   which stays correct and only costs some hits. As with Go's per-P `private`, no other
///   thread takes from a slot (only `clear` and `trim` reach every slot).
/// - **A shared queue** (`crossbeam-queue`'s lock-free `ArrayQueue`): a put that finds its slot
///   full goes here, and a get that finds its slot empty takes from here, so objects flow from
///   threads that put more than they get to the others.
/// - **A victim generation.** [`trim`](Self::trim) drops the previous victim and moves every
///   idle object (slots and shared queue) to the victim queue, from which gets still take. An
///   object left idle across two trims is therefore dropped, as Go drops it across two garbage
///   collections.
///
/// # Idle memory is bounded
///
/// The pool keeps at most [`max_idle`](Self::max_idle) idle objects: by default 8 per core,
/// never more than [`MAX_IDLE`]; [`with_max_idle`](Self::with_max_idle) sets it. The cap is
/// the sum of the places an object can wait in (half for the victim, the rest for the slots and
/// the shared queue), so it holds at every instant without a shared counter. A put that finds
/// every place full drops its object.
///
/// # When the pool trims
///
/// Never by itself: Rust has no garbage collector to drive the cycles, and a clock check on
/// every put would cost more than the put. Since idle memory is bounded anyway, trimming is for
/// giving memory back after a burst: call [`trim`](Self::trim) from a periodic task (once a
/// second, say), or [`clear`](Self::clear) to drop everything now.
///
/// # Differences from Go
///
/// - Typed: `get` returns a `T`, not an `any` to assert on, and needs no nil check: the `new`
///   function is required.
/// - Go's "call `Reset` before `Put`" is made automatic by [`with_reset`](Self::with_reset).
/// - Idle objects are capped; Go's pool grows without bound between collections.
/// - Objects are stored by value: a `Pool<Vec<u8>>` stores the `Vec`s, with no boxing.
/// - An object goes back to the pool when its guard drops. A guard dropped during a panic drops
///   its object instead: the panic may have left it half-changed.
///
/// # Examples
///
/// ```
/// use gosync_pool::Pool;
///
/// let buffers = Pool::with_reset(|| Vec::<u8>::with_capacity(4096), Vec::clear);
/// {
///     let mut buf = buffers.get();
///     buf.extend_from_slice(b"hello");
///     assert_eq!(&buf[..], b"hello");
/// } // `buf` is cleared and goes back to the pool here
/// let buf = buffers.get();
/// assert!(buf.is_empty());
/// assert!(buf.capacity() >= 4096);
/// ```
pub struct Pool<T> {
    places: Places<T>,
    max_idle: usize,
    new: MakeFn<T>,
    reset: Option<ResetFn<T>>,
}

/// Where idle objects wait; room for `max_idle` of them in all.
struct Places<T> {
    /// The private slots; a thread uses `slots[thread_ticket() & (slots.len() - 1)]`.
    slots: Box<[CachePadded<Slot<T>>]>,
    /// Objects put while the putter's slot was full, for any thread to take.
    shared: BoundedQueue<T>,
    /// What was idle at the last `trim`.
    victim: BoundedQueue<T>,
}

type MakeFn<T> = Box<dyn Fn() -> T + Send + Sync>;
type ResetFn<T> = Box<dyn Fn(&mut T) + Send + Sync>;

impl<T: Send> Pool<T> {
    /// A pool whose objects are made by `new` when none is idle, and go back in as they are.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = gosync_pool::Pool::new(|| String::from("fresh"));
    /// assert_eq!(pool.take(), "fresh");
    /// ```
    pub fn new(new: impl Fn() -> T + Send + Sync + 'static) -> Self {
        Self::build(Box::new(new), None)
    }

    /// A pool whose objects are made by `new` and pass through `reset` on every way back in.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = gosync_pool::Pool::with_reset(String::new, String::clear);
    /// let mut s = pool.take();
    /// s.push_str("secret");
    /// pool.put(s);
    /// assert_eq!(pool.take(), "");
    /// ```
    pub fn with_reset(
        new: impl Fn() -> T + Send + Sync + 'static,
        reset: impl Fn(&mut T) + Send + Sync + 'static,
    ) -> Self {
        Self::build(Box::new(new), Some(Box::new(reset)))
    }

    fn build(new: MakeFn<T>, reset: Option<ResetFn<T>>) -> Self {
        let max_idle = (DEFAULT_IDLE_PER_CORE * cores()).min(MAX_IDLE);
        Self {
            places: Places::new(max_idle),
            max_idle,
            new,
            reset,
        }
    }

    /// This pool with room for at most `max_idle` idle objects (drops any it already holds).
    ///
    /// Half of the room is the victim generation (see [`trim`](Self::trim)), the rest the
    /// private slots and the shared queue.
    ///
    /// # Panics
    ///
    /// Panics if `max_idle` is 0 or above [`MAX_IDLE`].
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = gosync_pool::Pool::new(Vec::<u8>::new).with_max_idle(100);
    /// assert_eq!(pool.max_idle(), 100);
    /// ```
    #[track_caller]
    #[must_use]
    pub fn with_max_idle(self, max_idle: usize) -> Self {
        assert!(
            (1..=MAX_IDLE).contains(&max_idle),
            "gosync: Pool max_idle must be between 1 and {MAX_IDLE}, got {max_idle}"
        );
        Self {
            places: Places::new(max_idle),
            max_idle,
            ..self
        }
    }

    /// The most idle objects this pool keeps.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = gosync_pool::Pool::new(|| 0u8);
    /// assert!((1..=gosync_pool::MAX_IDLE).contains(&pool.max_idle()));
    /// ```
    pub fn max_idle(&self) -> usize {
        self.max_idle
    }

    /// An object from the pool, or a new one, in a guard that puts it back when dropped.
    ///
    /// # Panics
    ///
    /// Panics if the `new` function does; the pool is unchanged.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = gosync_pool::Pool::new(Vec::<u32>::new);
    /// let mut v = pool.get();
    /// v.push(1);
    /// let kept: Vec<u32> = gosync_pool::Pooled::into_inner(v); // not going back
    /// assert_eq!(kept, [1]);
    /// ```
    #[inline]
    pub fn get(&self) -> Pooled<'_, T> {
        match self.places.home().lend() {
            Some(Ok(lent)) => Pooled::lent(self, lent),
            Some(Err(empty)) => Pooled::lent(self, empty.lend(self.take_elsewhere())),
            None => Pooled::owned(self, self.take_elsewhere()),
        }
    }

    /// An object from the pool, or a new one: Go's `Get`. It is the caller's to keep, or to give
    /// back with [`put`](Self::put).
    ///
    /// Looks in the calling thread's slot, then the shared queue, then the victim generation.
    ///
    /// # Panics
    ///
    /// Panics if the `new` function does; the pool is unchanged.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = gosync_pool::Pool::new(|| vec![0u8; 16]);
    /// let buf = pool.take();
    /// pool.put(buf);
    /// assert_eq!(pool.take().len(), 16);
    /// ```
    #[inline]
    pub fn take(&self) -> T {
        match self.places.home().take() {
            Some(value) => value,
            None => self.take_elsewhere(),
        }
    }

    #[cold]
    fn take_elsewhere(&self) -> T {
        self.places
            .shared
            .pop()
            .or_else(|| self.places.victim.pop())
            .unwrap_or_else(|| (self.new)())
    }

    /// Gives `value` to the pool: Go's `Put`. The reset function runs on it first; if every
    /// place is full, it is dropped.
    ///
    /// # Panics
    ///
    /// Panics if the reset function does; `value` is dropped and the pool is unchanged.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = gosync_pool::Pool::new(|| 0u64);
    /// pool.put(7);
    /// assert_eq!(pool.take(), 7);
    /// assert_eq!(pool.take(), 0); // none idle: a new one
    /// ```
    #[inline]
    pub fn put(&self, mut value: T) {
        self.reset(&mut value);
        self.put_reset(value);
    }

    /// Gives back an object the reset function has been run on.
    #[inline]
    pub(crate) fn put_reset(&self, value: T) {
        if let Err(value) = self.places.home().offer(value) {
            self.put_elsewhere(value);
        }
    }

    /// Runs the reset function, if there is one, on an object on its way back.
    #[inline]
    pub(crate) fn reset(&self, value: &mut T) {
        if let Some(reset) = &self.reset {
            reset(value);
        }
    }

    /// Puts a reset object in the shared queue, or drops it when that is full too (which
    /// keeps idle memory within the cap).
    #[cold]
    fn put_elsewhere(&self, value: T) {
        let _ = self.places.shared.push(value);
    }

    /// Drops every idle object now, including those in other threads' slots and in the victim
    /// generation. Objects handed out meanwhile are not affected; those put back concurrently
    /// may stay.
    ///
    /// # Panics
    ///
    /// Panics if dropping an object does; the objects not yet dropped stay in the pool.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = gosync_pool::Pool::new(|| 0u8);
    /// pool.put(9);
    /// pool.clear();
    /// assert_eq!(pool.take(), 0);
    /// ```
    pub fn clear(&self) {
        self.places.victim.drain(drop);
        self.places.drain_cache(drop);
    }

    /// Runs one cycle of the victim generation: drops what the last trim left idle and moves
    /// every object idle now (in any thread's slot or the shared queue) to the victim, where
    /// gets still find it. An object left idle across two trims is thus dropped, as Go's pool
    /// drops one idle across two garbage collections.
    ///
    /// The pool never trims by itself; see [the type's docs](Self#when-the-pool-trims).
    ///
    /// # Panics
    ///
    /// Panics if dropping an object does; the objects not yet moved or dropped stay in the pool.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::sync::Arc;
    ///
    /// let made = Arc::new(AtomicUsize::new(0));
    /// let counter = Arc::clone(&made);
    /// let pool = gosync_pool::Pool::new(move || counter.fetch_add(1, Ordering::Relaxed));
    /// pool.put(pool.take()); // object 0 made and idle
    /// pool.trim(); // 0 moves to the victim
    /// pool.put(pool.take()); // 0 found in the victim, idle again
    /// pool.trim();
    /// pool.trim(); // idle across two trims: dropped
    /// assert_eq!(pool.take(), 1);
    /// assert_eq!(made.load(Ordering::Relaxed), 2);
    /// ```
    pub fn trim(&self) {
        self.places.victim.drain(drop);
        self.places.drain_cache(|value| {
            // The victim has room for half the cap; what does not fit is dropped now.
            let _ = self.places.victim.push(value);
        });
    }
}

impl<T: Default + Send + 'static> Default for Pool<T> {
    /// A pool that makes objects with `T::default()` and does not reset them.
    fn default() -> Self {
        Self::new(T::default)
    }
}

impl<T> fmt::Debug for Pool<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("max_idle", &self.max_idle)
            .field("slots", &self.places.slots.len())
            .field("resets", &self.reset.is_some())
            .finish_non_exhaustive()
    }
}

impl<T> Places<T> {
    /// Room for `max_idle` objects: half for the victim, and of the rest a slot per core (a
    /// power of two, at most the rest, so the slots alone never exceed the cap) and the shared
    /// queue.
    fn new(max_idle: usize) -> Self {
        let victim = max_idle / 2;
        let cached = max_idle - victim;
        let most_slots = 1 << (usize::BITS - 1 - cached.leading_zeros());
        let slots = cores().next_power_of_two().min(MAX_SLOTS).min(most_slots);
        Self {
            slots: (0..slots).map(|_| CachePadded::new(Slot::new())).collect(),
            shared: BoundedQueue::new(cached - slots),
            victim: BoundedQueue::new(victim),
        }
    }

    /// The calling thread's private slot.
    #[inline]
    fn home(&self) -> &Slot<T> {
        &self.slots[thread_ticket() & (self.slots.len() - 1)]
    }

    /// Hands every object in the slots and the shared queue to `f`.
    fn drain_cache(&self, mut f: impl FnMut(T)) {
        for slot in self.slots.iter() {
            if let Some(value) = slot.take() {
                f(value);
            }
        }
        self.shared.drain(f);
    }
}

/// The cores available to this process, asked once.
#[cfg(not(gosync_loom))]
fn cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// Under loom: two, so that two model threads use different slots.
#[cfg(gosync_loom)]
fn cores() -> usize {
    2
}
