//! A plugin that cannot be loaded: describing itself, it prints a line (a
//! blocking WASI call, as an ordinary Rust robot's `println!` is) and then
//! waits on a clock forever. The host must end the describe at its deadline,
//! refuse the plugin with the reason, and keep serving; a host that finds
//! such a plugin already installed must start without it.

use robohost_sdk::{Context, Failure, Returns, Robot, RobotInfo};

struct NeverDescribed;

impl Robot for NeverDescribed {
    const CODE: &'static str = "never_described";

    fn info() -> RobotInfo {
        println!("describing myself, slowly");
        loop {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        }
    }

    fn run(_: &Context) -> Result<Returns, Failure> {
        Ok(Returns::new())
    }
}

robohost_sdk::export_robots!(NeverDescribed);
