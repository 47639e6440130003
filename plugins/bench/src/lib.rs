//! Robots for the host's benchmarks: `echo` measures the cost of a run with
//! one host call, `crunch` the speed of guest code with none.

use robohost_sdk::{Capability, Context, Failure, Property, Returns, Robot, RobotInfo, effects};

struct Echo;

impl Robot for Echo {
    const CODE: &'static str = "echo";

    fn info() -> RobotInfo {
        RobotInfo::new(Self::CODE)
            .name("en", "Echo")
            .name("ru", "Эхо")
            .description("en", "Writes the text to UF_ECHO and returns it.")
            .description("ru", "Записывает текст в поле UF_ECHO и возвращает его.")
            .capability(Capability::SetFields)
            .property(Property::text("text").required().name("en", "Text").name("ru", "Текст"))
            .returns(Property::text("echo").name("en", "Echo").name("ru", "Эхо"))
    }

    fn run(cx: &Context) -> Result<Returns, Failure> {
        let text = cx.prop_text("text")?;
        effects::set_fields(cx.this()).set("UF_ECHO", text).apply()?;
        Ok(Returns::new().set("echo", text))
    }
}

struct Crunch;

impl Robot for Crunch {
    const CODE: &'static str = "crunch";

    fn info() -> RobotInfo {
        RobotInfo::new(Self::CODE)
            .name("en", "Crunch")
            .name("ru", "Перемалывание")
            .description(
                "en",
                "Mixes a number the given number of rounds and returns a checksum.",
            )
            .description(
                "ru",
                "Перемешивает число заданное число раундов и возвращает контрольную сумму.",
            )
            .property(
                Property::integer("rounds")
                    .required()
                    .name("en", "Rounds")
                    .name("ru", "Раунды"),
            )
            .returns(
                Property::integer("checksum")
                    .name("en", "Checksum")
                    .name("ru", "Контрольная сумма"),
            )
    }

    fn run(cx: &Context) -> Result<Returns, Failure> {
        let rounds = cx.prop_integer("rounds")?;
        let rounds = u64::try_from(rounds)
            .map_err(|_| Failure::bad_property("rounds", format!("must not be negative, got {rounds}")))?;
        // Reinterpreted, not converted: every bit of the state is the checksum.
        Ok(Returns::new().set("checksum", checksum(rounds) as i64))
    }
}

/// Runs xorshift64 `rounds` times from a fixed seed: no closed form the
/// compiler could use, and the same result on every machine.
fn checksum(rounds: u64) -> u64 {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    for _ in 0..rounds {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
    }
    state
}

robohost_sdk::export_robots!(Echo, Crunch);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_checksum_is_fixed() {
        assert_eq!(checksum(0), 0x9E37_79B9_7F4A_7C15);
        assert_eq!(checksum(1_000), checksum(1_000));
        assert_ne!(checksum(1_000), checksum(1_001));
    }
}
