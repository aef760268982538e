//! Panics that cannot be raised: a primitive that already raises one panic, or runs while a
//! thread unwinds, must still drop what it holds, and a second panic escaping there would abort
//! the process (or hide the first). These drop it and discard what they catch.

use std::any::Any;
use std::mem;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Drops a caught panic's payload that will not be raised. If that drop panics in turn, the
/// second panic's payload is leaked: dropping it could panic yet again.
///
/// # Examples
///
/// ```
/// use gosync_park::discard_panic;
///
/// let payload = std::panic::catch_unwind(|| panic!("not raised")).unwrap_err();
/// discard_panic(payload);
/// ```
pub fn discard_panic(payload: Box<dyn Any + Send>) {
    if let Err(again) = catch_unwind(AssertUnwindSafe(move || drop(payload))) {
        mem::forget(again);
    }
}

/// Drops `value`; a panic in its `Drop` is caught and discarded ([`discard_panic`]).
///
/// For a value dropped on a path that already raises another panic: only that first one goes on.
///
/// # Examples
///
/// ```
/// use gosync_park::drop_discarding_panic;
///
/// struct Loud;
/// impl Drop for Loud {
///     fn drop(&mut self) {
///         panic!("dropped");
///     }
/// }
/// drop_discarding_panic(Loud); // the panic stops here
/// ```
pub fn drop_discarding_panic<T>(value: T) {
    if let Err(payload) = catch_unwind(AssertUnwindSafe(move || drop(value))) {
        discard_panic(payload);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A payload whose drop panics: the case where a panic is leaked. With a zero-sized payload
    /// of its own, so the leak holds no memory (miri checks for leaks).
    struct PanicsOnDrop;
    impl Drop for PanicsOnDrop {
        fn drop(&mut self) {
            std::panic::panic_any(());
        }
    }

    #[test]
    fn a_payload_whose_drop_panics_is_leaked_not_raised() {
        let payload = catch_unwind(|| std::panic::panic_any(PanicsOnDrop)).unwrap_err();
        discard_panic(payload);
    }

    #[test]
    fn a_value_whose_drop_panics_with_such_a_payload_is_discarded() {
        struct Twice;
        impl Drop for Twice {
            fn drop(&mut self) {
                std::panic::panic_any(PanicsOnDrop);
            }
        }
        drop_discarding_panic(Twice);
    }
}
