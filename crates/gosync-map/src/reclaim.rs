//! Epoch reclamation and the striped length count.
//!
//! Each map has its own crossbeam-epoch collector rather than the process-wide one. So the
//! entries a map retires are dropped only by threads that use that map (a `Map` is `Sync` only
//! when its keys and values are `Send`), and all of them are dropped by the time the map's own
//! drop returns: a key or value that borrows data never outlives the map.
//!
//! A removed or replaced entry is not handed to the collector on its own: each thread collects
//! the entries it unlinks from a map in a batch (kept with its registration: about 6 KB of
//! entries, 16 to 256 of them, see [`batch`]), and hands the whole batch over as one deferred
//! function, pushed to the collector's shared queue at the end of the operation that filled it
//! (a flush: see `Pinned::flush_on_drop`). One deferred call per store cost a bag slot per store
//! and a 2 KB bag allocation every 64, which made the system allocator consolidate the freed
//! entries each time; a batch costs a fraction of that, and its vector goes round from batch to
//! stock to batch without being allocated again. An entry waits in its batch until its thread
//! has unlinked enough more to fill it (255 for a `u64` key and value; holding it longer than
//! needed is always safe); the batch of a thread that exited waits until the map drops, or
//! until a new thread takes the exited one's registration over and fills it. A full batch then
//! waits for its grace period and for a later collection (at a flush, or every so many pins).
//!
//! A key's or value's panicking drop in a batch is caught (`Batch::drop_catching_panic`): a
//! crossbeam bag runs its deferred functions in a loop that a panic would leave, losing the
//! other batches in it. So is one of a live entry's drop in the map's drop (the table's
//! `free_entries`, through [`Reclaim::keep_panic`]). The first such panic is kept in the spare
//! stock (later ones are discarded) and raised again where the map holds no lock, no batch is
//! half dropped and no result is built yet: at the start of the next write to see it, on any
//! thread, before that write does anything ([`Reclaim::pin_for_write`]), else at the end of the
//! map's drop (`SpareStock::drop`), unless that drop runs while its thread unwinds, which
//! discards it. Reads never raise it. Not at the end of the operation whose flush ran the batch:
//! its result is built by then, and a panic there would leak it (rustc does not drop a return
//! value when a later local's destructor panics).
//!
//! When the collector runs a batch, it drops the keys and values in place and keeps the memory
//! blocks for reuse (`Spare`, at most [`SPARE_BYTES`] of them per map), and a thread that needs
//! an entry takes a block from its own stock, refilled a whole batch at a time. A block is thus
//! reused only after its entry's grace period, as a freed one would be, without the allocator's
//! cost of freeing a batch of small blocks at once and allocating them one by one. Besides the
//! map's stock, each registration keeps, until the map drops, up to a batch of blocks and three
//! vectors of capacity `BATCH` (12 KB for a `u64` key and value). For entries over 384 bytes
//! the batch is `MIN_BATCH`: the map's stock then holds about 1.5 MB of them (64 at least), and
//! each thread 16.
//!
//! # Notes about memory ordering
//!
//! The length stripes are statistics: `Relaxed` throughout. `len` is exact once writers stop.
//! A batch is touched only by its own thread (a `RefCell`), then by the collector after the
//! grace period, which crossbeam orders after every pin that could see its entries. Spare
//! blocks pass between threads under the `Spare` lock, which orders the dropping of the old
//! entry before the writing of the new one; the new entry is then published as any other. A
//! kept panic passes under the `Spare::panic` lock; the `Relaxed` flag `Spare::panicked` only
//! spares every write that lock when there is none (a write that misses a panic kept a moment
//! ago on another thread leaves it to a later one).

use std::alloc::Layout;
use std::any::Any;
use std::cell::{Cell, RefCell};
use std::mem;
use std::ops::Deref;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};

use crossbeam_epoch::{Collector, Guard, LocalHandle};
use crossbeam_utils::CachePadded;
use gosync_park::discard_panic;
use gosync_park::sync::{AtomicBool, AtomicIsize, BookkeepingLock, Ordering};

use crate::table::{prefetch, Entry};

