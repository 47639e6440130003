//! The plugins an engine runs robots with: loaded once into the sandbox (or
//! known as webhooks), kept by name, and loaded again when another process
//! changes them ([`Engine::refresh`]). An installed plugin that does not load
//! is kept aside as [`Broken`], with its reason, so the portal still starts
//! and an admin can remove it. Packages are `packages.rs`'s.

use std::sync::Arc;

use super::{Engine, Result, invalid};
use crate::domain::{Capability, Digest, Fuel, Permission, RobotInfo, TriggerInfo, World};
use crate::runtime::{Grants, Plugin, TriggerPlugin};
use crate::storage::StoredPlugin;

/// The name the standard robots are installed under.
pub const STANDARD_PLUGIN: &str = "standard";

/// The standard robots (`plugins/standard`), built by `host/build.rs`.
pub const STANDARD_ROBOTS: &[u8] = include_bytes!(env!("ROBOHOST_STANDARD_WASM"));

/// An installed plugin, loaded into the sandbox.
pub(super) struct Installed {
    pub(super) handler: Handler,
    pub(super) grants: Grants,
    pub(super) fuel: Fuel,
    /// Its package's version, recorded on each run.
    pub(super) version: Option<String>,
}

impl Installed {
    pub(super) fn digest(&self) -> Digest {
        match &self.handler {
            Handler::Wasm(plugin) => plugin.digest(),
            Handler::Webhook { digest, .. } => *digest,
            Handler::Trigger(plugin) => plugin.digest(),
        }
    }
}

/// What runs a plugin's robots.
pub(super) enum Handler {
    /// A component, in the sandbox.
    Wasm(Plugin),
    /// An HTTP handler the host posts each run to.
    Webhook { url: String, digest: Digest },
    /// Not robots: a trigger component, which handles endpoints' calls.
    Trigger(TriggerPlugin),
}

/// An installed plugin that does not load (any more).
#[derive(Clone, Debug)]
pub struct Broken {
    pub digest: Digest,
    pub reason: String,
}

/// The configuration revisions an engine has loaded (see
/// [`crate::storage::Store::revisions`]), and when it last compared them.
#[derive(Default)]
pub(super) struct Seen {
    pub(super) settings: i64,
    pub(super) plugins: i64,
    pub(super) checked: Option<std::time::Instant>,
}

fn check_plugin_name(name: &str) -> Result<()> {
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
        return Err(invalid("name", "a plugin name is letters, digits, `_` and `-`"));
    }
    Ok(())
}

impl Engine {
    /// Reloads the settings and plugins another process changed; compares
    /// revisions at most once per poll interval.
    pub async fn refresh(self: &Arc<Self>) -> Result<()> {
        let poll = std::time::Duration::from_millis(self.config.poll_ms);
        let (settings, plugins) = {
            let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
            if seen.checked.is_some_and(|at| at.elapsed() < poll) {
                return Ok(());
            }
            seen.checked = Some(std::time::Instant::now());
            (seen.settings, seen.plugins)
        };
        let (new_settings, new_plugins) = self.store.revisions().await?;
        if new_settings != settings {
            self.reload().await?;
        }
        if new_plugins != plugins {
            let stored = self.store.plugins().await?;
            // Plugins removed elsewhere are unloaded here too.
            let installed = |name: &String| stored.iter().any(|s| &s.name == name);
            self.plugins
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .retain(|name, _| installed(name));
            self.broken
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .retain(|name, _| installed(name));
            for stored in stored {
                let loaded = self
                    .plugin(&stored.name)
                    .map(|i| i.digest())
                    .or_else(|| self.broken(&stored.name).map(|b| b.digest));
                if loaded != Some(stored.digest) {
                    self.load_or_mark_broken(&stored).await;
                }
            }
        }
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        (seen.settings, seen.plugins) = (new_settings, new_plugins);
        Ok(())
    }

    /// The robots a loaded plugin describes; none for a webhook, which
    /// describes no catalog.
    pub fn plugin_robots(&self, name: &str) -> Vec<RobotInfo> {
        match self.plugin(name).as_deref().map(|i| &i.handler) {
            Some(Handler::Wasm(plugin)) => plugin.robots().to_vec(),
            _ => Vec::new(),
        }
    }

    /// The loaded plugins that describe robots, by name.
    pub fn robot_plugins(&self) -> Vec<String> {
        let plugins = self.plugins.read().unwrap_or_else(|e| e.into_inner());
        let mut names: Vec<String> = plugins
            .iter()
            .filter(|(_, installed)| matches!(installed.handler, Handler::Wasm(_)))
            .map(|(name, _)| name.clone())
            .collect();
        names.sort();
        names
    }

    /// The triggers a loaded trigger plugin describes; none for a robot
    /// plugin.
    pub fn plugin_triggers(&self, name: &str) -> Vec<TriggerInfo> {
        match self.plugin(name).as_deref().map(|i| &i.handler) {
            Some(Handler::Trigger(plugin)) => plugin.triggers().to_vec(),
            _ => Vec::new(),
        }
    }

