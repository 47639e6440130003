//! A trigger component (the `trigger` world, written with the SDK) that
//! misbehaves as its request body says: `loop`, `sleep`, `memory`, `trap`,
//! `log` (an empty-line flood) or `hits` (1.25 MiB of hits); anything else is
//! one honest hit. The host must end each in its own outcome, blame the
//! plugin, and handle the next call as if nothing happened.

use core::hint::black_box;

use robohost_sdk::{EntityKind, EntityRef, Failure, Hit, Request, Trigger, TriggerInfo, log};

/// The one trigger it describes.
const CODE: &str = "poked";

struct HostileTrigger;

fn hit(id: u64, note: String) -> Hit {
    Hit::entity(CODE, EntityRef::new(EntityKind::Deal, id)).field("NOTE", note)
}

impl Trigger for HostileTrigger {
    fn describe() -> Vec<TriggerInfo> {
        vec![TriggerInfo::new(CODE).name("en", "Poked").name("ru", "Тычок")]
    }

    fn handle(request: &Request) -> Result<Vec<Hit>, Failure> {
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
                    log::info("");
                }
                Ok(Vec::new())
            }
            b"hits" => Ok((0..20).map(|id| hit(id, "x".repeat(64 << 10))).collect()),
            _ => Ok(vec![hit(1, "ok".into())]),
        }
    }
}

robohost_sdk::export_triggers!(HostileTrigger);
