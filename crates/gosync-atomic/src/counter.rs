//! [`Counter`]: an `i64` counter striped over cache-padded cells.

// Notes about memory ordering: the cells are Relaxed throughout. A counter orders no other
// memory; `value()` is exact once the adders have stopped because whatever tells the reader
// they stopped (a join, a lock, a channel) already orders their adds before the read.

use std::fmt;

use crossbeam_utils::CachePadded;
use gosync_park::sync::{AtomicI64, Ordering::Relaxed};

/// Most cells a counter gets: 64 cache lines (8 KiB) is enough to spread 64 busy cores.
const MAX_CELLS: usize = 64;

/// A counter for totals many threads bump at once: requests served, bytes sent.
///
/// One shared `AtomicI64` makes every increment fight for the same cache line. A `Counter`
/// spreads increments over a few cache-padded cells (twice the available parallelism, rounded
/// up to a power of two, at most 64), each thread adding to its own; [`value`](Self::value)
/// sums the cells. Increments stay one uncontended atomic add per call.
///
/// # Differences from Go
///
/// Go has no striped counter; this replaces a hot `atomic.Int64`. Where that returns the new
/// total from `Add`, here [`add`](Self::add) returns nothing (no single cell knows the total),
/// and reading is the slower operation. Overflow wraps, as Go's `Add` does: the total is exact
/// modulo 2⁶⁴, whatever cells the adds landed on.
///
/// # Consistency
///
/// [`value`](Self::value) is exact once the adders have stopped and their adds happen before
/// the read (a thread join, a lock, a channel message). While adds run, it returns a total that
/// includes every add finished before the call and some of those that race with it. Likewise a
/// [`reset`](Self::reset) that races with adds may or may not lose them.
///
/// # Examples
///
/// ```
/// use gosync_atomic::Counter;
///
/// let served = Counter::new();
/// std::thread::scope(|s| {
///     for _ in 0..4 {
///         s.spawn(|| {
///             for _ in 0..1000 {
///                 served.inc();
///             }
///         });
///     }
/// });
/// assert_eq!(served.value(), 4000);
/// ```
pub struct Counter {
    /// The cells; their number is a power of two, so a thread's stripe is a mask away.
    cells: Box<[CachePadded<AtomicI64>]>,
}

impl Counter {
    /// Creates a counter at zero (Go's zero value).
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(gosync_atomic::Counter::new().value(), 0);
    /// ```
    #[must_use]
    pub fn new() -> Self {
        let parallelism = std::thread::available_parallelism().map_or(1, usize::from);
        let cells = (2 * parallelism).next_power_of_two().min(MAX_CELLS);
        Self {
            cells: (0..cells)
                .map(|_| CachePadded::new(AtomicI64::new(0)))
                .collect(),
        }
    }

    /// Adds `delta` (which may be negative), wrapping on overflow as Go's `Add` does.
    ///
    /// # Examples
    ///
    /// ```
    /// let bytes = gosync_atomic::Counter::new();
    /// bytes.add(1500);
    /// bytes.add(-500);
    /// assert_eq!(bytes.value(), 1000);
    /// bytes.add(i64::MAX);
    /// bytes.add(i64::MAX);
    /// assert_eq!(bytes.value(), 1000_i64.wrapping_add(i64::MAX).wrapping_add(i64::MAX));
    /// ```
    #[inline]
    pub fn add(&self, delta: i64) {
        let cell = &self.cells[gosync_park::thread_ticket() & (self.cells.len() - 1)];
        // Relaxed: see the notes at the top of the file.
        cell.fetch_add(delta, Relaxed);
    }

    /// Adds one.
    ///
    /// # Examples
    ///
    /// ```
    /// let hits = gosync_atomic::Counter::new();
    /// hits.inc();
    /// assert_eq!(hits.value(), 1);
    /// ```
    #[inline]
    pub fn inc(&self) {
        self.add(1);
    }

    /// Subtracts one.
    ///
    /// # Examples
    ///
    /// ```
    /// let open = gosync_atomic::Counter::new();
    /// open.dec();
    /// assert_eq!(open.value(), -1);
    /// ```
    #[inline]
    pub fn dec(&self) {
        self.add(-1);
    }

    /// The total: the wrapping sum of the cells. Exact once the adders have stopped (see
    /// [Consistency](Self#consistency)).
    ///
    /// # Examples
    ///
    /// ```
    /// let c = gosync_atomic::Counter::new();
    /// c.add(7);
    /// assert_eq!(c.value(), 7);
    /// ```
    #[must_use]
    pub fn value(&self) -> i64 {
        self.cells
            .iter()
            .fold(0_i64, |total, cell| total.wrapping_add(cell.load(Relaxed)))
    }

    /// Sets the total back to zero. Adds that race with the reset may be lost (see
    /// [Consistency](Self#consistency)).
    ///
    /// # Examples
    ///
    /// ```
    /// let c = gosync_atomic::Counter::new();
    /// c.add(7);
    /// c.reset();
    /// assert_eq!(c.value(), 0);
    /// ```
    pub fn reset(&self) {
        for cell in self.cells.iter() {
            cell.store(0, Relaxed);
        }
    }
}

impl Default for Counter {
    /// A counter at zero.
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Counter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Counter")
            .field("value", &self.value())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static_assertions::assert_impl_all!(Counter: Send, Sync, Default, fmt::Debug);

    #[test]
    fn cells_are_a_power_of_two_within_the_cap() {
        let cells = Counter::new().cells.len();
        assert!(cells.is_power_of_two() && cells <= MAX_CELLS, "{cells}");
    }

    #[test]
    fn debug_shows_the_total() {
        let c = Counter::default();
        c.add(-3);
        assert_eq!(format!("{c:?}"), "Counter { value: -3 }");
    }
}
