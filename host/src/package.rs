//! Plugin packages: what admins install. A package is one gzip-compressed
//! tar archive holding
//!
//! - `robohost.toml`, the manifest: name, semver version, publisher,
//!   description, the WIT version it was built against, the robots and
//!   triggers each component provides, the capabilities it requests, its
//!   default and maximum fuel, and the sha256 of every other file;
//! - the components (`components/NAME.wasm`) and optional templates;
//! - optionally `robohost.sig`: the publisher's ed25519 signature of the
//!   manifest's bytes, in hex. The manifest names every file's hash, so the
//!   signature covers them all.
//!
//! [`open`] checks an archive completely in memory before anything is
//! written anywhere: size caps, the expansion ratio, paths (no absolute
//! paths, `..`, links or special files, no duplicates), no nested archives,
//! the manifest's fields, every file against its hash with none missing or
//! extra, components being binary components, and the signature against
//! the publishers the admin trusts. Each problem has its own error.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;

use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

pub use crate::domain::Fuel;
use crate::domain::{Capability, EntityKind, Permission};

/// The manifest's path in the archive.
pub const MANIFEST: &str = "robohost.toml";
/// The signature's path in the archive.
pub const SIGNATURE: &str = "robohost.sig";
/// The WIT versions this host runs components of.
pub const WIT_VERSIONS: [&str; 1] = ["0.1.0"];

/// How big a package may be.
#[derive(Clone, Debug)]
pub struct Limits {
    /// The archive as uploaded.
    pub archive_bytes: usize,
    /// All files once expanded.
    pub expanded_bytes: u64,
    /// Expanded bytes per archive byte.
    pub ratio: u64,
    pub files: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            archive_bytes: 32 << 20,
            expanded_bytes: 128 << 20,
            ratio: 100,
            files: 256,
        }
    }
}

/// Whose signatures the admin trusts, and whether unsigned packages may be
/// installed at all.
#[derive(Clone, Debug, Default)]
pub struct Trust {
    /// Publisher name and public key.
    pub publishers: Vec<(String, VerifyingKey)>,
    pub allow_unsigned: bool,
}

/// The admin's trust as stored: publisher names with their ed25519 public
/// keys in hex, and whether unsigned packages may be installed.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustSpec {
    #[serde(default)]
    pub publishers: BTreeMap<String, String>,
    #[serde(default)]
    pub allow_unsigned: bool,
}

impl TrustSpec {
    /// The keys decoded; an error names the publisher whose key is not one.
    pub fn decode(&self) -> Result<Trust, String> {
        let mut publishers = Vec::new();
        for (name, key) in &self.publishers {
            let bytes: [u8; 32] = hex::decode(key.trim())
                .ok()
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| format!("publishers.{name}: the key is not 32 bytes in hex"))?;
            let key = VerifyingKey::from_bytes(&bytes)
                .map_err(|_| format!("publishers.{name}: not an ed25519 public key"))?;
            publishers.push((name.clone(), key));
        }
        Ok(Trust {
            publishers,
            allow_unsigned: self.allow_unsigned,
        })
    }
}

/// Why a package was refused.
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum PackageError {
    #[error("the package is {size} bytes; at most {limit} are accepted")]
    TooLarge { size: usize, limit: usize },
    #[error("the package is not a readable gzip-compressed tar archive: {0}")]
    Unreadable(String),
    #[error("the package holds more than {limit} files")]
    TooManyFiles { limit: usize },
    #[error("the package expands to more than {limit} bytes")]
    ExpandsTooMuch { limit: u64 },
    #[error("the package expands more than {limit} times its size: refused as a compression bomb")]
    ExpansionRatio { limit: u64 },
    #[error("`{path}` is a link; packages hold only files")]
    Link { path: String },
    #[error("`{path}` is not a plain file or folder")]
    SpecialFile { path: String },
    #[error("`{path}` is not a safe path: {why}")]
    UnsafePath { path: String, why: &'static str },
    #[error("`{path}` is in the package twice")]
    Duplicate { path: String },
    #[error("`{path}` is an archive inside the package; nested archives are refused")]
    NestedArchive { path: String },
    #[error("the package has no `{MANIFEST}`")]
    NoManifest,
    #[error("`{MANIFEST}`: `{field}`: {problem}")]
    BadManifest { field: String, problem: String },
    #[error("`{path}` is listed in the manifest but not in the package")]
    MissingFile { path: String },
    #[error("`{path}` is in the package but not listed in the manifest's `files`")]
    UnlistedFile { path: String },
    #[error("`{path}` does not match its sha256 in the manifest: the package was changed after it was made")]
    Tampered { path: String },
    #[error("`{path}` is not a WebAssembly component")]
    NotAComponent { path: String },
    #[error(
        "the package is not signed, and this host accepts only signed packages: sign it \
         (`robohost package pack --key`), or allow unsigned packages here (`robohost package unsigned allow`)"
    )]
    Unsigned,
    #[error("publisher `{publisher}` is not one this host trusts")]
    UntrustedPublisher { publisher: String },
    #[error("the signature does not match the manifest of publisher `{publisher}`")]
    BadSignature { publisher: String },
}

