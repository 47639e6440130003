//! The guest-side SDK for robohost plugins: Rust code that a plugin crate
//! compiles to a WebAssembly component for the `robohost:robot/robot` world
//! (robots) or the `robohost:robot/trigger` world (triggers).
//!
//! It owns the generated bindings of the contract's interfaces and a
//! friendlier surface over them: the [`Robot`] trait and [`export_robots!`],
//! typed access to a run's properties and entity ([`Context`]), exact
//! decimals, catalog and returns builders, and wrappers over the host imports
//! ([`effects`], [`crm`], [`log`], [`kv`], [`calendar`]); the [`Trigger`]
//! trait and [`export_triggers!`], with accessors of the inbound [`Request`]
//! and builders of [`TriggerInfo`] and [`Hit`]. A plugin crate exports one
//! world, with one of the two macros. The SDK must not depend on anything the
//! host does not provide: no clocks, files, sockets or randomness.
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
mod trigger;
mod values;

// Why each world is generated in the plugin crate, not here. wit-bindgen
// leaves in the crate that generates a world a description of the world's
// imports (its exports are described where its `export!` macro is used),
// and a component is made of every description linked into it, used or not.
// Each world `use`s the types of its exports (`robot-types`,
// `trigger-types`), and a component keeps those imports even unused: with
// both worlds generated here, every robot would import `trigger-types` and
// every trigger `robot-types`. So the SDK generates the world `interfaces`,
// which imports every interface but uses no types (a component keeps of it
// only what it calls), and each export macro generates its world in the
// plugin crate (`__robot_world!`, `__trigger_world!`), taking every
// interface from here.

// `__with_wit_dir!`, written by `build.rs`.
include!(concat!(env!("OUT_DIR"), "/wit_dir.rs"));

/// The generated bindings of every interface of the contract, for what the
/// SDK does not wrap. Both worlds' export glue uses these types.
#[allow(missing_docs, clippy::all)]
pub mod bindings {
    wit_bindgen::generate!({
        inline: "
            package robohost:sdk;

            world interfaces {
                import robohost:robot/crm@0.1.0;
                import robohost:robot/effects@0.1.0;
                import robohost:robot/log@0.1.0;
                import robohost:robot/kv@0.1.0;
                import robohost:robot/calendar@0.1.0;
                import robohost:robot/robot-types@0.1.0;
                import robohost:robot/trigger-types@0.1.0;
            }
        ",
        path: "../wit/since_v0.1.0",
        generate_all,
        // So plugins' tests compare whole values. `decimal` compares by its
        // numeric value and `entity-ref` is hashed: both implement it by hand.
        additional_derives: [PartialEq],
        additional_derives_ignore: ["decimal", "entity-ref"],
    });
}

/// Generates the `robot` world's export glue (its `Guest` trait and
/// `export!` macro) in the plugin crate, with the types of [`bindings`]; what
/// [`export_robots!`] expands to. The generated code names this crate
/// `robohost_sdk`.
#[doc(hidden)]
#[macro_export]
macro_rules! __robot_world {
    () => {
        $crate::__with_wit_dir!($crate::__robot_world);
    };
    ($wit:tt) => {
        $crate::__private::wit_bindgen::generate!({
            world: "robot",
            path: $wit,
            with: {
                "robohost:robot/types@0.1.0": robohost_sdk::bindings::robohost::robot::types,
                "robohost:robot/robot-types@0.1.0": robohost_sdk::bindings::robohost::robot::robot_types,
                "robohost:robot/crm@0.1.0": robohost_sdk::bindings::robohost::robot::crm,
                "robohost:robot/effects@0.1.0": robohost_sdk::bindings::robohost::robot::effects,
                "robohost:robot/log@0.1.0": robohost_sdk::bindings::robohost::robot::log,
                "robohost:robot/kv@0.1.0": robohost_sdk::bindings::robohost::robot::kv,
                "robohost:robot/calendar@0.1.0": robohost_sdk::bindings::robohost::robot::calendar,
            },
            runtime_path: "robohost_sdk::__private::wit_bindgen::rt",
        });
    };
}

