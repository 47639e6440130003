//! A trigger component (the `trigger` world) that misbehaves as its request
//! body says: `loop`, `sleep`, `memory`, `trap`, `log` (an empty-line
//! flood) or `hits` (1.25 MiB of hits); anything else is one honest hit. The
//! host must end each in its own outcome, blame the plugin, and handle the
//! next call as if nothing happened.

use core::hint::black_box;

#[allow(clippy::all)]
mod bindings {
    wit_bindgen::generate!({
        world: "trigger",
        path: "../../wit/since_v0.1.0",
    });
}

use bindings::Guest;
use bindings::robohost::robot::log::{self, Level};
use bindings::robohost::robot::trigger_types::{Hit, Request, Target, TriggerInfo};
use bindings::robohost::robot::types::{EntityKind, EntityRef, Failure, Localized};

/// The one trigger it describes.
const CODE: &str = "poked";

struct HostileTrigger;

fn hit(id: u64, note: String) -> Hit {
    Hit {
        trigger: CODE.into(),
        target: Target::Entity(EntityRef {
            kind: EntityKind::Deal,
            id,
        }),
        data: vec![bindings::robohost::robot::types::Field {
            code: "NOTE".into(),
            value: bindings::robohost::robot::types::FieldValue::Single(bindings::robohost::robot::types::Value::Text(
                note,
            )),
        }],
    }
}

impl Guest for HostileTrigger {
    fn describe() -> Vec<TriggerInfo> {
        vec![TriggerInfo {
            code: CODE.into(),
            names: vec![
                Localized {
                    lang: "en".into(),
                    text: "Poked".into(),
                },
                Localized {
                    lang: "ru".into(),
                    text: "Тычок".into(),
                },
            ],
            descriptions: vec![],
        }]
    }

    fn handle(request: Request) -> Result<Vec<Hit>, Failure> {
        match request.body.as_slice() {
            b"loop" => {
                let mut count = 0u64;
                loop {
                    count = black_box(count.wrapping_add(1));
                }
            }
            b"sleep" => loop {
                std::thread::sleep(std::time::Duration::from_secs(3600));
            },
            b"memory" => {
                let mut blocks = Vec::new();
                loop {
                    let mut block = vec![0u8; 16 << 20];
                    block.iter_mut().step_by(4096).for_each(|byte| *byte = 1);
                    blocks.push(black_box(block));
                }
            }
            b"trap" => panic!("trigger gave up on purpose"),
            b"log" => {
                for _ in 0..10_000_000 {
                    log::write(Level::Info, "");
                }
                Ok(Vec::new())
            }
            b"hits" => Ok((0..20).map(|id| hit(id, "x".repeat(64 << 10))).collect()),
            _ => Ok(vec![hit(1, "ok".into())]),
        }
    }
}

bindings::export!(HostileTrigger with_types_in bindings);