/// The manifest, `robohost.toml`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub package: About,
    /// Components and the robots each provides.
    #[serde(default)]
    pub robots: Vec<Provides>,
    /// Components and the triggers each provides.
    #[serde(default)]
    pub triggers: Vec<Provides>,
    #[serde(default)]
    pub capabilities: Capabilities,
    #[serde(default)]
    pub fuel: Fuel,
    /// The sha256 (hex) of every file but the manifest and the signature.
    pub files: BTreeMap<String, String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct About {
    /// Lowercase letters, digits, `-` and `_`.
    pub name: String,
    /// Semantic version, such as `1.2.0`.
    pub version: String,
    pub publisher: String,
    #[serde(default)]
    pub description: String,
    /// The WIT version the components were built against.
    pub wit: String,
}

/// A component and the codes of the robots (or triggers) it provides.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Provides {
    pub component: String,
    pub codes: Vec<String>,
}

/// What the package asks to touch.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Capabilities {
    /// Host capabilities, such as `crm-read` and `set-fields`.
    #[serde(default)]
    pub host: Vec<Capability>,
    /// Entity kinds it reads.
    #[serde(default)]
    pub read: Vec<EntityKind>,
    /// Entity kinds it writes.
    #[serde(default)]
    pub write: Vec<EntityKind>,
    /// Fields `set-fields` may change, such as `UF_SEGMENT`; `*` for any.
    #[serde(default)]
    pub fields: Vec<String>,
    /// Where outbound HTTP goes: `api.example.com` (ports 80 and 443),
    /// `api.example.com:8443` (that port), or an exact address and port,
    /// `10.0.0.5:8080`, the only way to a non-public address.
    #[serde(default)]
    pub http: Vec<String>,
}

impl Capabilities {
    /// Everything requested, as the permissions an admin approves, sorted.
    pub fn permissions(&self) -> Vec<Permission> {
        let mut all: Vec<Permission> = (self.host.iter().copied().map(Permission::Host))
            .chain(self.read.iter().map(|k| Permission::Read(Some(*k))))
            .chain(self.write.iter().map(|k| Permission::Write(Some(*k))))
            .chain(self.fields.iter().map(|f| Permission::Field(f.clone())))
            // Checked when the manifest was read: none is dropped here.
            .chain(self.http.iter().filter_map(|h| h.parse().ok().map(Permission::Http)))
            .collect();
        all.sort();
        all.dedup();
        all
    }
}

/// A package that passed every check.
#[derive(Debug)]
pub struct Package {
    pub manifest: Manifest,
    /// The manifest as the archive holds it: what the signature covers.
    pub manifest_text: String,
    /// Every file but the manifest and the signature, by path.
    pub files: BTreeMap<String, Vec<u8>>,
    /// The publisher whose signature was verified, if signed.
    pub signed_by: Option<String>,
}