/// Generates the `trigger` world's export glue in the plugin crate, as
/// [`__robot_world!`] does the `robot` world's; what [`export_triggers!`]
/// expands to.
#[doc(hidden)]
#[macro_export]
macro_rules! __trigger_world {
    () => {
        $crate::__with_wit_dir!($crate::__trigger_world);
    };
    ($wit:tt) => {
        $crate::__private::wit_bindgen::generate!({
            world: "trigger",
            path: $wit,
            with: {
                "robohost:robot/types@0.1.0": robohost_sdk::bindings::robohost::robot::types,
                "robohost:robot/trigger-types@0.1.0": robohost_sdk::bindings::robohost::robot::trigger_types,
                "robohost:robot/log@0.1.0": robohost_sdk::bindings::robohost::robot::log,
                "robohost:robot/kv@0.1.0": robohost_sdk::bindings::robohost::robot::kv,
            },
            runtime_path: "robohost_sdk::__private::wit_bindgen::rt",
        });
    };
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
pub use bindings::robohost::robot::trigger_types::{Hit, Lookup, Request, Target, TriggerInfo};
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
/// plugin crate, and not with [`export_triggers!`]: a component is of one
/// world. The crate must name its dependency on the SDK `robohost-sdk`, as the
/// code this generates does.
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
        #[doc(hidden)]
        #[allow(missing_docs, clippy::all)]
        mod __robohost_robot_world {
            $crate::__robot_world!();
        }

        const _: () = {
            struct RobohostComponent;

            impl __robohost_robot_world::Guest for RobohostComponent {
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

            __robohost_robot_world::export!(RobohostComponent with_types_in __robohost_robot_world);
        };
    };
}

/// A trigger component: the triggers it provides and how it turns an inbound
/// call (what an outside service posted to the plugin's endpoint) into hits
/// for them. One type per component, exported with [`export_triggers!`].
///
/// ```no_run
/// use robohost_sdk::{EntityKind, EntityRef, Failure, Hit, Request, Trigger, TriggerInfo, log};
///
/// struct Paid;
///
/// impl Trigger for Paid {
///     fn describe() -> Vec<TriggerInfo> {
///         vec![TriggerInfo::new("paid").name("en", "Paid").name("ru", "Оплачено")]
///     }
///
///     fn handle(request: &Request) -> Result<Vec<Hit>, Failure> {
///         request.expect_method("POST")?;
///         let Some(id) = request.query_param("deal") else {
///             return Ok(vec![]);
///         };
///         let id = id.parse().map_err(|_| Failure::bad_payload(format!("deal {id:?} is not a number")))?;
///         log::info(format!("deal {id} paid"));
///         Ok(vec![Hit::entity("paid", EntityRef::new(EntityKind::Deal, id))])
///     }
/// }
///
/// robohost_sdk::export_triggers!(Paid);
/// ```
pub trait Trigger {
    /// The triggers this component provides, each built with
    /// [`TriggerInfo::new`]. A hit for a trigger not described here is
    /// refused by the host.
    fn describe() -> Vec<TriggerInfo>;

    /// Turns one inbound call into hits; none when the call is not relevant.
    /// A failure refuses the call: use [`Failure::bad_payload`] for one that
    /// cannot be read, naming what is wrong.
    fn handle(request: &Request) -> Result<Vec<Hit>, Failure>;
}

/// Exports a [`Trigger`] as this crate's component of the `trigger` world:
/// `describe` and `handle` are the trait's. Use it once per plugin crate, and
/// not with [`export_robots!`]: a component is of one world. The crate must
/// name its dependency on the SDK `robohost-sdk`, as the code this generates
/// does.
///
/// ```no_run
/// # use robohost_sdk::{Failure, Hit, Request, Trigger, TriggerInfo};
/// # struct CallNotice;
/// # impl Trigger for CallNotice {
/// #     fn describe() -> Vec<TriggerInfo> { vec![TriggerInfo::new("missed_call")] }
/// #     fn handle(_: &Request) -> Result<Vec<Hit>, Failure> { Ok(vec![]) }
/// # }
/// robohost_sdk::export_triggers!(CallNotice);
/// ```
#[macro_export]
macro_rules! export_triggers {
    ($trigger:ty $(,)?) => {
        #[doc(hidden)]
        #[allow(missing_docs, clippy::all)]
        mod __robohost_trigger_world {
            $crate::__trigger_world!();
        }

        const _: () = {
            struct RobohostComponent;

            impl __robohost_trigger_world::Guest for RobohostComponent {
                fn describe() -> ::std::vec::Vec<$crate::TriggerInfo> {
                    <$trigger as $crate::Trigger>::describe()
                }

                fn handle(
                    request: $crate::Request,
                ) -> ::core::result::Result<::std::vec::Vec<$crate::Hit>, $crate::Failure> {
                    <$trigger as $crate::Trigger>::handle(&request)
                }
            }

    __robohost_trigger_world::export!(RobohostComponent with_types_in __robohost_trigger_world);
        };
    };
}

/// What the export macros expand to; not part of the API.
#[doc(hidden)]
pub mod __private {
    pub use wit_bindgen;

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
