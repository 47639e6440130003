//! Robots that misbehave on purpose, one per sandbox limit or denied
//! authority, for the host's adversarial tests. None takes a property, and
//! only the two that ask for an effect before failing declare a capability,
//! so whatever the others reach for must be refused by the host itself. Each
//! must stay as written: a compiler that could see through one (turning the
//! recursion into a loop, dropping unused memory) would make its test pass
//! without testing anything.

use core::hint::black_box;

use robohost_sdk::{Capability, Context, Failure, Property, Returns, Robot, RobotInfo, effects};

/// A catalog entry with names and descriptions in English and Russian.
fn entry(code: &str, name: [&str; 2], description: [&str; 2]) -> RobotInfo {
    RobotInfo::new(code)
        .name("en", name[0])
        .name("ru", name[1])
        .description("en", description[0])
        .description("ru", description[1])
}

/// An I/O attempt that failed, as the robot reports it.
fn io_failure(error: std::io::Error) -> Failure {
    Failure::new("io", error.to_string())
}

struct InfiniteLoop;

impl Robot for InfiniteLoop {
    const CODE: &'static str = "infinite_loop";

    fn info() -> RobotInfo {
        entry(
            Self::CODE,
            ["Infinite loop", "Бесконечный цикл"],
            [
                "Counts forever; the host's fuel or time limit must stop it.",
                "Считает бесконечно; его должен остановить лимит топлива или времени.",
            ],
        )
    }

    fn run(_: &Context) -> Result<Returns, Failure> {
        let mut count = 0u64;
        loop {
            count = black_box(count.wrapping_add(1));
        }
    }
}

struct MemoryBomb;

/// The size of each allocation.
const BLOCK: usize = 16 << 20;
/// Writing a byte per page makes the host commit the memory, not just reserve it.
const PAGE: usize = 4096;

impl Robot for MemoryBomb {
    const CODE: &'static str = "memory_bomb";

    fn info() -> RobotInfo {
        entry(
            Self::CODE,
            ["Memory bomb", "Пожиратель памяти"],
            [
                "Allocates 16 MiB blocks and keeps them all; the memory limit must stop it.",
                "Выделяет блоки по 16 МиБ и держит их все; его должен остановить лимит памяти.",
            ],
        )
    }

    fn run(_: &Context) -> Result<Returns, Failure> {
        let mut blocks = Vec::new();
        loop {
            let mut block = vec![0u8; BLOCK];
            block.iter_mut().step_by(PAGE).for_each(|byte| *byte = 1);
            // Opaque to the optimiser, so the unread blocks are not elided.
            blocks.push(black_box(block));
        }
    }
}

struct DeepRecursion;

impl Robot for DeepRecursion {
    const CODE: &'static str = "deep_recursion";

    fn info() -> RobotInfo {
        entry(
            Self::CODE,
            ["Deep recursion", "Глубокая рекурсия"],
            [
                "Recurses without end on the wasm stack; the stack limit must stop it.",
                "Уходит в бесконечную рекурсию на стеке wasm; её должен остановить лимит стека.",
            ],
        )
        .returns(Property::integer("depth"))
    }

    fn run(cx: &Context) -> Result<Returns, Failure> {
        // Unreachable in practice, but unknown at compile time, so the
        // recursion is not provably endless and cannot be dropped.
        let bottom = u64::MAX - u64::from(cx.invocation().attempt);
        Ok(Returns::new().set("depth", descend(0, bottom) as i64))
    }
}

/// One wasm frame per level. Its locals are plain integers whose addresses
/// are never taken, so they live in wasm locals and not on the shadow stack
/// in linear memory; the work after the call keeps it out of tail position,
/// so it cannot become a loop.
#[inline(never)]
fn descend(depth: u64, bottom: u64) -> u64 {
    if depth == bottom {
        return depth;
    }
    descend(depth.wrapping_add(1), bottom).rotate_left(1) ^ depth
}

struct Panic;

impl Robot for Panic {
    const CODE: &'static str = "panic";

    fn info() -> RobotInfo {
        entry(
            Self::CODE,
            ["Panic", "Паника"],
            [
                "Panics in a function named give_up; the host must report the trap.",
                "Паникует в функции give_up; хост должен сообщить о ловушке.",
            ],
        )
    }

    fn run(_: &Context) -> Result<Returns, Failure> {
        give_up()
    }
}