/// Reads and checks a package; nothing is written anywhere.
pub fn open(archive: &[u8], limits: &Limits, trust: &Trust) -> Result<Package, PackageError> {
    if archive.len() > limits.archive_bytes {
        return Err(PackageError::TooLarge {
            size: archive.len(),
            limit: limits.archive_bytes,
        });
    }
    let mut files = read_entries(archive, limits)?;
    let manifest_bytes = files.remove(MANIFEST).ok_or(PackageError::NoManifest)?;
    let signature = files.remove(SIGNATURE);
    let manifest = parse_manifest(&manifest_bytes)?;
    check_files(&manifest, &files)?;
    let signed_by = check_signature(&manifest, &manifest_bytes, signature.as_deref(), trust)?;
    Ok(Package {
        manifest,
        manifest_text: String::from_utf8(manifest_bytes).expect("checked as UTF-8 when parsed"),
        files,
        signed_by,
    })
}

/// Makes a package: `manifest` is the manifest's text without `files` (any
/// given is replaced), `files` every other file by path. The sha256 of each
/// file is written into the manifest, which is signed with `key` when given.
/// The result passes [`open`] by a host that trusts the key.
pub fn pack(
    manifest: &str,
    files: &BTreeMap<String, Vec<u8>>,
    key: Option<&ed25519_dalek::SigningKey>,
) -> Result<Vec<u8>, PackageError> {
    use ed25519_dalek::Signer;
    let mut table: toml::Table = toml::from_str(manifest).map_err(|e| bad("(file)", e.message().to_owned()))?;
    let hashes: toml::Table = files
        .iter()
        .map(|(path, bytes)| (path.clone(), toml::Value::String(hex::encode(Sha256::digest(bytes)))))
        .collect();
    table.insert("files".into(), toml::Value::Table(hashes));
    let text = toml::to_string(&table).expect("a TOML table serialises");
    // Checked as a host would, before anything is written.
    let parsed = parse_manifest(text.as_bytes())?;
    check_files(&parsed, files)?;
    let mut entries: Vec<(String, Vec<u8>)> = vec![(MANIFEST.into(), text.clone().into_bytes())];
    if let Some(key) = key {
        let signature = hex::encode(key.sign(text.as_bytes()).to_bytes());
        entries.push((SIGNATURE.into(), signature.into_bytes()));
    }
    entries.extend(files.iter().map(|(p, b)| (p.clone(), b.clone())));
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    let written = |e: std::io::Error| PackageError::Unreadable(e.to_string());
    for (path, bytes) in &entries {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        tar.append_data(&mut header, path, bytes.as_slice()).map_err(written)?;
    }
    tar.into_inner().and_then(|gz| gz.finish()).map_err(written)
}

/// Reads again a package this host checked and stored when installing it
/// (for a rollback): every check but the signature, which was verified then.
pub fn reopen(archive: &[u8]) -> Result<Package, PackageError> {
    let mut files = read_entries(archive, &Limits::default())?;
    let manifest_bytes = files.remove(MANIFEST).ok_or(PackageError::NoManifest)?;
    files.remove(SIGNATURE);
    let manifest = parse_manifest(&manifest_bytes)?;
    check_files(&manifest, &files)?;
    Ok(Package {
        manifest,
        manifest_text: String::from_utf8(manifest_bytes).expect("checked as UTF-8 when parsed"),
        files,
        signed_by: None,
    })
}

/// Every regular file of the archive, by its checked path.
fn read_entries(archive: &[u8], limits: &Limits) -> Result<BTreeMap<String, Vec<u8>>, PackageError> {
    let unreadable = |e: std::io::Error| PackageError::Unreadable(e.to_string());
    let expanded_limit = limits
        .expanded_bytes
        .min((archive.len() as u64).saturating_mul(limits.ratio).max(1 << 16));
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(archive));
    let mut files = BTreeMap::new();
    let mut expanded: u64 = 0;
    for entry in tar.entries().map_err(unreadable)? {
        let mut entry = entry.map_err(unreadable)?;
        let path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let kind = entry.header().entry_type();
        if kind.is_symlink() || kind.is_hard_link() {
            return Err(PackageError::Link { path });
        }
        if kind.is_dir() {
            continue;
        }
        if !kind.is_file() {
            return Err(PackageError::SpecialFile { path });
        }
        let path = safe_path(&path)?;
        if files.len() == limits.files {
            return Err(PackageError::TooManyFiles { limit: limits.files });
        }
        let size = entry.header().size().map_err(unreadable)?;
        expanded = expanded.saturating_add(size);
        check_expansion(expanded, expanded_limit, limits)?;
        // Read no more than the header promised, whatever the stream holds.
        let mut bytes = Vec::with_capacity(size.min(1 << 20) as usize);
        (&mut entry).take(size).read_to_end(&mut bytes).map_err(unreadable)?;
        if is_archive(&path, &bytes) {
            return Err(PackageError::NestedArchive { path });
        }
        if files.insert(path.clone(), bytes).is_some() {
            return Err(PackageError::Duplicate { path });
        }
    }
    Ok(files)
}

