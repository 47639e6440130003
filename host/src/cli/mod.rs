//! The `robohost` command.

mod bulk;
mod local;
mod plugin;

use local::{GrantItem, LocalRun, describe, empty_context, read_json, run_robot, run_trigger, start};

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use serde::Deserialize;

use crate::domain::Timestamp;
use crate::engine::{Engine, EngineConfig, SystemClock};
use crate::runtime::SandboxConfig;
use crate::storage::Store;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

#[derive(Parser)]
#[command(
    name = "robohost",
    version,
    about = "A CRM automation host whose robots are sandboxed WebAssembly components"
)]
struct Cli {
    /// The configuration file (TOML); its `[sandbox]` table sets the limits.
    #[arg(long, global = true, env = "ROBOHOST_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run robot plugins locally.
    #[command(subcommand)]
    Robot(RobotCommand),
    /// Run trigger plugins locally.
    #[command(subcommand)]
    Trigger(TriggerCommand),
    /// Runs the host: the HTTP API and the workers that run robots.
    Serve(ServeArgs),
    /// Manage API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Manage the accounts that sign in to the board.
    #[command(subcommand)]
    Account(AccountCommand),
    /// Apply bulk jobs: many entities reassigned from a CSV file.
    #[command(subcommand)]
    Bulk(bulk::BulkCommand),
    /// Install and export industry templates.
    #[command(subcommand)]
    Template(TemplateCommand),
    /// Install, roll back and remove plugin packages; trust publishers.
    #[command(subcommand)]
    Package(PackageCommand),
    /// Make, build, test and pack plugins, in Rust, Python, JavaScript or C.
    #[command(subcommand)]
    Plugin(plugin::PluginCommand),
    /// Compiles the component on stdin to stdout within a memory cap: the
    /// host runs itself so to compile what it installs.
    #[command(name = crate::runtime::WORKER_COMMAND, hide = true)]
    CompileWorker {
        #[arg(long)]
        max_wasm_stack: usize,
        #[arg(long)]
        memory_bytes: u64,
        #[arg(long)]
        functions: Option<PathBuf>,
        #[arg(long)]
        new_functions: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum PackageCommand {
    /// Checks a package and installs it (or upgrades to it), once every
    /// permission it requests is approved; prints what it adds and drops.
    Install {
        /// The package archive.
        file: PathBuf,
        /// The permissions approved, comma-separated
        /// (`crm-read,read:deal,set-fields,write:deal,field:UF_SEGMENT`).
        #[arg(long, default_value = "")]
        approve: String,
        #[arg(long, env = "ROBOHOST_DATABASE_URL", default_value = "sqlite://robohost.sqlite")]
        database_url: String,
    },
    /// Returns a package to the version installed before.
    Rollback {
        name: String,
        #[arg(long, env = "ROBOHOST_DATABASE_URL", default_value = "sqlite://robohost.sqlite")]
        database_url: String,
    },
    /// Removes a package; refused while robots use it unless forced, which
    /// disables them.
    Remove {
        name: String,
        #[arg(long)]
        force: bool,
        #[arg(long, env = "ROBOHOST_DATABASE_URL", default_value = "sqlite://robohost.sqlite")]
        database_url: String,
    },
    /// Packs a folder into a package: its `robohost.toml` (without `files`)
    /// and every other file in it, hashed into the manifest, signed with the
    /// key file when given.
    Pack {
        folder: PathBuf,
        /// A key file made by `robohost package keygen`.
        #[arg(long)]
        key: Option<PathBuf>,
        /// Where to write the package.
        #[arg(long, short)]
        output: PathBuf,
    },
    /// Makes a new signing key: writes its secret to FILE and prints the
    /// public key to give admins (`robohost package trust`).
    Keygen { file: PathBuf },
    /// Trusts a publisher's ed25519 public key (hex) for signed packages.
    Trust {
        publisher: String,
        key: String,
        #[arg(long, env = "ROBOHOST_DATABASE_URL", default_value = "sqlite://robohost.sqlite")]
        database_url: String,
    },
    /// Whether packages signed by no one install here (`allow`) or not
    /// (`refuse`, the default).
    Unsigned {
        #[arg(value_parser = ["allow", "refuse"])]
        policy: String,
        #[arg(long, env = "ROBOHOST_DATABASE_URL", default_value = "sqlite://robohost.sqlite")]
        database_url: String,
    },
}

#[derive(Subcommand)]
enum TemplateCommand {
    /// Checks a template file and installs it: adds what the portal lacks,
    /// never deletes or overwrites, and prints what is still to be bound.
    Install {
        /// The template (TOML).
        file: PathBuf,
        /// The database, as for `serve`.
        #[arg(long, env = "ROBOHOST_DATABASE_URL", default_value = "sqlite://robohost.sqlite")]
        database_url: String,
    },
    /// Writes the portal's automation out as a template, to stdout.
    Export {
        /// The template's code.
        #[arg(long, default_value = "portal")]
        code: String,
        /// The template's version.
        #[arg(long, default_value = "1.0.0")]
        version: String,
        /// The database, as for `serve`.
        #[arg(long, env = "ROBOHOST_DATABASE_URL", default_value = "sqlite://robohost.sqlite")]
        database_url: String,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Creates an API token and prints it; only its hash is stored.
    Create {
        /// What the token is for, such as the integration's name.
        #[arg(long)]
        name: String,
        /// admin, integrator or manager.
        #[arg(long)]
        role: crate::api::Role,
        /// Days until it stops working; it never does when not given.
        #[arg(long)]
        expires_in_days: Option<u32>,
        /// The CRM user it acts for: the author of the changes made with it.
        #[arg(long)]
        user: Option<u64>,
        /// The database, as for `serve`.
        #[arg(long, env = "ROBOHOST_DATABASE_URL", default_value = "sqlite://robohost.sqlite")]
        database_url: String,
    },
}

#[derive(Subcommand)]
enum AccountCommand {
    /// Creates an account, or sets its role and password (ending its
    /// sessions); the password is read from the first line of stdin.
    Set {
        name: String,
        /// admin, integrator or manager: what the account may see and do, as
        /// for an API token.
        #[arg(long)]
        role: crate::api::Role,
        /// The database, as for `serve`.
        #[arg(long, env = "ROBOHOST_DATABASE_URL", default_value = "sqlite://robohost.sqlite")]
        database_url: String,
    },
    /// Removes an account and ends its sessions.
    Remove {
        name: String,
        #[arg(long, env = "ROBOHOST_DATABASE_URL", default_value = "sqlite://robohost.sqlite")]
        database_url: String,
    },
}

#[derive(Args)]
struct ServeArgs {
    /// The address the API listens on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: std::net::SocketAddr,
    /// The database: a SQLite file (the default, in the working folder) or
    /// `postgres://...`, which several host processes may share.
    #[arg(long, env = "ROBOHOST_DATABASE_URL", default_value = "sqlite://robohost.sqlite")]
    database_url: String,
    /// Sets up a demo portal: the Prom2B template, a sales team bound to its
    /// constants and a few leads and deals (only what is missing).
    #[arg(long)]
    demo: bool,
}

#[derive(Subcommand)]
enum TriggerCommand {
    /// Hands one inbound call to a trigger plugin in the real sandbox and
    /// prints the trigger hits it makes of it.
    Run(TriggerArgs),
}

#[derive(Args)]
struct TriggerArgs {
    /// The plugin: a WebAssembly component (.wasm) of the trigger world.
    #[arg(long)]
    plugin: PathBuf,
    /// The file holding the request body.
    #[arg(long)]
    body: PathBuf,
    /// The HTTP method.
    #[arg(long, default_value = "POST")]
    method: String,
    /// The path after the endpoint's address.
    #[arg(long, default_value = "/")]
    path: String,
    /// The query string, without `?`.
    #[arg(long, default_value = "")]
    query: String,
    /// A header, `name: value`; repeat for more.
    #[arg(long = "header", value_parser = parse_header)]
    headers: Vec<(String, String)>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

fn parse_header(text: &str) -> Result<(String, String), String> {
    let (name, value) = text
        .split_once(':')
        .ok_or_else(|| format!("`{text}` is not a header such as `content-type: application/json`"))?;
    Ok((name.trim().to_ascii_lowercase(), value.trim().to_owned()))
}

#[derive(Subcommand)]
enum RobotCommand {
    /// Runs one robot in the real sandbox against entities from JSON files
    /// and prints its outcome, effects, returned values, log, fuel and time.
    Run(Box<RunArgs>),
    /// Lists the robots a plugin provides, with their properties.
    Describe {
        /// The plugin: a WebAssembly component (.wasm).
        #[arg(long)]
        plugin: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args)]
struct RunArgs {
    /// The plugin: a WebAssembly component (.wasm).
    #[arg(long)]
    plugin: PathBuf,
    /// The code of the robot to run.
    #[arg(long)]
    robot: String,
    /// The entity the robot runs on (JSON).
    #[arg(long)]
    entity: PathBuf,
    /// The robot's properties (a JSON object of code to value).
    #[arg(long)]
    props: Option<PathBuf>,
    /// Entities linked to it (a JSON array), for `crm.list-related` and `crm.find`.
    #[arg(long)]
    related: Option<PathBuf>,
    /// The working-time calendar (JSON); Mon-Fri 09:00-18:00 UTC when not given.
    #[arg(long)]
    calendar: Option<PathBuf>,
    /// The key-value store's contents (a JSON object of key to string).
    #[arg(long)]
    kv: Option<PathBuf>,
    /// The fuel budget; the configuration's `sandbox.fuel` when not given.
    #[arg(long)]
    fuel: Option<u64>,
    /// Capabilities to grant, comma-separated, or `none`; all when not
    /// given. A robot gets only those it also requested.
    #[arg(long, value_delimiter = ',')]
    grant: Option<Vec<GrantItem>>,
    /// The time the robot sees as now (RFC 3339); the real time when not given.
    #[arg(long)]
    now: Option<Timestamp>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    #[serde(default)]
    sandbox: SandboxConfig,
    #[serde(default)]
    engine: EngineConfig,
    #[serde(default)]
    delivery: crate::engine::DeliveryConfig,
}

/// Runs the command line; the binary's whole `main`.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // A serving host logs what it does (start, stop, failures, deliveries)
    // at info; a command run by hand says only what went wrong. RUST_LOG
    // overrides both.
    let default = match cli.command {
        Command::Serve(_) => "warn,robohost=info",
        _ => "warn",
    };
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| default.into()))
        .with_writer(std::io::stderr)
        .init();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        // The worker reads no configuration: its parent passes what counts.
        Command::CompileWorker {
            max_wasm_stack,
            memory_bytes,
            functions,
            new_functions,
        } => {
            crate::runtime::serve_worker(max_wasm_stack, memory_bytes, functions, new_functions)?;
            Ok(ExitCode::SUCCESS)
        }
        command => run_configured(cli.config.as_deref(), command),
    }
}

