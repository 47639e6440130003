//! Installing plugin packages. A package is checked whole (see
//! [`crate::package`]), then each component is compiled and describes
//! itself in the sandbox before anything is stored: a component of the
//! wrong world, or one that does not provide the robots its manifest names,
//! leaves nothing behind, not even compiled code (each component's stays
//! staged until the package is stored; see `runtime::cache`). The
//! permissions a package requests must be approved explicitly; an upgrade
//! reports what it adds and removes and needs the approval again.

use serde::Serialize;

use super::{Engine, EngineError, Handler, Installed, Result, invalid};
use crate::domain::{Grants, Permission, World};
use crate::package::{Limits, Manifest, Provides, Trust, TrustSpec};

/// The settings key of the portal's trust.
const TRUST: &str = "trust";
use crate::storage::{StoredPackage, StoredPlugin};

/// What installing a package did.
#[derive(Debug, PartialEq, Serialize)]
pub struct PackageReport {
    pub name: String,
    pub version: String,
    /// The publisher whose signature was verified, if signed.
    pub signed_by: Option<String>,
    /// The plugins its components were installed as.
    pub plugins: Vec<String>,
    /// The permissions approved and granted.
    pub permissions: Vec<Permission>,
    /// Against the version it replaces: permissions it adds and drops.
    pub added: Vec<Permission>,
    pub removed: Vec<Permission>,
    /// The version it replaces.
    pub previous: Option<String>,
    /// What the admin should know, such as robots that may use more than
    /// the package requests.
    pub warnings: Vec<String>,
}

/// What installing a package would do, read before anything is compiled
/// or stored: what an admin approves.
#[derive(Debug, PartialEq, Serialize)]
pub struct PackagePreview {
    pub name: String,
    pub version: String,
    pub publisher: String,
    pub description: String,
    /// The publisher whose signature was verified, if signed.
    pub signed_by: Option<String>,
    /// Every permission it requests, to approve all.
    pub requested: Vec<Permission>,
    /// Against the active version of its name: permissions it adds and
    /// drops.
    pub added: Vec<Permission>,
    pub removed: Vec<Permission>,
    /// The active version it would replace.
    pub previous: Option<String>,
    /// The plugins it would be installed as, each with the codes it
    /// provides.
    pub plugins: Vec<(String, World, Vec<String>)>,
}

/// The plugin a component is installed as: the package's name, or with the
/// component's file stem when the package has several of its world. A
/// trigger component is named apart from the robot components (with its
/// stem) unless it is the package's only component.
fn plugin_name(package: &str, component: &str, alone: bool) -> String {
    if alone {
        return package.to_owned();
    }
    let stem = component
        .rsplit('/')
        .next()
        .unwrap_or(component)
        .trim_end_matches(".wasm");
    format!("{package}-{stem}")
}

/// The plugins a package's components are installed as, each with its world
/// and what it provides.
fn package_plugins<'a>(package: &str, manifest: &'a Manifest) -> Vec<(String, World, &'a Provides)> {
    let robots = manifest.robots.iter().map(|p| {
        let name = plugin_name(package, &p.component, manifest.robots.len() == 1);
        (name, World::Robot, p)
    });
    let alone = manifest.robots.is_empty() && manifest.triggers.len() == 1;
    let triggers = manifest
        .triggers
        .iter()
        .map(|p| (plugin_name(package, &p.component, alone), World::Trigger, p));
    robots.chain(triggers).collect()
}

/// Refuses a component that does not describe every code its manifest
/// entry lists, naming the entry (`robots[1].codes`).
fn check_codes(manifest: &Manifest, provides: &Provides, world: World, described: Vec<&str>) -> Result<()> {
    let Some(code) = provides.codes.iter().find(|c| !described.contains(&c.as_str())) else {
        return Ok(());
    };
    let list = match world {
        World::Robot => &manifest.robots,
        World::Trigger => &manifest.triggers,
    };
    let i = list.iter().position(|p| std::ptr::eq(p, provides)).unwrap_or(0);
    let problem = format!("`{}` provides no {} `{code}`", provides.component, world.as_str());
    Err(invalid(format!("{}s[{i}].codes", world.as_str()), problem))
}

impl Engine {
    /// Whose packages this portal trusts (`PUT /api/trust`).
    pub async fn trust(&self) -> Result<TrustSpec> {
        let stored = self.store.setting(TRUST).await?;
        Ok(stored
            .map(|v| serde_json::from_value(v).expect("the trust is stored in its JSON form"))
            .unwrap_or_default())
    }