/// Unlinked entries a thread collects before handing them to the collector at once: about
/// `BATCH_BYTES` of entries, from `MIN_BATCH` to `MAX_BATCH` of them (256 for a `u64` key and
/// value); one under loom, so that the models free each entry as early as possible.
const fn batch<K, V>() -> usize {
    if cfg!(gosync_loom) {
        return 1;
    }
    let fit = BATCH_BYTES / mem::size_of::<Entry<K, V>>();
    if fit < MIN_BATCH {
        MIN_BATCH
    } else if fit > MAX_BATCH {
        MAX_BATCH
    } else {
        fit
    }
}

const BATCH_BYTES: usize = 6 * 1024;
const MIN_BATCH: usize = 16;
const MAX_BATCH: usize = 256;

/// Bytes of spare entries a map keeps for reuse (256 batches, 65,536 blocks, for a `u64` key and
/// value); beyond them, blocks are freed.
///
/// Sized for a time slice of removals. A thread descheduled in the middle of an operation stays
/// pinned (as does one inside a long `range`), so on busy cores the epoch stops for its whole
/// slice (milliseconds) and every entry the other threads unlink meanwhile waits: tens of
/// thousands in a write-heavy loop (see docs/map.md, "Sixth round"). When that pile is
/// collected, a stock that keeps it serves the next slice's inserts; a smaller one frees most of
/// it and the next slice allocates it again. The stock keeps only blocks the map had allocated
/// at one time, and keeps them until the map drops.
const SPARE_BYTES: usize = 1536 * 1024;
/// Batches of spare blocks a map keeps at least, whatever the size of its entries.
const MIN_SPARE_BATCHES: usize = 4;

/// Batches of spare blocks a map keeps: [`SPARE_BYTES`] of entries, counting a batch as at least
/// `BATCH_BYTES` (so entries under 24 bytes keep as many blocks as a `u64` key and value), and
/// [`MIN_SPARE_BATCHES`] at least.
const fn spare_batches<K, V>() -> usize {
    // Divided in two steps, not by the product, which could overflow for huge entries.
    let per_batch = SPARE_BYTES / mem::size_of::<Entry<K, V>>() / batch::<K, V>();
    let fit = if per_batch < SPARE_BYTES / BATCH_BYTES {
        per_batch
    } else {
        SPARE_BYTES / BATCH_BYTES
    };
    if fit < MIN_SPARE_BATCHES {
        MIN_SPARE_BATCHES
    } else {
        fit
    }
}

/// A map's epoch collector and each thread's registration with it.
pub(crate) struct Reclaim<K, V> {
    // Field order is drop order: the registrations first (freeing the entries still batched,
    // when no thread can reach them), so that the collector's shared state is freed by the
    // collector's own drop, never from inside a handle's finalisation (which would free the
    // very `Local` it runs on).
    /// Each on its own cache lines: `ThreadLocal` keeps registrations side by side in an array,
    /// and one thread's batch bookkeeping, written on every removal, shared a line with the
    /// next thread's registration, read on every operation (10% of a `delete` in a profile).
    #[cfg(not(gosync_loom))]
    participants: thread_local::ThreadLocal<CachePadded<Participant<K, V>>>,
    /// Loom runs its threads on one OS thread, where `ThreadLocal` cannot tell them apart: a
    /// list keyed by loom's thread ids instead, each registration boxed so that it stays put.
    #[cfg(gosync_loom)]
    participants: BookkeepingLock<LoomParticipants<K, V>>,
    collector: Collector,
    /// Allocated apart, so that the batches the collector runs (which point to it) find it
    /// where it was when the map moves; dropped after the collector, whose drop runs the last
    /// batches.
    spare: SpareStock<K, V>,
}

/// Registrations by loom thread id, each boxed so that it stays put.
#[cfg(gosync_loom)]
type LoomParticipants<K, V> = Vec<(loom::thread::ThreadId, Box<Participant<K, V>>)>;