/// Kept out of line so the trap's backtrace names it.
#[inline(never)]
fn give_up() -> ! {
    panic!("robot gave up on purpose")
}

struct HugeOutput;

/// The size of the returned text.
const HUGE: usize = 16 << 20;

impl Robot for HugeOutput {
    const CODE: &'static str = "huge_output";

    fn info() -> RobotInfo {
        entry(
            Self::CODE,
            ["Huge output", "Огромный результат"],
            [
                "Returns a 16 MiB text; the host must refuse to keep it.",
                "Возвращает текст в 16 МиБ; хост должен отказаться его хранить.",
            ],
        )
        .returns(Property::text("blob"))
    }

    fn run(_: &Context) -> Result<Returns, Failure> {
        Ok(Returns::new().set("blob", "x".repeat(HUGE)))
    }
}

struct UngrantedEffect;

impl Robot for UngrantedEffect {
    const CODE: &'static str = "ungranted_effect";

    fn info() -> RobotInfo {
        entry(
            Self::CODE,
            ["Ungranted effect", "Действие без разрешения"],
            [
                "Sends a notification without declaring the notify capability.",
                "Отправляет уведомление, не запросив разрешение notify.",
            ],
        )
    }

    fn run(_: &Context) -> Result<Returns, Failure> {
        effects::notify(1, "hello", None)?;
        Ok(Returns::new())
    }
}

struct OpenFile;

impl Robot for OpenFile {
    const CODE: &'static str = "open_file";

    fn info() -> RobotInfo {
        entry(
            Self::CODE,
            ["Open a file", "Открыть файл"],
            [
                "Reads /etc/passwd; the sandbox must have no file system.",
                "Читает /etc/passwd; в песочнице не должно быть файловой системы.",
            ],
        )
        .returns(Property::text("content"))
    }

    fn run(_: &Context) -> Result<Returns, Failure> {
        let content = std::fs::read_to_string("/etc/passwd").map_err(io_failure)?;
        Ok(Returns::new().set("content", content))
    }
}

struct ReadEnv;

impl Robot for ReadEnv {
    const CODE: &'static str = "read_env";

    fn info() -> RobotInfo {
        entry(
            Self::CODE,
            ["Read the environment", "Прочитать окружение"],
            [
                "Returns the environment variables; the sandbox must have none.",
                "Возвращает переменные окружения; в песочнице их быть не должно.",
            ],
        )
        .returns(Property::text("env"))
    }

    fn run(_: &Context) -> Result<Returns, Failure> {
        let env: Vec<String> = std::env::vars()
            .map(|(name, value)| format!("{name}={value}"))
            .collect();
        if env.is_empty() {
            return Err(Failure::new("io", "environment is empty"));
        }
        Ok(Returns::new().set("env", env.join("\n")))
    }
}

struct OpenSocket;

impl Robot for OpenSocket {
    const CODE: &'static str = "open_socket";

    fn info() -> RobotInfo {
        entry(
            Self::CODE,
            ["Open a socket", "Открыть сокет"],
            [
                "Connects to 127.0.0.1:5432; the sandbox must have no network.",
                "Подключается к 127.0.0.1:5432; в песочнице не должно быть сети.",
            ],
        )
        .returns(Property::boolean("connected"))
    }

    fn run(_: &Context) -> Result<Returns, Failure> {
        std::net::TcpStream::connect("127.0.0.1:5432").map_err(io_failure)?;
        Ok(Returns::new().set("connected", true))
    }
}

struct StdoutFlood;

/// The length of each printed line, newline included.
const LINE: usize = 1024;

impl Robot for StdoutFlood {
    const CODE: &'static str = "stdout_flood";

    fn info() -> RobotInfo {
        entry(
            Self::CODE,
            ["Stdout flood", "Поток в stdout"],
            [
                "Prints 1 KiB lines forever; the host must cap what it keeps and stop it.",
                "Бесконечно печатает строки по 1 КиБ; хост должен ограничить вывод и остановить его.",
            ],
        )
    }

    fn run(_: &Context) -> Result<Returns, Failure> {
        let line = "x".repeat(LINE - 1);
        loop {
            println!("{line}");
        }
    }
}

struct EffectsThenPanic;

impl Robot for EffectsThenPanic {
    const CODE: &'static str = "effects_then_panic";

