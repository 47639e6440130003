//! C guests, in three steps in a scratch folder:
//!
//! 1. bindings: wit-bindgen's C generator (the `wit-bindgen-c` library, so
//!    no CLI to install) writes `WORLD.h`, `WORLD.c` and
//!    `WORLD_component_type.o` for the world;
//! 2. compile: `clang --target=wasm32-wasi -O2 -mexec-model=reactor` of the
//!    folder's `*.c` with the generated code, into a core module;
//! 3. componentize: `wit-component` with wasmtime's preview1 *reactor*
//!    adapter, which turns any `wasi_snapshot_preview1` imports into WASI
//!    0.2 ones (a robot that uses no stdio, files or clocks imports none).
//!
//! Needs clang, lld, wasi-libc and compiler-rt for wasm32 (Debian: `apt-get
//! install clang lld wasi-libc libclang-rt-dev-wasm32`, clang 14); they are
//! installed with apt-get when missing and running as root.
//!
//! In the generated C API the callee frees what it is given (an export frees
//! its arguments with the generated `*_free` functions) and returned data
//! must be malloc'ed: the bindings free it after the host has read it.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

use wasi_preview1_component_adapter_provider::{
    WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME, WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
};
use wit_component::ComponentEncoder;

use crate::{Error, Language, io_error, run};

/// What a C guest is compiled with.
const CLANG: &str = "clang";
const FLAGS: [&str; 3] = ["--target=wasm32-wasi", "-O2", "-mexec-model=reactor"];
/// The Debian packages that provide it.
const PACKAGES: [&str; 4] = ["clang", "lld", "wasi-libc", "libclang-rt-dev-wasm32"];

/// The `.c` files of `dir`, sorted.
pub(crate) fn sources(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut sources = Vec::new();
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|ext| ext == "c") && path.is_file() {
            sources.push(path);
        }
    }
    sources.sort();
    Ok(sources)
}

pub(crate) fn build(dir: &Path, wit: &Path, world: &str, out_wasm: &Path) -> Result<(), Error> {
    let sources = sources(dir).map_err(io_error(dir))?;
    if sources.is_empty() {
        return Err(Error::NotAPlugin {
            dir: dir.to_owned(),
            language: Language::C,
            needs: ".c file",
        });
    }
    let stem = out_wasm.file_stem().unwrap_or_default().to_string_lossy();
    let work = std::env::temp_dir().join(format!("robohost-c-{}-{stem}", std::process::id()));
    let _ = fs::remove_dir_all(&work);
    fs::create_dir_all(&work).map_err(io_error(&work))?;

    ensure_clang(&work)?;
    let generated = bindings(wit, world, &work)?;
    let module = work.join("module.wasm");
    run(
        &format!("compiling {} with clang", dir.display()),
        Command::new(CLANG)
            .args(FLAGS)
            .arg("-I")
            .arg(&work)
            .args(&sources)
            .args(&generated)
            .arg("-o")
            .arg(&module),
    )?;
    let component = componentize(&module)?;
    fs::write(out_wasm, component).map_err(io_error(out_wasm))?;
    // Kept when a step failed, for a look at the generated code.
    let _ = fs::remove_dir_all(&work);
    Ok(())
}

/// Writes the C bindings of `world` in `wit` into `work`; returns the files
/// to compile and link with the robot's own (`WORLD.c`, `WORLD_component_type.o`).
fn bindings(wit: &Path, world: &str, work: &Path) -> Result<Vec<PathBuf>, Error> {
    let fail = |error: anyhow::Error| Error::Bindings {
        wit: wit.to_owned(),
        world: world.to_owned(),
        message: format!("{error:#}"),
    };
    let mut resolve = wit_parser::Resolve::default();
    let (package, _) = resolve.push_path(wit).map_err(fail)?;
    let world_id = resolve.select_world(&[package], Some(world)).map_err(fail)?;
    let mut files = wit_bindgen_core::Files::default();
    wit_bindgen_c::Opts::default()
        .build()
        .generate(&mut resolve, world_id, &mut files)
        .map_err(fail)?;
    let mut linked = Vec::new();
    for (name, bytes) in files.iter() {
        let path = work.join(name);
        fs::write(&path, bytes).map_err(io_error(&path))?;
        if name.ends_with(".c") || name.ends_with(".o") {
            linked.push(path);
        }
    }
    Ok(linked)
}

/// The component of the core module at `module`, its WASI preview1 imports
/// (if any) adapted to WASI 0.2.
fn componentize(module: &Path) -> Result<Vec<u8>, Error> {
    let fail = |error: anyhow::Error| Error::Componentize {
        module: module.to_owned(),
        message: format!("{error:#}"),
    };
    let bytes = fs::read(module).map_err(io_error(module))?;
    ComponentEncoder::default()
        .validate(true)
        .module(&bytes)
        .map_err(fail)?
        .adapter(
            WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME,
            WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
        )
        .map_err(fail)?
        .encode()
        .map_err(fail)
}

/// Checks that clang builds a wasm32-wasi reactor, installing the packages
/// with apt-get when it does not and this process is root.
fn ensure_clang(work: &Path) -> Result<(), Error> {
    let probe = |work: &Path| -> Result<(), String> {
        let source = work.join("probe.c");
        fs::write(&source, "int robohost_probe(int x) { return x / 3; }\n").map_err(|e| e.to_string())?;
        let out = Command::new(CLANG)
            .args(FLAGS)
            .arg(&source)
            .arg("-o")
            .arg(work.join("probe.wasm"))
            .output()
            .map_err(|e| format!("{CLANG}: {e}"))?;
        match out.status.success() {
            true => Ok(()),
            false => Err(String::from_utf8_lossy(&out.stderr)
                .lines()
                .next()
                .unwrap_or("")
                .to_owned()),
        }
    };
    let Err(first) = probe(work) else {
        return Ok(());
    };
    let install = format!("apt-get install {}", PACKAGES.join(" "));
    if !is_root() {
        return Err(Error::Missing {
            tool: "clang with the wasm32 target",
            fix: format!("run `{install}` as root ({first})"),
        });
    }
    let apt = |args: &[&str]| {
        let mut command = Command::new("apt-get");
        command.env("DEBIAN_FRONTEND", "noninteractive").args(args);
        run(&format!("`apt-get {}`", args.join(" ")), &mut command)
    };
    let mut args = vec!["install", "-y"];
    args.extend(PACKAGES);
    // A stale package index is the usual reason an install fails.
    if apt(&args).is_err() {
        apt(&["update"])?;
        apt(&args)?;
    }
    probe(work).map_err(|after| Error::Missing {
        tool: "clang with the wasm32 target",
        fix: format!("`{install}` ran, yet clang still fails: {after}"),
    })
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}