/// One thread's registration with a map's collector, and the entries it unlinked that wait to
/// be handed to the collector.
struct Participant<K, V> {
    handle: LocalHandle,
    retired: RefCell<Vec<*mut Entry<K, V>>>,
    /// Blocks this thread reuses for new entries (see `Spare`).
    blocks: RefCell<Vec<*mut Entry<K, V>>>,
    /// An emptied `blocks` vector, kept to collect the next batch in (empty, capacity `BATCH`),
    /// so that a batch's vector goes round (batch, spare stock, a thread's blocks, batch)
    /// instead of being allocated for every batch.
    empty: RefCell<Vec<*mut Entry<K, V>>>,
    /// The map's spare stock, where the last of `retired` goes when the map drops.
    spare: *const Spare<K, V>,
}

// SAFETY: a `LocalHandle` is `!Send` because two threads must not use it at once, and the
// batch is a `RefCell`. `ThreadLocal` gives each registration to one thread only (a later
// thread reuses the id only after that thread has exited, with all its guards gone; under loom
// the list is keyed by thread id), and drops them all in the map's drop, when no thread uses
// the map. The batched entries then drop there: a `Map` is `Send` only when `K, V: Send`.
unsafe impl<K, V> Send for Participant<K, V> {}

impl<K, V> Participant<K, V> {
    const BATCH: usize = batch::<K, V>();

    fn new(handle: LocalHandle, spare: *const Spare<K, V>) -> Self {
        Self {
            handle,
            retired: RefCell::new(Vec::with_capacity(Self::BATCH)),
            blocks: RefCell::new(Vec::new()),
            empty: RefCell::new(Vec::new()),
            spare,
        }
    }
}

/// Registrations drop in the map's drop, when no thread can reach the map's entries.
impl<K, V> Drop for Participant<K, V> {
    fn drop(&mut self) {
        free_blocks(mem::take(self.blocks.get_mut()));
        let entries = mem::take(self.retired.get_mut());
        if !entries.is_empty() {
            // The partial batch drops as a full one: a panicking drop loses no other entry, and
            // the map's drop raises the panic once the rest is dropped.
            Batch {
                entries: entries.into_boxed_slice(),
                spare: self.spare,
            }
            .drop_catching_panic();
        }
    }
}

/// Frees spare blocks.
fn free_blocks<K, V>(blocks: Vec<*mut Entry<K, V>>) {
    for block in blocks {
        // SAFETY: a spare block was allocated as a `Box<Entry<K, V>>` (so with this layout, by
        // the global allocator), holds no entry any more, and is owned by the caller.
        unsafe { std::alloc::dealloc(block.cast(), Layout::new::<Entry<K, V>>()) };
    }
}

/// Unlinked entries, each retired once; dropping the batch drops them and hands their blocks
/// to the map's spare stock. Three words, so that crossbeam keeps the deferred call that owns
/// it inline in its bag rather than in a `Box` of its own.
struct Batch<K, V> {
    entries: Box<[*mut Entry<K, V>]>,
    spare: *const Spare<K, V>,
}

const _: () = assert!(mem::size_of::<Batch<u64, u64>>() == 3 * mem::size_of::<usize>());

impl<K, V> Batch<K, V> {
    /// Drops the batch; a key's or value's panicking drop is kept in the spare stock (the rest
    /// of the batch is dropped all the same) for the map to raise where that is safe
    /// ([`Reclaim::pin_for_write`], `SpareStock::drop`). Crossbeam runs the deferred functions
    /// of a bag in a loop, which a panic would leave, losing every other batch in the bag.
    fn drop_catching_panic(self) {
        let spare = self.spare;
        if let Err(payload) = catch_unwind(AssertUnwindSafe(move || drop(self))) {
            // SAFETY: as in `BlocksBack::drop`.
            unsafe { &*spare }.keep_panic(payload);
        }
    }
}

impl<K, V> Drop for Batch<K, V> {
    fn drop(&mut self) {
        // The blocks go to the spare stock once their entries are dropped, also when a key's or
        // value's drop panics (`BlocksBack` drops last).
        let blocks = BlocksBack {
            blocks: mem::take(&mut self.entries).into_vec(),
            spare: self.spare,
        };
        // A panicking drop leaves the rest to `rest`'s own drop, so no other entry is lost;
        // that drop catches and discards a second panic (one escaping it while the first
        // unwinds would abort the process: two such values often share a batch).
        let mut rest = RestOfBatch(&blocks.blocks);
        while let Some((&entry, tail)) = rest.0.split_first() {
            rest.0 = tail;
            // SAFETY: see `RestOfBatch::drop`.
            unsafe { std::ptr::drop_in_place(entry) };
        }
    }
}