    /// Why an installed plugin did not load, if it did not.
    pub fn broken(&self, name: &str) -> Option<Broken> {
        self.broken.read().unwrap_or_else(|e| e.into_inner()).get(name).cloned()
    }

    pub(super) fn plugin(&self, name: &str) -> Option<Arc<Installed>> {
        self.plugins
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned()
    }

    /// Loads an installed plugin; one that fails is kept aside as broken,
    /// with the reason, and the error logged. Loading may take the sandbox's
    /// whole wall-clock limit (a `describe` that waits), so it runs where
    /// blocking is allowed.
    pub(super) async fn load_or_mark_broken(self: &Arc<Self>, stored: &StoredPlugin) {
        let (engine, plugin) = (self.clone(), stored.clone());
        let loaded = tokio::task::spawn_blocking(move || engine.load_plugin(&plugin)).await;
        let reason = match loaded {
            Ok(Ok(())) => return,
            Ok(Err(error)) => error.to_string(),
            Err(panicked) => format!("loading it panicked: {panicked}"),
        };
        tracing::error!(plugin = %stored.name, %reason, "an installed plugin does not load; its robots fail until it is replaced or removed");
        let broken = Broken {
            digest: stored.digest,
            reason,
        };
        self.set_plugin(&stored.name, Err(broken));
    }

    /// Records what plugin `name` is now: loaded, or broken with why; never
    /// both.
    pub(super) fn set_plugin(&self, name: &str, now: std::result::Result<Installed, Broken>) {
        let mut loaded = self.plugins.write().unwrap_or_else(|e| e.into_inner());
        let mut broken = self.broken.write().unwrap_or_else(|e| e.into_inner());
        match now {
            Ok(installed) => {
                broken.remove(name);
                loaded.insert(name.to_owned(), Arc::new(installed));
            }
            Err(why) => {
                loaded.remove(name);
                broken.insert(name.to_owned(), why);
            }
        }
    }

    fn load_plugin(&self, stored: &StoredPlugin) -> Result<()> {
        // `describe` runs with nothing granted: the context is never read.
        let context = self.context(&stored.name);
        let handler = match &stored.webhook {
            Some(url) => Handler::Webhook {
                url: url.clone(),
                digest: stored.digest,
            },
            // Linked and described: accepted, its compiled code is kept.
            None if stored.world == World::Trigger => {
                let mut plugin = self.sandbox.load_trigger(&stored.name, &stored.wasm, &context)?;
                plugin.accept();
                Handler::Trigger(plugin)
            }
            None => {
                let mut plugin = self.sandbox.load(&stored.name, &stored.wasm, &context)?;
                plugin.accept();
                Handler::Wasm(plugin)
            }
        };
        let installed = Installed {
            handler,
            grants: Grants::scoped(&stored.grants),
            fuel: stored.fuel,
            version: stored.version.clone(),
        };
        self.set_plugin(&stored.name, Ok(installed));
        Ok(())
    }

    /// Installs (or replaces) a webhook plugin: robots run by posting to
    /// `url` (plain HTTP, such as a handler on the local network).
    pub async fn install_webhook(&self, name: &str, url: &str, grants: Vec<Capability>) -> Result<()> {
        check_plugin_name(name)?;
        if !url.starts_with("http://") || url.parse::<hyper::Uri>().is_err() {
            return Err(invalid("url", format!("`{url}` is not an http:// URL")));
        }
        let digest = Digest::of(url.as_bytes());
        self.install(name, digest, Vec::new(), grants, Some(url.into())).await
    }

    /// Installs the standard robots shipped in this binary (plugin
    /// `standard`, every capability granted) unless that exact build is
    /// installed already.
    pub async fn install_standard(&self) -> Result<()> {
        let digest = Digest::of(STANDARD_ROBOTS);
        if self.plugin(STANDARD_PLUGIN).map(|i| i.digest()) == Some(digest) {
            return Ok(());
        }
        self.install_plugin(STANDARD_PLUGIN, STANDARD_ROBOTS.to_vec(), Capability::ALL.to_vec())
            .await
    }

    /// Installs (or replaces) a robot plugin under `name`, granting it `grants`.
    pub async fn install_plugin(&self, name: &str, wasm: Vec<u8>, grants: Vec<Capability>) -> Result<()> {
        check_plugin_name(name)?;
        let digest = Digest::of(&wasm);
        self.install(name, digest, wasm, grants, None).await
    }

    /// Loads a plugin installed without a package, then stores it: one that
    /// does not load is refused before anything is written.
    async fn install(
        &self,
        name: &str,
        digest: Digest,
        wasm: Vec<u8>,
        grants: Vec<Capability>,
        webhook: Option<String>,
    ) -> Result<()> {
        let stored = StoredPlugin {
            name: name.into(),
            digest,
            wasm,
            grants: Permission::unscoped(grants),
            webhook,
            fuel: Default::default(),
            version: None,
            world: World::Robot,
        };
        self.load_plugin(&stored)?;
        let mut tx = self.store.begin().await?;
        tx.put_plugin(&stored, self.now()).await?;
        tx.commit().await?;
        Ok(())
    }
}