    fn info() -> RobotInfo {
        entry(
            Self::CODE,
            ["Effects, then panic", "Действия, затем паника"],
            [
                "Asks to change a field, then panics; the change must not be applied.",
                "Запрашивает изменение поля, затем падает; изменение не должно примениться.",
            ],
        )
        .capability(Capability::SetFields)
    }

    fn run(cx: &Context) -> Result<Returns, Failure> {
        effects::set_fields(cx.this()).set("TITLE", "changed").apply()?;
        give_up()
    }
}

struct EffectsThenFail;

impl Robot for EffectsThenFail {
    const CODE: &'static str = "effects_then_fail";

    fn info() -> RobotInfo {
        entry(
            Self::CODE,
            ["Effects, then failure", "Действия, затем ошибка"],
            [
                "Asks to change a field, then returns a failure; the change must not be applied.",
                "Запрашивает изменение поля, затем возвращает ошибку; изменение не должно примениться.",
            ],
        )
        .capability(Capability::SetFields)
    }

    fn run(cx: &Context) -> Result<Returns, Failure> {
        effects::set_fields(cx.this()).set("TITLE", "changed").apply()?;
        Err(Failure::new("changed_my_mind", "asked for a change, then failed"))
    }
}

/// How long each wait asks for: far past any run's deadline.
const HOUR: std::time::Duration = std::time::Duration::from_secs(3600);

struct SleepForever;

impl Robot for SleepForever {
    const CODE: &'static str = "sleep_forever";

    fn info() -> RobotInfo {
        entry(
            Self::CODE,
            ["Sleep forever", "Вечный сон"],
            [
                "Blocks on a clock pollable for an hour, again and again; the wall-clock limit must stop it.",
                "Ждёт часового таймера снова и снова; его должен остановить лимит времени.",
            ],
        )
    }

    fn run(_: &Context) -> Result<Returns, Failure> {
        loop {
            // `pollable.block` on `monotonic-clock.subscribe-duration`.
            std::thread::sleep(HOUR);
        }
    }
}

struct PollForever;

impl Robot for PollForever {
    const CODE: &'static str = "poll_forever";

    fn info() -> RobotInfo {
        entry(
            Self::CODE,
            ["Poll forever", "Вечное ожидание"],
            [
                "Waits in `poll` on several clock pollables that are never ready in time; the wall-clock limit must stop it.",
                "Ждёт в `poll` нескольких таймеров, которые не успевают сработать; его должен остановить лимит времени.",
            ],
        )
    }

    fn run(_: &Context) -> Result<Returns, Failure> {
        use wasip2::clocks::monotonic_clock;
        loop {
            let soon = monotonic_clock::subscribe_duration(HOUR.as_nanos() as u64);
            let never = monotonic_clock::subscribe_instant(u64::MAX);
            black_box(wasip2::io::poll::poll(&[&soon, &never]));
        }
    }
}

struct ReadStdin;

impl Robot for ReadStdin {
    const CODE: &'static str = "read_stdin";

    fn info() -> RobotInfo {
        entry(
            Self::CODE,
            ["Read stdin", "Чтение stdin"],
            [
                "Reads standard input until it gets something; there is none, so it must end.",
                "Читает стандартный ввод, пока что-нибудь не получит; ввода нет, и робот должен завершиться.",
            ],
        )
    }

    fn run(_: &Context) -> Result<Returns, Failure> {
        use std::io::Read;
        let mut byte = [0u8; 1];
        let read = std::io::stdin().read(&mut byte).map_err(io_failure)?;
        Err(Failure::new("stdin", format!("stdin gave {read} bytes")))
    }
}

struct EmptyLogFlood;

impl Robot for EmptyLogFlood {
    const CODE: &'static str = "empty_log_flood";

    fn info() -> RobotInfo {
        entry(
            Self::CODE,
            ["Empty log flood", "Поток пустых строк"],
            [
                "Writes ten million empty log lines and empty stdout lines; each must count against the output limit.",
                "Пишет десять миллионов пустых строк в журнал и stdout; каждая должна учитываться в лимите вывода.",
            ],
        )
    }

    fn run(_: &Context) -> Result<Returns, Failure> {
        for _ in 0..10_000_000 {
            robohost_sdk::log::info("");
            println!();
        }
        Ok(Returns::new())
    }
}

struct DeniedFlood;

