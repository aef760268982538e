//! A per-thread ticket for striped structures: each thread draws a number the first time it
//! asks and keeps it, so a structure with `n` stripes (a power of two) sends the thread to
//! stripe `ticket & (n - 1)`, and threads that start together land on different stripes.

use std::sync::atomic::{AtomicUsize, Ordering};

/// This thread's ticket: drawn in turn (0, 1, 2, …) on the thread's first call, the same on
/// every later call.
///
/// Striped structures (a pool's per-thread slots, a striped counter, reader shards) index their
/// stripes with it: `thread_ticket() & (stripes - 1)`. Tickets are never given back, so a
/// program that keeps starting threads goes round the stripes in turn, and two threads share a
/// stripe only when there are more threads than stripes. Under loom the turns start again with
/// each model execution, so runs replay deterministically.
///
/// # Examples
///
/// ```
/// let mine = gosync_park::thread_ticket();
/// assert_eq!(gosync_park::thread_ticket(), mine);
/// let theirs = std::thread::spawn(gosync_park::thread_ticket).join().unwrap();
/// assert_ne!(theirs, mine);
/// ```
#[inline]
pub fn thread_ticket() -> usize {
    TICKET.with(|ticket| match ticket.get() {
        0 => draw(ticket),
        plus_one => plus_one - 1,
    })
}

/// A number that tells the calling thread from every other running thread (the address of its
/// ticket's thread-local), or `None` once its thread-locals are being destroyed.
///
/// Only under loom can the thread-locals be gone (its thread-locals are not `const`); code that
/// may run as a thread or a model exits, such as crossbeam-epoch's deferred functions, asks this
/// rather than [`thread_ticket`], which draws from a counter loom may already have torn down.
///
/// # Examples
///
/// ```
/// let mine = gosync_park::thread_identity();
/// assert!(mine.is_some());
/// assert_eq!(gosync_park::thread_identity(), mine);
/// ```
#[inline]
pub fn thread_identity() -> Option<usize> {
    TICKET
        .try_with(|ticket| std::ptr::from_ref(ticket) as usize)
        .ok()
}

#[cold]
fn draw(ticket: &std::cell::Cell<usize>) -> usize {
    // Relaxed: a number handed out, ordering nothing.
    let drawn = NEXT.fetch_add(1, Ordering::Relaxed);
    ticket.set(drawn.wrapping_add(1));
    drawn
}

#[cfg(not(gosync_loom))]
std::thread_local! {
    /// One past this thread's ticket; 0 until it has drawn one.
    static TICKET: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// The next ticket to hand out.
#[cfg(not(gosync_loom))]
static NEXT: AtomicUsize = AtomicUsize::new(0);

// Under loom: a model thread's ticket and the turns live for one execution.
#[cfg(gosync_loom)]
loom::thread_local! {
    static TICKET: std::cell::Cell<usize> = std::cell::Cell::new(0);
}

#[cfg(gosync_loom)]
loom::lazy_static! {
    static ref NEXT: AtomicUsize = AtomicUsize::new(0);
}
