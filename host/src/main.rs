use std::process::ExitCode;

fn main() -> ExitCode {
    if std::env::var_os("RUST_LIB_BACKTRACE").is_none() {
        // A guest trap is an ordinary outcome here, not a host bug: do not
        // capture a native backtrace for each one (7x the cost of a trap when
        // RUST_BACKTRACE is set). SAFETY: no other thread exists yet.
        unsafe { std::env::set_var("RUST_LIB_BACKTRACE", "0") };
    }
    robohost::cli::main()
}