/// Entries of a batch still to drop.
struct RestOfBatch<'a, K, V>(&'a [*mut Entry<K, V>]);

impl<K, V> Drop for RestOfBatch<'_, K, V> {
    /// Runs only when a drop in `Batch::drop` panicked, so while that panic unwinds: a further
    /// panic is caught here and discarded (only the first is kept), as one escaping a drop
    /// during unwinding would abort the process.
    fn drop(&mut self) {
        for &entry in self.0 {
            // SAFETY: each entry was unlinked and retired once (`Pinned::retire_entry`); a
            // batch drops after the grace period that began once all of its entries were
            // unlinked, or in the map's drop, so no thread can still read it. Each is dropped
            // once (the loop moves past it whether or not its drop panics), in place: its
            // block is kept.
            let dropped = catch_unwind(AssertUnwindSafe(|| unsafe {
                std::ptr::drop_in_place(entry)
            }));
            if let Err(again) = dropped {
                discard_panic(again);
            }
        }
    }
}

/// A batch's blocks, whose entries are dropped, on their way to the spare stock.
struct BlocksBack<K, V> {
    blocks: Vec<*mut Entry<K, V>>,
    spare: *const Spare<K, V>,
}

impl<K, V> Drop for BlocksBack<K, V> {
    fn drop(&mut self) {
        // SAFETY: the spare stock is allocated apart (`SpareStock`) and freed after every batch
        // has run (after the registrations and the collector).
        let spare = unsafe { &*self.spare };
        spare.put(mem::take(&mut self.blocks));
    }
}

/// The map's [`Spare`] stock, allocated on its own and reached through a raw pointer: the
/// collector's batches keep pointers to it, which a `Box` would invalidate each time the map
/// (and the `Box` with it) moves.
struct SpareStock<K, V>(std::ptr::NonNull<Spare<K, V>>);

impl<K, V> SpareStock<K, V> {
    fn new() -> Self {
        let spare = Box::new(Spare {
            batches: BookkeepingLock::new(Vec::new()),
            panicked: CachePadded::new(AtomicBool::new(false)),
            panic: BookkeepingLock::new(None),
        });
        Self(std::ptr::NonNull::from(Box::leak(spare)))
    }

    fn get(&self) -> &Spare<K, V> {
        // SAFETY: allocated in `new` and freed only in `drop`, after every use through `self`.
        unsafe { self.0.as_ref() }
    }
}

impl<K, V> Drop for SpareStock<K, V> {
    fn drop(&mut self) {
        // SAFETY: allocated as a `Box` in `new`; the map's collector, whose batches point to it,
        // has dropped before (field order in `Reclaim`), so nothing points to it any more.
        let spare = unsafe { Box::from_raw(self.0.as_ptr()) };
        let panic = spare.panic.lock().take();
        drop(spare);
        // Every batch and every live entry has dropped: the panic a key's or value's drop
        // raised, if no write raised it yet (discarded if the map drops while its thread
        // unwinds, which another panic would abort).
        if let Some(payload) = panic {
            if std::thread::panicking() {
                discard_panic(payload);
            } else {
                resume_unwind(payload);
            }
        }
    }
}

/// A map's stock of spare entry blocks, in batches: blocks allocated as `Box<Entry<K, V>>`
/// whose entries were dropped after their grace period, so that no thread reads them.
struct Spare<K, V> {
    batches: BookkeepingLock<Vec<Vec<*mut Entry<K, V>>>>,
    /// Whether `panic` holds one: read by every write, so that the lock is taken only then. On
    /// its own cache line, which only a kept panic writes: `batches` beside it is written at
    /// every batch hand-over, and every writer would then miss it.
    panicked: CachePadded<AtomicBool>,
    /// The first panic of a key's or value's drop in a batch or in the map's drop, not raised
    /// yet (see `Batch::drop_catching_panic`); later ones are discarded, as only one can be
    /// raised.
    panic: BookkeepingLock<Option<Box<dyn Any + Send>>>,
}