fn run_configured(config: Option<&Path>, command: Command) -> anyhow::Result<ExitCode> {
    let ConfigFile {
        mut sandbox,
        mut engine,
        delivery,
    } = load_config(config)?;
    engine.delivery = delivery;
    // Components are compiled in a worker process: this binary again.
    match std::env::current_exe() {
        Ok(exe) => sandbox.compiler = crate::runtime::Compiler::Worker { exe },
        Err(e) => tracing::warn!(error = %e, "cannot find this binary; compiling plugins in process, without caps"),
    }
    match command {
        Command::CompileWorker { .. } => bail!("the compile worker takes no configuration"),
        Command::Robot(RobotCommand::Run(args)) => run_robot(sandbox, *args),
        Command::Robot(RobotCommand::Describe { plugin, json }) => describe(sandbox, &plugin, json),
        Command::Trigger(TriggerCommand::Run(args)) => run_trigger(sandbox, args),
        Command::Serve(args) => {
            let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            runtime.block_on(serve(sandbox, engine, args))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Package(command) => {
            let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            runtime.block_on(package(sandbox, engine, command))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Plugin(command) => plugin::run(sandbox, command),
        Command::Bulk(command) => {
            let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            runtime.block_on(bulk::run(sandbox, engine, command))
        }
        Command::Template(command) => {
            let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            runtime.block_on(template(sandbox, engine, command))
        }
        Command::Token(TokenCommand::Create {
            name,
            role,
            expires_in_days,
            user,
            database_url,
        }) => {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            let expires_at = expires_in_days
                .map(|days| crate::domain::Timestamp(crate::domain::Timestamp::now().0 + i64::from(days) * 86_400_000));
            let token = runtime.block_on(async {
                let store = Store::open(&database_url)
                    .await
                    .with_context(|| format!("opening the database {database_url}"))?;
                if let Some(user) = user
                    && store.directory().await?.user(user).is_none()
                {
                    bail!("no user {user} in this portal: add them first (PUT /api/users/{user})");
                }
                anyhow::Ok(crate::api::create_token_for(&store, &name, role, expires_at, user).await?)
            })?;
            println!("{token}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Account(command) => account(command),
    }
}

fn account(command: AccountCommand) -> anyhow::Result<ExitCode> {
    use crate::web::session::{MIN_PASSWORD, hash_password};
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let open = async |url: &str| {
        Store::open(url)
            .await
            .with_context(|| format!("opening the database {url}"))
    };
    match command {
        AccountCommand::Set {
            name,
            role,
            database_url,
        } => {
            let name_ok = |c: char| c.is_alphanumeric() || "._-@".contains(c);
            if name.is_empty() || name.chars().count() > 100 || !name.chars().all(name_ok) {
                anyhow::bail!("an account name is 1 to 100 letters, digits, `.`, `_`, `-` or `@`, not {name:?}");
            }
            let mut password = String::new();
            std::io::stdin()
                .read_line(&mut password)
                .context("reading the password from stdin")?;
            let password = password.trim_end_matches(['\r', '\n']);
            if password.chars().count() < MIN_PASSWORD {
                anyhow::bail!("the password (the first line of stdin) is shorter than {MIN_PASSWORD} characters");
            }
            let hash = hash_password(password).map_err(|e| anyhow::anyhow!("hashing the password: {e}"))?;
            runtime.block_on(async {
                let store = open(&database_url).await?;
                let account = crate::storage::StoredAccount {
                    name: name.clone(),
                    role: role.as_str().into(),
                    password: hash,
                };
                store.put_account(&account, crate::domain::Timestamp::now()).await?;
                store.end_sessions_of(&name).await?;
                anyhow::Ok(())
            })?;
            eprintln!("robohost: account {name} ({}) can sign in to the board", role.as_str());
        }
        AccountCommand::Remove { name, database_url } => {
            let removed =
                runtime.block_on(async { anyhow::Ok(open(&database_url).await?.remove_account(&name).await?) })?;
            if !removed {
                anyhow::bail!("no account is named {name:?}");
            }
            eprintln!("robohost: account {name} removed; its sessions ended");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// An engine on `database_url` with the standard robots installed.
async fn open_engine(sandbox: SandboxConfig, config: EngineConfig, database_url: &str) -> anyhow::Result<Arc<Engine>> {
    let store = Store::open(database_url)
        .await
        .with_context(|| format!("opening the database {database_url}"))?;
    let sandbox = Arc::new(start(sandbox)?);
    let engine = Engine::new(store, sandbox, Arc::new(SystemClock), config).await?;
    engine
        .install_standard()
        .await
        .context("installing the standard robots")?;
    Ok(engine)
}

async fn package(sandbox: SandboxConfig, config: EngineConfig, command: PackageCommand) -> anyhow::Result<()> {
    match command {
        PackageCommand::Install {
            file,
            approve,
            database_url,
        } => {
            let archive = std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let approved = approve
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| s.parse().map_err(|e| anyhow::anyhow!("--approve: {e}")))
                .collect::<anyhow::Result<Vec<crate::domain::Permission>>>()?;
            let engine = open_engine(sandbox, config, &database_url).await?;
            let report = engine.install_package_trusted(&archive, &approved).await?;
            println!("{}", serde_json::to_string_pretty(&report)?);
        }
        PackageCommand::Rollback { name, database_url } => {
            let engine = open_engine(sandbox, config, &database_url).await?;
            println!(
                "{}",
                serde_json::to_string_pretty(&engine.rollback_package(&name).await?)?
            );
        }
        PackageCommand::Remove {
            name,
            force,
            database_url,
        } => {
            let engine = open_engine(sandbox, config, &database_url).await?;
            let disabled = engine.remove_package(&name, force).await?;
            println!("{}", serde_json::json!({ "disabled_robots": disabled }));
        }
        PackageCommand::Pack { folder, key, output } => {
            let manifest_path = folder.join(crate::package::MANIFEST);
            let manifest = std::fs::read_to_string(&manifest_path)
                .with_context(|| format!("reading {}", manifest_path.display()))?;
            let mut files = std::collections::BTreeMap::new();
            collect(&folder, &folder, &mut files)?;
            let key = key
                .map(|path| read_key(&path).with_context(|| format!("reading the key {}", path.display())))
                .transpose()?;
            let archive = crate::package::pack(&manifest, &files, key.as_ref())?;
            std::fs::write(&output, &archive).with_context(|| format!("writing {}", output.display()))?;
            eprintln!(
                "robohost: packed {} files into {} ({} bytes)",
                files.len(),
                output.display(),
                archive.len()
            );
        }
        PackageCommand::Keygen { file } => {
            let mut seed = [0u8; 32];
            getrandom::fill(&mut seed).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
            std::fs::write(&file, hex::encode(seed)).with_context(|| format!("writing {}", file.display()))?;
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))?;
            }
            let public = ed25519_dalek::SigningKey::from_bytes(&seed).verifying_key();
            println!("{}", hex::encode(public.to_bytes()));
        }
        PackageCommand::Trust {
            publisher,
            key,
            database_url,
        } => {
            let engine = open_engine(sandbox, config, &database_url).await?;
            let mut trust = engine.trust().await?;
            trust.publishers.insert(publisher, key);
            engine.set_trust(&trust).await?;
            println!("{}", serde_json::to_string_pretty(&trust)?);
        }
        PackageCommand::Unsigned { policy, database_url } => {
            let engine = open_engine(sandbox, config, &database_url).await?;
            let mut trust = engine.trust().await?;
            trust.allow_unsigned = policy == "allow";
            engine.set_trust(&trust).await?;
            println!("{}", serde_json::to_string_pretty(&trust)?);
        }
    }
    Ok(())
}

/// Every file under `dir` but the manifest and the signature, by its path
/// relative to `root`.
fn collect(root: &Path, dir: &Path, files: &mut std::collections::BTreeMap<String, Vec<u8>>) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            collect(root, &path, files)?;
            continue;
        }
        let relative = path.strip_prefix(root)?.to_string_lossy().replace('\\', "/");
        if relative != crate::package::MANIFEST && relative != crate::package::SIGNATURE {
            files.insert(relative, std::fs::read(&path)?);
        }
    }
    Ok(())
}