    /// Replaces the trusted publishers and the unsigned-package policy.
    pub async fn set_trust(&self, spec: &TrustSpec) -> Result<()> {
        spec.decode().map_err(|problem| invalid("trust", problem))?;
        let mut tx = self.store.begin().await?;
        tx.set_setting(TRUST, &serde_json::to_value(spec).expect("the trust serialises"))
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Checks a package with the portal's trust as installing it would,
    /// and says what it requests and, for an upgrade, what it adds and
    /// drops. Nothing is compiled or stored: its components are compiled
    /// when it is installed.
    pub async fn preview_package(&self, archive: &[u8]) -> Result<PackagePreview> {
        let trust = self
            .trust()
            .await?
            .decode()
            .map_err(|problem| invalid("trust", problem))?;
        let package = crate::package::open(archive, &Limits::default(), &trust)?;
        let manifest = &package.manifest;
        let requested = manifest.capabilities.permissions();
        let previous = self.store.active_package(&manifest.package.name).await?;
        let before = previous.as_ref().map(|p| p.approved.clone()).unwrap_or_default();
        let not_in = |list: &[Permission], of: &[Permission]| -> Vec<Permission> {
            of.iter().filter(|p| !list.contains(p)).cloned().collect()
        };
        let plugins = package_plugins(&manifest.package.name, manifest)
            .into_iter()
            .map(|(name, world, provides)| (name, world, provides.codes.clone()))
            .collect();
        Ok(PackagePreview {
            name: manifest.package.name.clone(),
            version: manifest.package.version.clone(),
            publisher: manifest.package.publisher.clone(),
            description: manifest.package.description.clone(),
            signed_by: package.signed_by.clone(),
            added: not_in(&before, &requested),
            removed: not_in(&requested, &before),
            requested,
            previous: previous.map(|p| p.version),
            plugins,
        })
    }

    /// The robots that use package `name`'s plugins: what removing it
    /// would disable.
    pub async fn package_users(&self, name: &str) -> Result<Vec<crate::domain::RobotBinding>> {
        let plugins = self.package_plugin_names(name).await?;
        let settings = self.settings();
        let users = settings.robots.values().flatten();
        Ok(users
            .filter(|r| plugins.contains(&r.plugin) && r.disabled.is_none())
            .cloned()
            .collect())
    }

    /// Checks and installs a package with the portal's trust.
    pub async fn install_package_trusted(&self, archive: &[u8], approved: &[Permission]) -> Result<PackageReport> {
        let trust = self
            .trust()
            .await?
            .decode()
            .map_err(|problem| invalid("trust", problem))?;
        self.install_package(archive, &trust, approved).await
    }

    /// Checks and installs (or upgrades to) a package whose requested
    /// permissions are all in `approved`.
    pub async fn install_package(
        &self,
        archive: &[u8],
        trust: &Trust,
        approved: &[Permission],
    ) -> Result<PackageReport> {
        let package = crate::package::open(archive, &Limits::default(), trust)?;
        self.activate(package, archive, approved).await
    }

    /// Returns package `name` to the version installed before the active
    /// one, with the capabilities approved for it then.
    pub async fn rollback_package(&self, name: &str) -> Result<PackageReport> {
        let previous = self
            .store
            .previous_package(name)
            .await?
            .ok_or_else(|| EngineError::NotFound {
                what: format!("an earlier version of package `{name}`"),
            })?;
        let mut package = crate::package::reopen(&previous.archive)?;
        package.signed_by = previous.signed.then(|| previous.publisher.clone());
        self.activate(package, &previous.archive, &previous.approved).await
    }

    /// Removes package `name`. While robots use its plugins it is refused,
    /// unless `force`: then those robots are disabled, visibly, and their
    /// runs end cancelled with the reason. Returns the robots disabled.
    pub async fn remove_package(&self, name: &str, force: bool) -> Result<Vec<u64>> {
        let plugins = self.package_plugin_names(name).await?;
        self.remove(&format!("package `{name}`"), &plugins, Some(name), force)
            .await
    }

    /// The plugins active package `name` is installed as.
    async fn package_plugin_names(&self, name: &str) -> Result<Vec<String>> {
        let stored = self
            .store
            .active_package(name)
            .await?
            .ok_or_else(|| EngineError::NotFound {
                what: format!("package `{name}`"),
            })?;
        let package = crate::package::reopen(&stored.archive)?;
        Ok(package_plugins(name, &package.manifest)
            .into_iter()
            .map(|(plugin, ..)| plugin)
            .collect())
    }

    /// Removes plugin `name`, installed on its own (a package's plugins go
    /// with their package), under the same rule as [`Engine::remove_package`].
    /// A plugin that does not load can be removed too.
    pub async fn remove_plugin(&self, name: &str, force: bool) -> Result<Vec<u64>> {
        let installed = self.store.plugins().await?;
        if !installed.iter().any(|p| p.name == name) {
            return Err(EngineError::NotFound {
                what: format!("plugin `{name}`"),
            });
        }
        for package in self.store.packages().await? {
            let manifest = crate::package::reopen(&package.archive)?.manifest;
            if package_plugins(&package.name, &manifest)
                .iter()
                .any(|(plugin, ..)| plugin == name)
            {
                return Err(invalid(
                    "name",
                    format!(
                        "plugin `{name}` belongs to package `{}`; remove the package",
                        package.name
                    ),
                ));
            }
        }
        self.remove(&format!("plugin `{name}`"), &[name.to_owned()], None, force)
            .await
    }

    /// Removes `plugins` (and `package`, when they are its), disabling the
    /// robots that use them when `force`.
    async fn remove(&self, what: &str, plugins: &[String], package: Option<&str>, force: bool) -> Result<Vec<u64>> {
        let settings = self.settings();
        let users: Vec<&crate::domain::RobotBinding> = settings
            .robots
            .values()
            .flatten()
            .filter(|r| plugins.contains(&r.plugin) && r.disabled.is_none())
            .collect();
        if !users.is_empty() && !force {
            let ids: Vec<String> = users.iter().map(|r| r.id.to_string()).collect();
            return Err(invalid(
                "force",
                format!(
                    "{what} is used by robots {}; remove them first, or force the removal to disable them",
                    ids.join(", ")
                ),
            ));
        }
        let mut endpoints = Vec::new();
        for plugin in plugins {
            endpoints.extend(self.store.endpoints_of(plugin).await?);
        }
        if !endpoints.is_empty() && !force {
            return Err(invalid(
                "force",
                format!(
                    "{what} handles endpoints {}; remove them first, or force the removal (their calls are then refused, and recorded)",
                    endpoints.join(", ")
                ),
            ));
        }
        let mut tx = self.store.begin().await?;
        for robot in &users {
            let disabled = crate::domain::RobotBinding {
                disabled: Some(format!("{what} was removed")),
                ..(*robot).clone()
            };
            tx.update_robot(&disabled).await?;
        }
        tx.remove_plugins(package, plugins).await?;
        tx.commit().await?;
        {
            let mut loaded = self.plugins.write().unwrap_or_else(|e| e.into_inner());
            let mut broken = self.broken.write().unwrap_or_else(|e| e.into_inner());
            for plugin in plugins {
                loaded.remove(plugin);
                broken.remove(plugin);
            }
        }
        self.reload().await?;
        Ok(users.iter().map(|r| r.id).collect())
    }

    /// The robots placed on plugin `name` that `installed`, its new
    /// version, refuses as placing them would be refused (a robot it no
    /// longer describes, a property it dropped, more fuel than it allows):
    /// the upgrade goes ahead, and the admin is told which to change.
    fn misfits(&self, name: &str, installed: &Installed) -> Vec<String> {
        let settings = self.settings();
        let placed = settings.robots.values().flatten();
        placed
            .filter(|r| r.plugin == name && r.disabled.is_none())
            .filter_map(|r| {
                let refusal = self.check_against_plugin(r, installed).into_iter().next()?;
                Some(format!(
                    "robot {} (`{}` at {}/{}) does not fit this version: {}",
                    r.id,
                    r.robot,
                    r.pipeline,
                    r.stage,
                    EngineError::from(refusal)
                ))
            })
            .collect()
    }

    /// Installs a checked package as the active version of its name.
    async fn activate(
        &self,
        package: crate::package::Package,
        archive: &[u8],
        approved: &[Permission],
    ) -> Result<PackageReport> {
        let manifest = &package.manifest;
        let name = manifest.package.name.clone();
        let requested = manifest.capabilities.permissions();
        let previous = self.store.active_package(&name).await?;
        let before = previous.as_ref().map(|p| p.approved.clone()).unwrap_or_default();
        let not_in = |list: &[Permission], of: &[Permission]| -> Vec<Permission> {
            of.iter().filter(|p| !list.contains(p)).cloned().collect()
        };
        let added = not_in(&before, &requested);
        let removed = not_in(&requested, &before);
        let needed = not_in(approved, &requested);
        if !needed.is_empty() {
            return Err(EngineError::Unapproved {
                package: name,
                needed,
                added,
            });
        }

        let max_fuel = self.sandbox.config().max_fuel;
        if let Some(fuel) = manifest.fuel.default.filter(|f| *f > max_fuel) {
            let problem = format!("{fuel} is more than this host gives a run (sandbox.max-fuel, {max_fuel})");
            return Err(invalid("fuel.default", problem));
        }

        // Every component compiles and describes what the manifest says,
        // before anything is stored.
        let mut plugins = Vec::new();
        let mut warnings = Vec::new();
        let mut names = std::collections::HashSet::new();
        for (plugin_name, world, provides) in package_plugins(&name, manifest) {
            if !names.insert(plugin_name.clone()) {
                let problem = format!(
                    "`{}` would be installed as plugin `{plugin_name}`, as another component is; give the components different file names",
                    provides.component
                );
                return Err(invalid("component", problem));
            }
            let wasm = &package.files[&provides.component];
            let context = self.context(&plugin_name);
            let (digest, handler) = match world {
                World::Robot => {
                    let plugin = self.sandbox.load(&plugin_name, wasm, &context)?;
                    let described = plugin.robots().iter().map(|r| r.code.as_str());
                    check_codes(manifest, provides, world, described.collect())?;
                    // A robot may use a capability its package does not
                    // request (and handle the denial): the admin is told.
                    for robot in plugin.robots() {
                        for c in robot
                            .capabilities
                            .iter()
                            .filter(|c| !manifest.capabilities.host.contains(c))
                        {
                            warnings.push(format!(
                                "robot `{}` may use `{c}`, which the package does not request: those calls are denied",
                                robot.code
                            ));
                        }
                    }
                    (plugin.digest(), Handler::Wasm(plugin))
                }
                World::Trigger => {
                    let trigger = self.sandbox.load_trigger(&plugin_name, wasm, &context)?;
                    let described = trigger.triggers().iter().map(|t| t.code.as_str());
                    check_codes(manifest, provides, world, described.collect())?;
                    (trigger.digest(), Handler::Trigger(trigger))
                }
            };
            let stored = StoredPlugin {
                name: plugin_name,
                digest,
                wasm: wasm.clone(),
                grants: requested.clone(),
                webhook: None,
                fuel: manifest.fuel,
                version: Some(manifest.package.version.clone()),
                world,
            };
            let installed = Installed {
                handler,
                grants: Grants::scoped(&stored.grants),
                fuel: stored.fuel,
                version: stored.version.clone(),
            };
            warnings.extend(self.misfits(&stored.name, &installed));
            plugins.push((stored, installed));
        }

        let stored = StoredPackage {
            name: name.clone(),
            version: manifest.package.version.clone(),
            publisher: manifest.package.publisher.clone(),
            signed: package.signed_by.is_some(),
            manifest: package.manifest_text.clone(),
            archive: archive.to_vec(),
            approved: requested.clone(),
        };
        let now = self.now();
        let mut tx = self.store.begin().await?;
        tx.put_package(&stored, now).await?;
        for (plugin, _) in &plugins {
            tx.put_plugin(plugin, now).await?;
        }
        tx.commit().await?;
        // Stored: what compiling its components wrote is kept. Any return
        // before this drops them unaccepted, which deletes it.
        let mut names = Vec::new();
        for (stored, mut installed) in plugins {
            match &mut installed.handler {
                Handler::Wasm(plugin) => plugin.accept(),
                Handler::Trigger(trigger) => trigger.accept(),
                Handler::Webhook { .. } => {}
            }
            // Runs in flight keep the plugin they started with: they hold it.
            self.set_plugin(&stored.name, Ok(installed));
            names.push(stored.name);
        }
        Ok(PackageReport {
            name,
            version: stored.version,
            signed_by: package.signed_by,
            plugins: names,
            permissions: requested,
            added,
            removed,
            previous: previous.map(|p| p.version),
            warnings,
        })
    }
}