impl<K, V> Spare<K, V> {
    fn put(&self, blocks: Vec<*mut Entry<K, V>>) {
        let mut batches = self.batches.lock();
        if batches.len() < spare_batches::<K, V>() {
            batches.push(blocks);
        } else {
            drop(batches);
            free_blocks(blocks);
        }
    }

    fn take(&self) -> Option<Vec<*mut Entry<K, V>>> {
        self.batches.lock().pop()
    }

    fn keep_panic(&self, payload: Box<dyn Any + Send>) {
        let mut panic = self.panic.lock();
        if panic.is_none() {
            *panic = Some(payload);
            // Relaxed: a hint for `Reclaim::raise_kept_panic`; the lock orders the payload.
            self.panicked.store(true, Ordering::Relaxed);
        } else {
            drop(panic);
            discard_panic(payload);
        }
    }

    /// Raises the kept panic, if another write has not taken it since the caller saw the flag.
    #[cold]
    #[inline(never)]
    fn raise_panic(&self) {
        let payload = {
            let mut panic = self.panic.lock();
            // Relaxed: as in `keep_panic`; cleared under the lock, with the payload taken.
            self.panicked.store(false, Ordering::Relaxed);
            panic.take()
        };
        if let Some(payload) = payload {
            resume_unwind(payload);
        }
    }
}

impl<K, V> Drop for Spare<K, V> {
    fn drop(&mut self) {
        for blocks in mem::take(&mut *self.batches.lock()) {
            free_blocks(blocks);
        }
    }
}

/// A pinned thread: nothing retired from now on is freed until it drops. Dereferences to the
/// epoch guard.
pub(crate) struct Pinned<'m, K, V> {
    guard: Guard,
    participant: &'m Participant<K, V>,
    spare: &'m Spare<K, V>,
    /// Whether to hand this thread's deferred functions to the collector when unpinning (see
    /// [`Pinned::flush_on_drop`]).
    flush: Cell<bool>,
}

impl<K, V> Deref for Pinned<'_, K, V> {
    type Target = Guard;

    fn deref(&self) -> &Guard {
        &self.guard
    }
}

impl<K, V> Drop for Pinned<'_, K, V> {
    /// Flushes, and never raises a panic that collecting kept: the caller's result is built by
    /// now, and would leak (the next write raises it, see [`Reclaim::pin_for_write`]).
    fn drop(&mut self) {
        // Not while unwinding: the panic goes on at once, and the batches wait for a later
        // flush.
        if self.flush.get() && !std::thread::panicking() {
            self.guard.flush();
        }
    }
}