fn check_expansion(expanded: u64, limit: u64, limits: &Limits) -> Result<(), PackageError> {
    if expanded <= limit {
        return Ok(());
    }
    if limit < limits.expanded_bytes {
        return Err(PackageError::ExpansionRatio { limit: limits.ratio });
    }
    Err(PackageError::ExpandsTooMuch {
        limit: limits.expanded_bytes,
    })
}

/// A relative path of plain names, `/`-separated.
fn safe_path(path: &str) -> Result<String, PackageError> {
    let unsafe_path = |why| PackageError::UnsafePath {
        path: path.to_owned(),
        why,
    };
    let path = path.strip_prefix("./").unwrap_or(path);
    if path.is_empty() {
        return Err(unsafe_path("it is empty"));
    }
    if path.starts_with('/') {
        return Err(unsafe_path("it is absolute"));
    }
    if path.contains('\\') || path.contains('\0') {
        return Err(unsafe_path("it holds a backslash or a NUL"));
    }
    for part in path.split('/') {
        match part {
            "" => return Err(unsafe_path("it has an empty part")),
            "." | ".." => return Err(unsafe_path("it climbs out of the package")),
            _ => {}
        }
    }
    Ok(path.to_owned())
}

/// Whether a file is itself an archive, by its name or its first bytes.
fn is_archive(path: &str, bytes: &[u8]) -> bool {
    const SUFFIXES: [&str; 7] = [".tar", ".gz", ".tgz", ".zip", ".xz", ".bz2", ".zst"];
    let magic: [&[u8]; 5] = [b"\x1f\x8b", b"PK\x03\x04", b"\xfd7zXZ", b"BZh", b"\x28\xb5\x2f\xfd"];
    let tar = bytes.len() > 262 && &bytes[257..262] == b"ustar";
    SUFFIXES.iter().any(|s| path.ends_with(s)) || magic.iter().any(|m| bytes.starts_with(m)) || tar
}

fn bad(field: &str, problem: impl Into<String>) -> PackageError {
    PackageError::BadManifest {
        field: field.into(),
        problem: problem.into(),
    }
}

fn parse_manifest(bytes: &[u8]) -> Result<Manifest, PackageError> {
    let text = std::str::from_utf8(bytes).map_err(|_| bad("(file)", "is not UTF-8 text"))?;
    let manifest: Manifest = toml::from_str(text).map_err(|e| {
        let (line, _) = crate::domain::location(text, e.span().map_or(0, |s| s.start));
        bad("(file)", format!("line {line}: {}", e.message()))
    })?;
    let about = &manifest.package;
    let name_ok = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_';
    if about.name.is_empty() || about.name.len() > 64 || !about.name.chars().all(name_ok) {
        return Err(bad("package.name", "1 to 64 lowercase letters, digits, `-` and `_`"));
    }
    if let Err(e) = semver::Version::parse(&about.version) {
        return Err(bad(
            "package.version",
            format!("`{}` is not a semantic version such as 1.2.0 ({e})", about.version),
        ));
    }
    if about.publisher.trim().is_empty() {
        return Err(bad("package.publisher", "is required"));
    }
    if !WIT_VERSIONS.contains(&about.wit.as_str()) {
        return Err(bad(
            "package.wit",
            format!(
                "components built against WIT {} do not run on this host, which runs WIT {}",
                about.wit,
                WIT_VERSIONS.join(", ")
            ),
        ));
    }
    if manifest.robots.is_empty() && manifest.triggers.is_empty() {
        return Err(bad("robots", "a package provides at least one robot or trigger"));
    }
    for (list, provides) in [("robots", &manifest.robots), ("triggers", &manifest.triggers)] {
        for (i, p) in provides.iter().enumerate() {
            if !manifest.files.contains_key(&p.component) {
                return Err(bad(
                    &format!("{list}[{i}].component"),
                    format!("`{}` is not listed in `files`", p.component),
                ));
            }
            if !p.component.ends_with(".wasm") {
                return Err(bad(&format!("{list}[{i}].component"), "a component is a `.wasm` file"));
            }
            if p.codes.is_empty() {
                return Err(bad(&format!("{list}[{i}].codes"), "name at least one code"));
            }
        }
    }
    check_capabilities(&manifest.capabilities)?;
    if let (Some(default), Some(max)) = (manifest.fuel.default, manifest.fuel.max)
        && default > max
    {
        return Err(bad("fuel.default", format!("{default} is more than fuel.max {max}")));
    }
    for (path, hash) in &manifest.files {
        safe_path(path).map_err(|e| bad("files", e.to_string()))?;
        if hash.len() != 64 || !hash.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(bad(&format!("files.\"{path}\""), "is not a sha256 in hex"));
        }
    }
    Ok(manifest)
}