impl Robot for DeniedFlood {
    const CODE: &'static str = "denied_flood";

    fn info() -> RobotInfo {
        entry(
            Self::CODE,
            ["Refusal flood", "Поток отказов"],
            [
                "Calls `kv.get` a million times without the capability, ignoring each refusal; the refusals must be bounded.",
                "Миллион раз вызывает `kv.get` без разрешения, не обращая внимания на отказы; отказы должны быть ограничены.",
            ],
        )
    }

    fn run(_: &Context) -> Result<Returns, Failure> {
        for _ in 0..1_000_000 {
            let _ = black_box(robohost_sdk::kv::get(""));
        }
        Ok(Returns::new())
    }
}

struct BigEffects;

/// The size of each comment.
const MIB: usize = 1 << 20;

impl Robot for BigEffects {
    const CODE: &'static str = "big_effects";

    fn info() -> RobotInfo {
        entry(
            Self::CODE,
            ["Big effects", "Огромные действия"],
            [
                "Asks for 100 comments of 1 MiB each; the bytes a run hands the host must be capped.",
                "Просит добавить 100 комментариев по 1 МиБ; объём, передаваемый хосту, должен быть ограничен.",
            ],
        )
        .capability(Capability::AddComment)
    }

    fn run(cx: &Context) -> Result<Returns, Failure> {
        let text = "x".repeat(MIB);
        for _ in 0..100 {
            effects::comment(cx.this(), &text)?;
        }
        Ok(Returns::new())
    }
}

struct LookupFlood;

impl Robot for LookupFlood {
    const CODE: &'static str = "lookup_flood";

    fn info() -> RobotInfo {
        entry(
            Self::CODE,
            ["Lookup flood", "Поток запросов"],
            [
                "Looks deals up by a field again and again; the host calls a run may make must be capped.",
                "Снова и снова ищет сделки по полю; число обращений к хосту за запуск должно быть ограничено.",
            ],
        )
        .capability(Capability::CrmRead)
    }

    fn run(_: &Context) -> Result<Returns, Failure> {
        use robohost_sdk::{EntityKind, Value, crm};
        loop {
            let _ = black_box(crm::find(EntityKind::Deal, "TITLE", &Value::Text("x".into()), 1000));
        }
    }
}

struct HandleFlood;

impl Robot for HandleFlood {
    const CODE: &'static str = "handle_flood";

    fn info() -> RobotInfo {
        entry(
            Self::CODE,
            ["Handle flood", "Поток дескрипторов"],
            [
                "Creates clock pollables and never drops them; the resource handles a run holds must be capped.",
                "Создаёт таймеры и никогда их не освобождает; число дескрипторов за запуск должно быть ограничено.",
            ],
        )
    }

    fn run(_: &Context) -> Result<Returns, Failure> {
        loop {
            std::mem::forget(wasip2::clocks::monotonic_clock::subscribe_duration(1));
        }
    }
}

struct InvalidUtf8;

impl Robot for InvalidUtf8 {
    const CODE: &'static str = "invalid_utf8";

    fn info() -> RobotInfo {
        entry(
            Self::CODE,
            ["Invalid UTF-8", "Неверный UTF-8"],
            [
                "Returns a failure whose message is not UTF-8; the host must blame the guest and not retry.",
                "Возвращает ошибку с сообщением не в UTF-8; хост должен винить робота и не повторять запуск.",
            ],
        )
    }

    fn run(_: &Context) -> Result<Returns, Failure> {
        // The canonical ABI passes a string as a pointer and a length; these
        // bytes are what a guest in a language without Rust's guarantees
        // could hand over. Rust's type is bypassed on purpose.
        let bytes = black_box(vec![b'o', b'k', 0xff, 0xfe]);
        let message = unsafe { String::from_utf8_unchecked(bytes) };
        Err(Failure::new("bad", message))
    }
}

robohost_sdk::export_robots!(
    InfiniteLoop,
    MemoryBomb,
    DeepRecursion,
    Panic,
    HugeOutput,
    UngrantedEffect,
    OpenFile,
    ReadEnv,
    OpenSocket,
    StdoutFlood,
    EffectsThenPanic,
    EffectsThenFail,
    SleepForever,
    PollForever,
    ReadStdin,
    EmptyLogFlood,
    DeniedFlood,
    BigEffects,
    LookupFlood,
    HandleFlood,
    InvalidUtf8,
);