impl<K, V> Pinned<'_, K, V> {
    /// Hands this thread's deferred functions (a retired table or batch among them) to the
    /// collector when this guard drops, rather than when 64 of them fill its bag. Not at once:
    /// collecting may drop values, whose `Drop` may call into the map, and the caller may hold
    /// a lock of it; a `Pinned` drops at the end of a map method, when it holds none.
    pub(crate) fn flush_on_drop(&self) {
        self.flush.set(true);
    }

    /// A new entry, in a spare block when this thread or the map has one.
    #[inline]
    pub(crate) fn new_entry(&self, hash: u64, key: K, value: V) -> Box<Entry<K, V>> {
        let block = {
            let mut blocks = self.participant.blocks.borrow_mut();
            if blocks.is_empty() {
                if let Some(batch) = self.spare.take() {
                    let emptied = mem::replace(&mut *blocks, batch);
                    if emptied.capacity() == Participant::<K, V>::BATCH {
                        *self.participant.empty.borrow_mut() = emptied;
                    }
                }
            }
            let block = blocks.pop();
            // The next store writes the next block: fetch it now, while this one is filled.
            if let Some(&next) = blocks.last() {
                prefetch(next);
            }
            block
        };
        match block {
            Some(block) => {
                // SAFETY: a spare block (see `Spare`): allocated as a `Box<Entry<K, V>>`, empty,
                // read by no thread, and now this thread's alone (taken from its stock). Writing
                // a whole entry into it makes it that `Box` again.
                unsafe {
                    block.write(Entry::unboxed(hash, key, value));
                    Box::from_raw(block)
                }
            }
            None => Box::new(Entry::unboxed(hash, key, value)),
        }
    }

    /// Retires an entry: it is freed once no thread pinned now can read it, at the latest when
    /// the map drops.
    ///
    /// # Safety
    ///
    /// `entry` (a `Box` given up with `into_raw`) is unreachable from the map for anyone
    /// pinning after now, and nobody else retires or frees it.
    pub(crate) unsafe fn retire_entry(&self, entry: *mut Entry<K, V>) {
        let full = {
            let mut retired = self.participant.retired.borrow_mut();
            retired.push(entry);
            (retired.len() >= Participant::<K, V>::BATCH).then(|| {
                let mut next = mem::take(&mut *self.participant.empty.borrow_mut());
                if next.capacity() != Participant::<K, V>::BATCH {
                    next = Vec::with_capacity(Participant::<K, V>::BATCH);
                }
                mem::replace(&mut *retired, next)
            })
        };
        if let Some(entries) = full {
            let batch = Batch {
                // Without a copy: its capacity is `BATCH`, its length too.
                entries: entries.into_boxed_slice(),
                spare: self.spare,
            };
            // SAFETY: every entry in the batch was unlinked before now (the caller's promise,
            // for each), so the collector runs this only once no thread can read them. It may
            // run on another thread that uses the map: a `Map` is `Sync` only when `K, V: Send`.
            unsafe {
                self.guard
                    .defer_unchecked(move || batch.drop_catching_panic())
            };
            // Else the batch would wait in this thread's bag for 63 more deferred calls, and its
            // blocks with it.
            self.flush_on_drop();
        }
    }
}

impl<K, V> Reclaim<K, V> {
    pub(crate) fn new() -> Self {
        Self {
            collector: Collector::new(),
            spare: SpareStock::new(),
            #[cfg(not(gosync_loom))]
            participants: thread_local::ThreadLocal::new(),
            #[cfg(gosync_loom)]
            participants: BookkeepingLock::new(Vec::new()),
        }
    }

    /// Raises the panic a key's or value's drop raised in a batch, if one is kept: every write
    /// calls this first (through [`Reclaim::pin_for_write`], or itself when it pins later), so
    /// the write that raises it has done nothing, and built nothing that could leak. Reads do
    /// not call it. One `Relaxed` load of a line that only a kept panic writes.
    #[inline]
    pub(crate) fn raise_kept_panic(&self) {
        let spare = self.spare.get();
        // Relaxed: pairs with the store in `keep_panic`; the payload passes under the lock.
        if spare.panicked.load(Ordering::Relaxed) {
            spare.raise_panic();
        }
    }

    /// Pins the current thread for a write: raises a kept panic first (see
    /// [`Reclaim::raise_kept_panic`]), then pins.
    #[inline]
    pub(crate) fn pin_for_write(&self) -> Pinned<'_, K, V> {
        self.raise_kept_panic();
        self.pin()
    }

    /// Keeps the panic of a live entry's drop in the map's drop, with those of the batches, for
    /// the end of the map's drop to raise.
    pub(crate) fn keep_panic(&self, payload: Box<dyn Any + Send>) {
        self.spare.get().keep_panic(payload);
    }

    /// Pins the current thread: nothing retired from now on is freed until the guard drops.
    #[inline]
    pub(crate) fn pin(&self) -> Pinned<'_, K, V> {
        let participant = self.participant();
        Pinned {
            guard: participant.handle.pin(),
            participant,
            spare: self.spare.get(),
            flush: Cell::new(false),
        }
    }

    /// This thread's registration. No cache of the last map a thread used in front of it: a
    /// thread whose thread-locals are being destroyed may have given its `ThreadLocal` slot up
    /// to a new thread already, and a cached registration would then be used by both.
    #[cfg(not(gosync_loom))]
    #[inline]
    fn participant(&self) -> &Participant<K, V> {
        match self.participants.get() {
            Some(participant) => participant,
            None => self.register(),
        }
    }

    /// Registers the current thread, on its first use of the map.
    #[cfg(not(gosync_loom))]
    #[cold]
    #[inline(never)]
    fn register(&self) -> &Participant<K, V> {
        self.participants.get_or(|| {
            CachePadded::new(Participant::new(
                self.collector.register(),
                self.spare.get(),
            ))
        })
    }

    #[cfg(gosync_loom)]
    fn participant(&self) -> &Participant<K, V> {
        let me = loom::thread::current().id();
        let mut participants = self.participants.lock();
        let participant: *const Participant<K, V> =
            match participants.iter().find(|(id, _)| *id == me) {
                Some((_, p)) => &**p,
                None => {
                    let p = Box::new(Participant::new(
                        self.collector.register(),
                        self.spare.get(),
                    ));
                    let ptr: *const Participant<K, V> = &*p;
                    participants.push((me, p));
                    ptr
                }
            };
        // SAFETY: registrations are boxed and stay in the list until the map drops.
        unsafe { &*participant }
    }
}