/// The capabilities that change entities, so need the kinds they write.
const WRITES: [Capability; 5] = [
    Capability::SetFields,
    Capability::MoveStage,
    Capability::ChangeResponsible,
    Capability::CreateEntity,
    Capability::AddComment,
];

fn check_capabilities(c: &Capabilities) -> Result<(), PackageError> {
    let reads = c.host.contains(&Capability::CrmRead);
    let writes = c.host.iter().find(|h| WRITES.contains(h));
    match (reads, c.read.is_empty()) {
        (true, true) => {
            return Err(bad(
                "capabilities.read",
                "`crm-read` is requested: name the entity kinds it reads, such as read = [\"deal\"]",
            ));
        }
        (false, false) => {
            return Err(bad(
                "capabilities.read",
                "names kinds to read, but `crm-read` is not requested",
            ));
        }
        _ => {}
    }
    match (writes, c.write.is_empty()) {
        (Some(w), true) => {
            return Err(bad(
                "capabilities.write",
                format!("`{w}` is requested: name the entity kinds it changes, such as write = [\"deal\"]"),
            ));
        }
        (None, false) => {
            return Err(bad(
                "capabilities.write",
                "names kinds to change, but no capability that changes entities is requested",
            ));
        }
        _ => {}
    }
    match (c.host.contains(&Capability::SetFields), c.fields.is_empty()) {
        (true, true) => {
            return Err(bad(
                "capabilities.fields",
                "`set-fields` is requested: name the fields it sets, such as fields = [\"UF_SEGMENT\"], or [\"*\"] for any",
            ));
        }
        (false, false) => {
            return Err(bad(
                "capabilities.fields",
                "names fields, but `set-fields` is not requested",
            ));
        }
        _ => {}
    }
    if let Some(code) = c.fields.iter().find(|f| *f != "*" && !crate::domain::is_field_code(f)) {
        return Err(bad(
            "capabilities.fields",
            format!("`{code}` is not a field code such as UF_SEGMENT (letters, digits and `_`), nor `*`"),
        ));
    }
    if let Some(e) = c.http.iter().find_map(|h| h.parse::<crate::domain::HttpTarget>().err()) {
        return Err(bad("capabilities.http", e.to_string()));
    }
    Ok(())
}

fn check_files(manifest: &Manifest, files: &BTreeMap<String, Vec<u8>>) -> Result<(), PackageError> {
    for (path, hash) in &manifest.files {
        let bytes = files
            .get(path)
            .ok_or_else(|| PackageError::MissingFile { path: path.clone() })?;
        if hex::encode(Sha256::digest(bytes)) != hash.to_ascii_lowercase() {
            return Err(PackageError::Tampered { path: path.clone() });
        }
    }
    if let Some(path) = files.keys().find(|p| !manifest.files.contains_key(*p)) {
        return Err(PackageError::UnlistedFile { path: path.clone() });
    }
    let components: BTreeSet<&String> = manifest
        .robots
        .iter()
        .chain(&manifest.triggers)
        .map(|p| &p.component)
        .collect();
    for path in components {
        // A binary component: the wasm magic, then the component layer.
        if !files[path].starts_with(b"\0asm\x0d\0\x01\0") {
            return Err(PackageError::NotAComponent { path: path.clone() });
        }
    }
    Ok(())
}

