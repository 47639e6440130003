//! The guest-side SDK for robohost robots: Rust code that a plugin crate
//! compiles to a WebAssembly component for the `robohost:robot/robot` world.
//!
//! It owns the generated bindings of that world and a friendlier surface over
//! them: the [`Robot`] trait and [`export_robots!`], typed access to a run's
//! properties and entity ([`Context`]), exact decimals, catalog and returns
//! builders, and wrappers over the host imports ([`effects`], [`crm`],
//! [`log`], [`kv`], [`calendar`]). It must not depend on anything the host
//! does not provide: no clocks, files, sockets or randomness.
//!
//! Everything except the host calls is plain Rust and is unit tested natively
//! (`cargo test --manifest-path sdk/Cargo.toml`); a host call made outside a
//! component panics.

#![warn(missing_docs)]

mod catalog;
mod context;
mod decimal;
pub mod effects;
mod failure;
pub mod log;
mod values;

/// The generated bindings of the `robot` world, for what the SDK does not wrap.
#[allow(missing_docs, clippy::all)]
pub mod bindings {
    wit_bindgen::generate!({
        world: "robot",
        path: "../wit/since_v0.1.0",
        // Plugin crates export their component through `export_robots!`,
        // which calls this macro from outside the SDK.
        pub_export_macro: true,
        export_macro_name: "__export_robot_world",
        default_bindings_module: "robohost_sdk::bindings",
    });
}

pub use bindings::robohost::robot::effects::NewEntity;
pub use bindings::robohost::robot::robot_types::{
    Cause, Choice, Invocation, Property, RobotInfo, StageEntry, ValueType,
};
pub use bindings::robohost::robot::types::{
    Capability, Date, Decimal, Entity, EntityId, EntityKind, EntityRef, Failure, Field, FieldValue, FileRef, HostError,
    Localized, Money, Timestamp, UserId, Value,
};
// The read-only host interfaces are convenient as generated: `crm` (needs
// `crm-read`), `kv` (needs `kv-store`) and `calendar` (needs `calendar`).
pub use bindings::robohost::robot::{calendar, crm, kv};

pub use catalog::Returns;
pub use context::Context;
pub use decimal::ParseDecimalError;

/// One robot of a component: its catalog entry and its entry point.
///
/// ```no_run
/// use robohost_sdk::{log, Context, Failure, Returns, Robot, RobotInfo};
///
/// struct Hello;
///
/// impl Robot for Hello {
///     const CODE: &'static str = "hello";
///
///     fn info() -> RobotInfo {
///         RobotInfo::new(Self::CODE).name("en", "Hello").name("ru", "Привет")
///     }
///
///     fn run(cx: &Context) -> Result<Returns, Failure> {
///         log::info(format!("hello, {}", cx.this()));
///         Ok(Returns::new())
///     }
/// }
///
/// robohost_sdk::export_robots!(Hello);
/// ```
pub trait Robot {
    /// The robot's code; [`Robot::info`] must return the same one. Kept apart
    /// from the catalog so a run finds its robot without building every entry.
    const CODE: &'static str;

    /// The robot's catalog entry, built with [`RobotInfo::new`]`(Self::CODE)`.
    fn info() -> RobotInfo;

    /// Runs the robot once. The effects it asked for are applied only when it
    /// returns `Ok`.
    fn run(cx: &Context) -> Result<Returns, Failure>;
}

