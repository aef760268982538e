//! Go's `sync.Once`, `sync.OnceFunc` and `sync.OnceValue`, with a [`OnceCell`] for values.
//!
//! | Go | here |
//! | --- | --- |
//! | `var once sync.Once; once.Do(f)` | [`Once::new`], [`Once::call_once`] |
//! | `sync.OnceFunc(f)` | [`once_func`] |
//! | `sync.OnceValue(f)` | [`once_value`] |
//! | `sync.OnceValues(f)` | [`once_value`] returning a tuple or a `Result` |
//! | a `sync.Once` guarding a variable | [`OnceCell`] |
//! | (no Go analog) | [`OnceCell::try_get_or_init_for`] and the other [bounded waits](OnceCell#bounded-waits) |
//!
//! The first caller runs the function; racing callers sleep (in gosync-park's queue) until it
//! is done and then see all of its writes. Once done, every call is one atomic load.
//!
//! Every wait here is behind a function another thread is running. `Once::call_once` and the
//! functions from [`once_func`] and [`once_value`] have only that wait (Go's `Do`, `OnceFunc`
//! and `OnceValue` have no variants, and a caller that gave up would not know the work was
//! done); `OnceCell`'s init methods have gosync's bounded variants (`try_`, `_for`, `_until`,
//! `_ctx`, see [`OnceCell`'s bounded waits](OnceCell#bounded-waits)), which hand the caller's
//! function back unrun when they give up.
//!
//! Panics follow Go: a panicking function counts as done for [`Once`], and the functions from
//! [`once_func`] and [`once_value`] panic again on every later call. A [`OnceCell`] is the
//! exception: it cannot hold a value a panic never made, so it stays empty and the next caller
//! tries (as std's `OnceLock`).
//!
//! Initialising a `Once` or `OnceCell` from inside its own function deadlocks, as in Go; it is
//! not detected.
//!
//! # Examples
//!
//! ```
//! use gosync_once::{Once, OnceCell};
//!
//! static SETUP: Once = Once::new();
//! static NAME: OnceCell<String> = OnceCell::new();
//!
//! SETUP.call_once(|| println!("set up once"));
//! assert_eq!(NAME.get_or_init(|| "gosync".to_owned()), "gosync");
//! ```

mod cell;
mod func;
mod once;
mod raw;

pub use cell::OnceCell;
pub use func::{once_func, once_value};
pub use once::Once;

#[cfg(test)]
mod tests {
    use super::*;

    static_assertions::assert_impl_all!(Once: Send, Sync, Default, std::fmt::Debug);
    static_assertions::assert_impl_all!(OnceCell<String>: Send, Sync, Default, Clone, std::fmt::Debug);
    static_assertions::assert_impl_all!(OnceCell<std::cell::Cell<u8>>: Send);
    static_assertions::assert_not_impl_any!(OnceCell<std::cell::Cell<u8>>: Sync);
    static_assertions::assert_not_impl_any!(OnceCell<std::rc::Rc<u8>>: Send, Sync);

    #[test]
    fn debug_shows_the_state() {
        let once = Once::new();
        assert_eq!(format!("{once:?}"), "Once { state: incomplete }");
        once.call_once(|| {});
        assert_eq!(format!("{once:?}"), "Once { state: complete }");
        let cell = OnceCell::new();
        assert_eq!(format!("{cell:?}"), "OnceCell(<uninit>)");
        cell.set(3).unwrap();
        assert_eq!(format!("{cell:?}"), "OnceCell(3)");
    }

    #[test]
    fn panic_message_reads_str_and_string() {
        assert_eq!(func_message(Box::new("a")), "a");
        assert_eq!(func_message(Box::new(String::from("b"))), "b");
        assert_eq!(func_message(Box::new(3_u8)), "Box<dyn Any>");
    }

    fn func_message(p: Box<dyn std::any::Any + Send>) -> String {
        let f = once_func(move || std::panic::resume_unwind(p));
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(&f));
        let later = std::panic::catch_unwind(std::panic::AssertUnwindSafe(&f)).unwrap_err();
        later.downcast_ref::<String>().cloned().unwrap()
    }
}