fn check_signature(
    manifest: &Manifest,
    manifest_bytes: &[u8],
    signature: Option<&[u8]>,
    trust: &Trust,
) -> Result<Option<String>, PackageError> {
    let publisher = &manifest.package.publisher;
    let Some(signature) = signature else {
        return if trust.allow_unsigned {
            Ok(None)
        } else {
            Err(PackageError::Unsigned)
        };
    };
    let bad_signature = || PackageError::BadSignature {
        publisher: publisher.clone(),
    };
    let key = trust
        .publishers
        .iter()
        .find(|(name, _)| name == publisher)
        .map(|(_, key)| key)
        .ok_or_else(|| PackageError::UntrustedPublisher {
            publisher: publisher.clone(),
        })?;
    let text = std::str::from_utf8(signature).map_err(|_| bad_signature())?;
    let bytes: [u8; 64] = hex::decode(text.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(bad_signature)?;
    key.verify(manifest_bytes, &Signature::from_bytes(&bytes))
        .map_err(|_| bad_signature())?;
    Ok(Some(publisher.clone()))
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::{Signer, SigningKey};

    use super::*;

    /// The smallest binary component: the magic and the component layer.
    const COMPONENT: &[u8] = b"\0asm\x0d\0\x01\0";

    fn key() -> SigningKey {
        SigningKey::from_bytes(&[7; 32])
    }

    fn trust() -> Trust {
        Trust {
            publishers: vec![("acme".into(), key().verifying_key())],
            allow_unsigned: false,
        }
    }

    fn manifest(files: &[(&str, &[u8])], extra: &str) -> String {
        let mut text = format!(
            "[package]\nname = \"rf\"\nversion = \"1.0.0\"\npublisher = \"acme\"\nwit = \"0.1.0\"\n{extra}\n\
             [[robots]]\ncomponent = \"components/rf.wasm\"\ncodes = [\"rf_segment\"]\n\n[files]\n"
        );
        for (path, bytes) in files {
            text.push_str(&format!("\"{path}\" = \"{}\"\n", hex::encode(Sha256::digest(bytes))));
        }
        text
    }

    /// A gzip-compressed tar of `entries`, each a path, bytes and type.
    fn archive(entries: &[(&str, &[u8], tar::EntryType)]) -> Vec<u8> {
        let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        let mut tar = tar::Builder::new(gz);
        for (path, bytes, kind) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(*kind);
            header.set_size(bytes.len() as u64);
            header.set_mode(0o644);
            if kind.is_symlink() || kind.is_hard_link() {
                header.set_link_name("/etc/passwd").unwrap();
            }
            // Written raw, so paths the builder would refuse can be tested.
            let name = path.as_bytes();
            header.as_old_mut().name[..name.len()].copy_from_slice(name);
            header.set_cksum();
            tar.append(&header, *bytes).unwrap();
        }
        tar.into_inner().unwrap().finish().unwrap()
    }

    /// A signed package of `files` with the manifest `extra` lines added.
    fn package(files: &[(&str, &[u8])], extra: &str) -> Vec<u8> {
        let manifest = manifest(files, extra);
        let signature = hex::encode(key().sign(manifest.as_bytes()).to_bytes());
        let mut entries = vec![
            (MANIFEST, manifest.as_bytes(), tar::EntryType::Regular),
            (SIGNATURE, signature.as_bytes(), tar::EntryType::Regular),
        ];
        entries.extend(files.iter().map(|(p, b)| (*p, *b, tar::EntryType::Regular)));
        archive(&entries)
    }

    fn refused(bytes: &[u8]) -> PackageError {
        open(bytes, &Limits::default(), &trust()).unwrap_err()
    }

    #[test]
    fn a_signed_package_opens_with_its_files() {
        let bytes = package(
            &[("components/rf.wasm", COMPONENT), ("templates/rf.toml", b"format = 1")],
            "",
        );
        let opened = open(&bytes, &Limits::default(), &trust()).unwrap();
        assert_eq!(opened.signed_by.as_deref(), Some("acme"));
        assert_eq!(opened.manifest.package.name, "rf");
        assert_eq!(
            opened.files.keys().collect::<Vec<_>>(),
            ["components/rf.wasm", "templates/rf.toml"]
        );
    }

    #[test]
    fn each_malformed_package_gets_its_own_error() {
        let good = package(&[("components/rf.wasm", COMPONENT)], "");
        let regular = tar::EntryType::Regular;
        let m = manifest(&[("components/rf.wasm", COMPONENT)], "");
        let sig = hex::encode(key().sign(m.as_bytes()).to_bytes());
        let with = |extra: (&str, &[u8], tar::EntryType)| {
            archive(&[
                (MANIFEST, m.as_bytes(), regular),
                (SIGNATURE, sig.as_bytes(), regular),
                ("components/rf.wasm", COMPONENT, regular),
                extra,
            ])
        };
        let bomb = vec![0u8; 8 << 20];
        let cases: Vec<(&str, Vec<u8>, PackageError)> = vec![
            (
                "truncated",
                good[..good.len() / 2].to_vec(),
                PackageError::Unreadable(String::new()),
            ),
            (
                "path traversal",
                with(("../../etc/cron.d/x", b"x", regular)),
                PackageError::UnsafePath {
                    path: "../../etc/cron.d/x".into(),
                    why: "it climbs out of the package",
                },
            ),
            (
                "absolute path",
                with(("/etc/x", b"x", regular)),
                PackageError::UnsafePath {
                    path: "/etc/x".into(),
                    why: "it is absolute",
                },
            ),
            (
                "symlink",
                with(("components/link.wasm", b"", tar::EntryType::Symlink)),
                PackageError::Link {
                    path: "components/link.wasm".into(),
                },
            ),
            (
                "hard link",
                with(("components/hard.wasm", b"", tar::EntryType::Link)),
                PackageError::Link {
                    path: "components/hard.wasm".into(),
                },
            ),
            (
                "device",
                with(("dev", b"", tar::EntryType::Char)),
                PackageError::SpecialFile { path: "dev".into() },
            ),
            (
                "expansion bomb",
                with(("zeros.bin", &bomb, regular)),
                PackageError::ExpansionRatio { limit: 100 },
            ),
            (
                "nested archive",
                with(("inner.tar.gz", &good, regular)),
                PackageError::NestedArchive {
                    path: "inner.tar.gz".into(),
                },
            ),
            (
                "duplicate",
                with(("components/rf.wasm", COMPONENT, regular)),
                PackageError::Duplicate {
                    path: "components/rf.wasm".into(),
                },
            ),
            (
                "unlisted file",
                with(("extra.txt", b"hello", regular)),
                PackageError::UnlistedFile {
                    path: "extra.txt".into(),
                },
            ),
            (
                "no manifest",
                archive(&[("components/rf.wasm", COMPONENT, regular)]),
                PackageError::NoManifest,
            ),
            (
                "bad name",
                edited(|m| m.replace("name = \"rf\"", "name = \"RF Robots\"")),
                bad("package.name", "1 to 64 lowercase letters, digits, `-` and `_`"),
            ),
        ];
        for (what, bytes, expected) in cases {
            let got = refused(&bytes);
            match (&got, &expected) {
                (PackageError::Unreadable(_), PackageError::Unreadable(_)) => {}
                _ => assert_eq!(got, expected, "{what}"),
            }
        }
    }

    /// Rebuilds a package with a manifest edited by `edit`, signed again.
    fn edited(edit: impl Fn(String) -> String) -> Vec<u8> {
        let files: &[(&str, &[u8])] = &[("components/rf.wasm", COMPONENT)];
        let m = edit(manifest(files, ""));
        let sig = hex::encode(key().sign(m.as_bytes()).to_bytes());
        let regular = tar::EntryType::Regular;
        archive(&[
            (MANIFEST, m.as_bytes(), regular),
            (SIGNATURE, sig.as_bytes(), regular),
            ("components/rf.wasm", COMPONENT, regular),
        ])
    }

    #[test]
    fn bad_manifest_fields_are_named() {
        let field = |bytes: Vec<u8>| match refused(&bytes) {
            PackageError::BadManifest { field, .. } => field,
            other => panic!("{other}"),
        };
        assert_eq!(field(edited(|m| m.replace("1.0.0", "1.x"))), "package.version");
        assert_eq!(
            field(edited(|m| m.replace("wit = \"0.1.0\"", "wit = \"0.9.0\""))),
            "package.wit"
        );
        assert_eq!(
            field(edited(|m| m.replace("publisher = \"acme\"", "publisher = \" \""))),
            "package.publisher"
        );
        assert_eq!(
            field(edited(|m| m.replace(
                "[[robots]]",
                "[capabilities]\nhost = [\"teleport\"]\n\n[[robots]]"
            ))),
            "(file)"
        );
        assert_eq!(
            field(edited(
                |m| m.replace("[[robots]]", "[fuel]\ndefault = 10\nmax = 5\n\n[[robots]]")
            )),
            "fuel.default"
        );
        assert_eq!(
            field(edited(|m| m.replace(
                "[[robots]]",
                "[capabilities]\nhttp = [\"bad host/x\"]\n\n[[robots]]"
            ))),
            "capabilities.http"
        );
        let problem = |host: &str| match refused(&edited(|m| {
            m.replace(
                "[[robots]]",
                &format!("[capabilities]\nhttp = [\"{host}\"]\n\n[[robots]]"),
            )
        })) {
            PackageError::BadManifest { problem, .. } => problem,
            other => panic!("{other}"),
        };
        assert!(problem("localhost").contains("exact address and port"));
        assert!(problem("10.0.0.5").contains("only with its exact port, such as 10.0.0.5:8080"));
    }

    #[test]
    fn tampering_and_signatures_are_caught() {
        let regular = tar::EntryType::Regular;
        let m = manifest(&[("components/rf.wasm", COMPONENT)], "");
        let sig = hex::encode(key().sign(m.as_bytes()).to_bytes());
        let tampered = archive(&[
            (MANIFEST, m.as_bytes(), regular),
            (SIGNATURE, sig.as_bytes(), regular),
            ("components/rf.wasm", b"\0asm\x0d\0\x01\0evil", regular),
        ]);
        assert_eq!(
            refused(&tampered),
            PackageError::Tampered {
                path: "components/rf.wasm".into()
            }
        );

        let forged = hex::encode(SigningKey::from_bytes(&[9; 32]).sign(m.as_bytes()).to_bytes());
        let forged = archive(&[
            (MANIFEST, m.as_bytes(), regular),
            (SIGNATURE, forged.as_bytes(), regular),
            ("components/rf.wasm", COMPONENT, regular),
        ]);
        assert_eq!(
            refused(&forged),
            PackageError::BadSignature {
                publisher: "acme".into()
            }
        );

        let unsigned = archive(&[
            (MANIFEST, m.as_bytes(), regular),
            ("components/rf.wasm", COMPONENT, regular),
        ]);
        assert_eq!(refused(&unsigned), PackageError::Unsigned);
        let lax = Trust {
            allow_unsigned: true,
            ..trust()
        };
        assert_eq!(open(&unsigned, &Limits::default(), &lax).unwrap().signed_by, None);

        let stranger = edited(|m| m.replace("publisher = \"acme\"", "publisher = \"umbrella\""));
        assert_eq!(
            refused(&stranger),
            PackageError::UntrustedPublisher {
                publisher: "umbrella".into()
            }
        );

        let core_module = b"\0asm\x01\0\0\0";
        let m = manifest(&[("components/rf.wasm", core_module)], "");
        let sig = hex::encode(key().sign(m.as_bytes()).to_bytes());
        let module = archive(&[
            (MANIFEST, m.as_bytes(), regular),
            (SIGNATURE, sig.as_bytes(), regular),
            ("components/rf.wasm", core_module, regular),
        ]);
        assert_eq!(
            refused(&module),
            PackageError::NotAComponent {
                path: "components/rf.wasm".into()
            }
        );
    }

    #[test]
    fn an_archive_over_the_size_cap_is_refused_before_reading() {
        let limits = Limits {
            archive_bytes: 10,
            ..Limits::default()
        };
        assert_eq!(
            open(&[0; 11], &limits, &trust()).unwrap_err(),
            PackageError::TooLarge { size: 11, limit: 10 }
        );
    }
}
