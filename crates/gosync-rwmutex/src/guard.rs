//! What the three guards share: reading the data under the lock they hold, and the way back to
//! that lock.

/// Implements, for a guard struct whose `lock` field is the `&'a RwMutex<T>` it holds a read,
/// upgradable or write lock on: `Deref` to the data, `Debug` and `Display` through it, and the
/// `rwmutex` accessor. `$acquire` names the `RwMutex` method that makes such a guard, for the
/// accessor's example.
macro_rules! shared_guard_impls {
    ($guard:ident, $acquire:ident) => {
        impl<'a, T: ?Sized> $guard<'a, T> {
            /// The lock this guard belongs to.
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("use gosync_rwmutex::{RwMutex, ", stringify!($guard), "};")]
            /// let lock = RwMutex::new(1);
            #[doc = concat!("let guard = lock.", stringify!($acquire), "();")]
            #[doc = concat!("let owner = ", stringify!($guard), "::rwmutex(&guard);")]
            /// assert!(std::ptr::eq(owner, &lock));
            /// ```
            #[inline]
            pub fn rwmutex(guard: &Self) -> &'a $crate::RwMutex<T> {
                guard.lock
            }
        }

        impl<T: ?Sized> ::core::ops::Deref for $guard<'_, T> {
            type Target = T;

            #[inline]
            fn deref(&self) -> &T {
                // SAFETY: this guard holds a read, upgradable or write lock on `lock`; each
                // keeps every other writer out for as long as the guard lives.
                unsafe { &*self.lock.data.ptr() }
            }
        }

        impl<T: ?Sized + ::core::fmt::Debug> ::core::fmt::Debug for $guard<'_, T> {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                ::core::fmt::Debug::fmt(&**self, f)
            }
        }

        impl<T: ?Sized + ::core::fmt::Display> ::core::fmt::Display for $guard<'_, T> {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                ::core::fmt::Display::fmt(&**self, f)
            }
        }
    };
}

pub(crate) use shared_guard_impls;