/// Exports robots as this crate's component: `describe` lists their catalog
/// entries and `run` dispatches on [`Invocation::robot`]. Use it once per
/// plugin crate.
///
/// ```no_run
/// # use robohost_sdk::{Context, Failure, Returns, Robot, RobotInfo};
/// # struct AssignByAmount;
/// # impl Robot for AssignByAmount {
/// #     const CODE: &'static str = "assign_by_amount";
/// #     fn info() -> RobotInfo { RobotInfo::new(Self::CODE) }
/// #     fn run(_: &Context) -> Result<Returns, Failure> { Ok(Returns::new()) }
/// # }
/// # struct RelatedTotals;
/// # impl Robot for RelatedTotals {
/// #     const CODE: &'static str = "related_totals";
/// #     fn info() -> RobotInfo { RobotInfo::new(Self::CODE) }
/// #     fn run(_: &Context) -> Result<Returns, Failure> { Ok(Returns::new()) }
/// # }
/// robohost_sdk::export_robots!(AssignByAmount, RelatedTotals);
/// ```
#[macro_export]
macro_rules! export_robots {
    ($($robot:ty),+ $(,)?) => {
        const _: () = {
            struct RobohostComponent;

            impl $crate::bindings::Guest for RobohostComponent {
                fn describe() -> ::std::vec::Vec<$crate::RobotInfo> {
                    ::std::vec![$($crate::__private::describe::<$robot>()),+]
                }

                fn run(
                    invocation: $crate::Invocation,
                ) -> ::core::result::Result<::std::vec::Vec<$crate::Field>, $crate::Failure> {
                    $crate::__private::dispatch(
                        invocation,
                        &[$($crate::__private::Entry::of::<$robot>()),+],
                    )
                }
            }

            $crate::bindings::__export_robot_world!(
                RobohostComponent with_types_in $crate::bindings
            );
        };
    };
}

/// What [`export_robots!`] expands to; not part of the API.
#[doc(hidden)]
pub mod __private {
    use crate::{Context, Failure, Field, Invocation, Returns, Robot, RobotInfo};

    /// A robot's code and entry point: all a run needs to find it.
    pub struct Entry {
        code: &'static str,
        run: fn(&Context) -> Result<Returns, Failure>,
    }

    impl Entry {
        pub fn of<R: Robot>() -> Self {
            Entry {
                code: R::CODE,
                run: R::run,
            }
        }
    }

    pub fn describe<R: Robot>() -> RobotInfo {
        let info = R::info();
        debug_assert_eq!(info.code, R::CODE, "Robot::info must use Robot::CODE");
        info
    }

    pub fn dispatch(invocation: Invocation, robots: &[Entry]) -> Result<Vec<Field>, Failure> {
        let Some(entry) = robots.iter().find(|entry| entry.code == invocation.robot) else {
            let known: Vec<&str> = robots.iter().map(|entry| entry.code).collect();
            return Err(Failure::new(
                "unknown_robot",
                format!(
                    "this component has no robot `{}`; it has: {}",
                    invocation.robot,
                    known.join(", ")
                ),
            ));
        };
        (entry.run)(&Context::new(invocation)).map(Returns::into_fields)
    }
}

#[cfg(test)]
mod tests {
    use super::__private::{Entry, dispatch};
    use super::*;
    use crate::context::tests::invocation;

    struct Twice;

    impl Robot for Twice {
        const CODE: &'static str = "twice";

        fn info() -> RobotInfo {
            RobotInfo::new(Self::CODE)
        }

        fn run(cx: &Context) -> Result<Returns, Failure> {
            let n = cx.prop_integer("n")?;
            Ok(Returns::new().set("twice", n * 2))
        }
    }

    #[test]
    fn dispatch_runs_the_robot_with_that_code() {
        let mut inv = invocation(vec![Field::new("n", 21)]);
        inv.robot = "twice".into();
        let fields = dispatch(inv, &[Entry::of::<Twice>()]).unwrap();
        assert_eq!(fields.len(), 1);
        assert_eq!(fields[0].code, "twice");
        assert!(matches!(fields[0].value, FieldValue::Single(Value::Integer(42))));
    }

    #[test]
    fn dispatch_rejects_an_unknown_code() {
        let mut inv = invocation(vec![]);
        inv.robot = "thrice".into();
        let failure = dispatch(inv, &[Entry::of::<Twice>()]).unwrap_err();
        assert_eq!(failure.code, "unknown_robot");
        assert_eq!(failure.message, "this component has no robot `thrice`; it has: twice");
        assert!(!failure.retryable);
    }
}