/// Stripes of the length count, each on its own cache line.
const STRIPES: usize = 8;

/// The number of entries, as a sum of per-thread-group deltas, so writers on different threads
/// do not contend on one counter.
pub(crate) struct Len {
    stripes: [CachePadded<AtomicIsize>; STRIPES],
}

impl Len {
    pub(crate) fn new() -> Self {
        Self {
            stripes: std::array::from_fn(|_| CachePadded::new(AtomicIsize::new(0))),
        }
    }

    #[inline]
    pub(crate) fn add(&self, delta: isize) {
        self.stripes[stripe()].fetch_add(delta, Ordering::Relaxed);
    }

    /// The sum, which concurrent writers can make momentarily negative: read as 0.
    pub(crate) fn get(&self) -> usize {
        let sum: isize = self.stripes.iter().map(|s| s.load(Ordering::Relaxed)).sum();
        sum.max(0) as usize
    }
}

/// This thread's stripe: threads take stripes in turn.
#[inline]
fn stripe() -> usize {
    gosync_park::thread_ticket() % STRIPES
}

#[cfg(all(test, not(gosync_loom)))]
mod tests {
    use super::*;

    #[test]
    fn batches_hold_about_6_kb_and_the_stock_1_5_mb() {
        assert_eq!(batch::<u64, u64>(), 256);
        assert_eq!(batch::<u8, u8>(), 256);
        assert_eq!(batch::<String, String>(), 6 * 1024 / 56);
        assert_eq!(batch::<u64, [u8; 4096]>(), 16);
        // 1.5 MB of small blocks; large entries keep four batches.
        assert_eq!(spare_batches::<u64, u64>(), 256);
        assert_eq!(batch::<u64, u64>() * spare_batches::<u64, u64>(), 65_536);
        assert_eq!(spare_batches::<u64, [u8; 4096]>(), 23);
        assert_eq!(spare_batches::<u64, [u8; 65536]>(), MIN_SPARE_BATCHES);
        // Smaller entries keep as many blocks, not more.
        assert_eq!(spare_batches::<u32, u32>(), 256);
        assert_eq!(spare_batches::<(), ()>(), 256);
    }

    fn spare_block<T>() -> *mut T {
        let layout = Layout::new::<T>();
        // SAFETY: every entry has a non-zero size (its hash).
        let block = unsafe { std::alloc::alloc(layout) }.cast::<T>();
        if block.is_null() {
            std::alloc::handle_alloc_error(layout);
        }
        block
    }

    /// Fills a stock with one-block batches, one more than it keeps, and empties it again.
    fn overfill<K, V>() {
        let stock = SpareStock::<K, V>::new();
        for _ in 0..=spare_batches::<K, V>() {
            stock.get().put(vec![spare_block::<Entry<K, V>>()]);
        }
        // The extra batch went back to the allocator (a path miri checks here, as few other
        // tests still overflow the stock); the kept ones go with the stock.
        assert_eq!(stock.get().batches.lock().len(), spare_batches::<K, V>());
        let taken = stock.get().take().expect("a kept batch");
        assert_eq!(taken.len(), 1);
        free_blocks(taken);
    }

    #[test]
    fn the_stock_frees_the_blocks_beyond_its_cap() {
        overfill::<u64, u64>();
        overfill::<u64, [u8; 65536]>();
    }
}