/// A signing key written by `robohost package keygen`.
fn read_key(path: &Path) -> anyhow::Result<ed25519_dalek::SigningKey> {
    let text = std::fs::read_to_string(path)?;
    let seed: [u8; 32] = hex::decode(text.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| anyhow::anyhow!("not a key made by `robohost package keygen`"))?;
    Ok(ed25519_dalek::SigningKey::from_bytes(&seed))
}

async fn template(sandbox: SandboxConfig, config: EngineConfig, command: TemplateCommand) -> anyhow::Result<ExitCode> {
    match command {
        TemplateCommand::Install { file, database_url } => {
            let text = std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
            let engine = open_engine(sandbox, config, &database_url).await?;
            match engine.install_template(&text).await {
                Ok(report) => {
                    println!("{}", serde_json::to_string_pretty(&report)?);
                    if let Some(unchanged) = &report.unchanged {
                        eprintln!("robohost: {unchanged}");
                    }
                    if !report.to_bind.is_empty() {
                        eprintln!(
                            "robohost: bind these constants before their robots run: {}",
                            report.to_bind.join(", ")
                        );
                    }
                    if !report.to_source.is_empty() {
                        eprintln!(
                            "robohost: nothing fires these trigger codes yet; install a trigger plugin that describes them and make an endpoint for it: {}",
                            report.to_source.join(", ")
                        );
                    }
                    Ok(ExitCode::SUCCESS)
                }
                Err(crate::engine::EngineError::Template(problems)) => {
                    for problem in problems {
                        eprintln!(
                            "{}:{}:{}: {}",
                            file.display(),
                            problem.line,
                            problem.column,
                            problem.message
                        );
                    }
                    eprintln!("robohost: the template was not installed; nothing was written");
                    Ok(ExitCode::from(1))
                }
                Err(e) => Err(e.into()),
            }
        }
        TemplateCommand::Export {
            code,
            version,
            database_url,
        } => {
            let engine = open_engine(sandbox, config, &database_url).await?;
            print!("{}", engine.export_template(&code, &version).await?);
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn serve(sandbox: SandboxConfig, config: EngineConfig, args: ServeArgs) -> anyhow::Result<()> {
    let store = Store::open(&args.database_url)
        .await
        .with_context(|| format!("opening the database {}", args.database_url))?;
    if !store.has_tokens().await? {
        let token = crate::api::create_token(&store, "first admin", crate::api::Role::Admin).await?;
        eprintln!("robohost: no API token existed, so one was made for you (admin; shown only now): {token}");
    }
    if !store.has_accounts().await? {
        let password = crate::web::session::random_token().map_err(anyhow::Error::msg)?[..20].to_owned();
        let hash = crate::web::session::hash_password(&password).map_err(anyhow::Error::msg)?;
        let admin = crate::storage::StoredAccount {
            name: "admin".into(),
            role: crate::api::Role::Admin.as_str().into(),
            password: hash,
        };
        store.put_account(&admin, crate::domain::Timestamp::now()).await?;
        eprintln!(
            "robohost: no board account existed, so one was made for you (shown only now): user admin, password {password}; \
             `robohost account set NAME --role ROLE` sets others"
        );
    }
    let sandbox = Arc::new(start(sandbox)?);
    let workers = config.workers;
    let engine = Engine::new(store, sandbox, Arc::new(SystemClock), config).await?;
    engine
        .install_standard()
        .await
        .context("installing the standard robots")?;
    if args.demo {
        let made = engine.install_demo().await.context("setting up the demo")?;
        eprintln!(
            "robohost: demo portal ready (Prom2B, {made} new sample leads and deals); watch GET /api/runs, \
             GET /api/entities/lead, GET /api/outbox"
        );
    }
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    tracing::info!(address = %listener.local_addr()?, database = %args.database_url, "robohost is serving");
    // The signals are caught from before "serving on" is printed: a
    // service manager may stop the host the moment it says it serves.
    let stop = stop_signals()?;
    let address = listener.local_addr()?;
    eprintln!("robohost: serving on http://{address}; the board is at http://{address}/board");

    let shutdown = CancellationToken::new();
    let tasks = TaskTracker::new();
    for _ in 0..workers.max(1) {
        tasks.spawn(engine.clone().run(shutdown.clone()));
    }
    tasks.spawn({
        let shutdown = shutdown.clone();
        // Ends with the others, however the shutdown began (a signal, or
        // the API failing), or `tasks.wait()` would wait for a signal.
        async move {
            tokio::select! { _ = stop => shutdown.cancel(), _ = shutdown.cancelled() => {} }
        }
    });
    tasks.close();
    let served = crate::api::run(listener, engine, shutdown.clone()).await;
    shutdown.cancel();
    tasks.wait().await;
    tracing::info!("robohost stopped: every run it held is finished or released");
    served.context("serving the API")
}

/// Resolves on Ctrl-C or SIGTERM (the signal service managers stop a
/// service with); both are caught from the moment this returns.
fn stop_signals() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut interrupt = signal(SignalKind::interrupt()).context("catching Ctrl-C")?;
        let mut terminate = signal(SignalKind::terminate()).context("catching SIGTERM")?;
        Ok(async move {
            tokio::select! { _ = interrupt.recv() => {}, _ = terminate.recv() => {} }
        })
    }
    #[cfg(not(unix))]
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
    })
}

fn load_config(path: Option<&Path>) -> anyhow::Result<ConfigFile> {
    let mut config = match path {
        Some(path) => {
            let text =
                fs::read_to_string(path).with_context(|| format!("reading the configuration {}", path.display()))?;
            toml::from_str::<ConfigFile>(&text).with_context(|| format!("in the configuration {}", path.display()))?
        }
        None => ConfigFile::default(),
    };
    if config.sandbox.cache_dir.is_none() {
        config.sandbox.cache_dir =
            std::env::var_os("HOME").map(|home| Path::new(&home).join(".cache/robohost/compiled"));
    }
    Ok(config)
}
