//! Everything that differs when gosync is model-checked by loom (`--cfg gosync_loom`), in one
//! place.
//!
//! Loom runs each model many times, once per interleaving, with its own atomics, cells, locks
//! and threads, and it has no clock. The facade ([`sync`](crate::sync), [`cell`](crate::cell),
//! [`thread`](crate::thread), [`hint`](crate::hint)) swaps in loom's types; the rest of the
//! difference is listed here, and nowhere else does a gosync crate change behaviour under loom.
//!
//! | what | normally | under loom | why |
//! | --- | --- | --- | --- |
//! | a deadline inside [`park`](crate::park) | fires when the clock passes it | fires at the wait's first look | no clock: a timed wait then models "the timeout fires at any point of the race" |
//! | [`deadline_passed`](crate::deadline_passed) before a wait | the clock | the clock | a model says "already past" with `Instant::now()`, "fires while waiting" with a far deadline |
//! | a `Context`'s deadline | passes by the clock | `is_done` reads the clock; a wait on the context gives up at its first look, with `DeadlineExceeded` ([`cancelled_error`](crate::cancelled_error)) | as for any deadline inside a park |
//! | a parked thread's timed sleep | sleeps until the deadline | returns at once | nothing would wake it otherwise |
//! | [`WaitClock`](crate::WaitClock) | time since the first park | wake-ups, "long" from the [`LONG_WAIT_WAKE`]th on | both fairness branches are explored deterministically |
//! | adaptive spin, [`SpinWait`](crate::SpinWait) | as [`spin`](crate::spin) says | never spins | loom would explore every iteration (miri does not spin either) |
//! | the park table | 256 buckets | 1 bucket | keys are heap addresses that change between iterations; every iteration must take the same locks |
//! | word waits ([`wait`](crate::wait)) | a futex | a [`park`](crate::park) on the word's address | loom cannot model a futex |
//! | an untimed [`park`](crate::park)'s sleep on its own state word | a futex | the same path; the futex is a `Mutex<bool>` + `Condvar` next to the word, on which the sleeper blocks until its waker sets the flag | loom cannot model a futex; the stand-in is per waiter because a process-wide one broke loom's bookkeeping |
//! | `const fn` constructors | `const` | not `const` (loom's atomics are not): [`const_unless_loom!`](crate::const_unless_loom) | |
//! | test hooks (a mutex's `force_starvation`, say) | only with the crate's `test-hooks` feature | always | models and the crate's own tests reach states that timing alone reaches rarely |
//!
//! A primitive's own tuning number that must be smaller for a model to stay small (the reader
//! shards of an `RwMutex`, say) is one constant written with [`IS_LOOM`], next to its normal
//! value and documented there:
//!
//! ```
//! /// Shards per lock; two under loom, so that two model threads count on different lines.
//! const SHARDS: usize = if gosync_park::model::IS_LOOM { 2 } else { 16 };
//! # assert!(SHARDS >= 2);
//! ```
//!
//! Test hooks follow one convention: `#[cfg(any(gosync_loom, feature = "test-hooks"))]` on the
//! item, a `test-hooks = []` feature in the crate's manifest that is documented as not part of
//! the API, and a dev-dependency of the crate on itself with that feature, so that
//! `cargo test -p CRATE` sees the hooks and users never do:
//!
//! ```toml
//! [features]
//! # Test hooks for this crate's own tests; not part of the API.
//! test-hooks = []
//!
//! [dev-dependencies]
//! gosync-mutex = { path = ".", features = ["test-hooks"] }
//! ```

/// Whether this build is a loom model (`--cfg gosync_loom`). For constants that differ under
/// loom; see the [module docs](self).
///
/// # Examples
///
/// ```
/// assert!(!gosync_park::model::IS_LOOM); // doc tests never run under loom
/// ```
pub const IS_LOOM: bool = cfg!(gosync_loom);

/// Under loom, the wake-up from which a [`WaitClock`](crate::WaitClock) says the waiter has
/// waited long: the second, so that a model with one waiter woken twice reaches the starving
/// branch and one woken once does not.
///
/// # Examples
///
/// ```
/// assert_eq!(gosync_park::model::LONG_WAIT_WAKE, 2);
/// ```
pub const LONG_WAIT_WAKE: u32 = 2;

/// Declares `const fn`s that are `const` normally and plain `fn`s under loom, whose atomics and
/// cells cannot be made in a `const` context. Every gosync constructor that a `static` may call
/// is written this way, once, instead of twice under opposite `cfg`s.
///
/// Write the functions exactly as they read normally, `const` included, with their docs and
/// attributes; several may share one invocation.
///
/// # Examples
///
/// ```
/// use gosync_park::sync::{AtomicU32, Ordering};
///
/// /// A counter that can live in a `static`.
/// pub struct Hits(AtomicU32);
///
/// impl Hits {
///     gosync_park::const_unless_loom! {
///         /// No hits yet.
///         #[must_use]
///         pub const fn new() -> Self {
///             Self(AtomicU32::new(0))
///         }
///     }
/// }
///
/// static HITS: Hits = Hits::new();
/// HITS.0.fetch_add(1, Ordering::Relaxed);
/// ```
#[macro_export]
macro_rules! const_unless_loom {
    ($(
        $(#[$attr:meta])*
        $vis:vis const fn $name:ident ($($params:tt)*) $(-> $ret:ty)? $body:block
    )+) => {$(
        #[cfg(not(gosync_loom))]
        $(#[$attr])*
        $vis const fn $name($($params)*) $(-> $ret)? $body

        #[cfg(gosync_loom)]
        $(#[$attr])*
        $vis fn $name($($params)*) $(-> $ret)? $body
    )+};
}
