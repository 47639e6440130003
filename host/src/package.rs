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
//! written anywhere: size caps, the expansion ratio (of everything
//! inflated, headers included), header records and names bounded before
//! they are read ([`archive`]), paths (relative, short, shallow, of portable
//! characters, no `..`, links or special files, no duplicates), no nested
//! archives, the manifest's fields, every file against its hash with none
//! missing or extra, components being binary components, and the signature
//! against the publishers the admin trusts. Each problem has its own error,
//! and an error quotes what the package holds only as [`Quoted`]: short and
//! escaped.

mod archive;

use std::collections::{BTreeMap, BTreeSet};

use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

pub use crate::domain::Fuel;
use crate::domain::{Capability, EntityKind, Permission};
pub use archive::{HEADER_RECORD_BYTES, PART_BYTES, PATH_BYTES, PATH_PARTS};
use archive::{PATH_RULES, read_entries, safe_path};

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
    /// Files and folders.
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
    #[error("the package holds more than {limit} files and folders")]
    TooManyFiles { limit: usize },
    #[error("the package expands to more than {limit} bytes")]
    ExpandsTooMuch { limit: u64 },
    #[error("the package expands more than {limit} times its size: refused as a compression bomb")]
    ExpansionRatio { limit: u64 },
    #[error(
        "the package holds a {what} of {size} bytes; at most {limit} are read, as a path is at most \
         {PATH_BYTES} bytes: make the package with `robohost package pack`"
    )]
    HeaderTooLarge { what: &'static str, size: u64, limit: u64 },
    #[error("`{path}` is a link; packages hold only files")]
    Link { path: Quoted },
    #[error("`{path}` is not a plain file or folder")]
    SpecialFile { path: Quoted },
    #[error("`{path}` is a folder whose header claims {size} bytes of data: refused unread, as folders hold none")]
    FolderWithData { path: Quoted, size: u64 },
    #[error("`{path}` is not a safe path: {why}; {PATH_RULES}")]
    UnsafePath { path: Quoted, why: &'static str },
    #[error("`{path}` is in the package twice")]
    Duplicate { path: Quoted },
    #[error("`{path}` is an archive inside the package; nested archives are refused")]
    NestedArchive { path: Quoted },
    #[error("the package has no `{MANIFEST}`")]
    NoManifest,
    #[error("`{MANIFEST}`: `{field}`: {problem}")]
    BadManifest { field: String, problem: String },
    #[error("`{path}` is listed in the manifest but not in the package")]
    MissingFile { path: Quoted },
    #[error("`{path}` is in the package but not listed in the manifest's `files`")]
    UnlistedFile { path: Quoted },
    #[error("`{path}` does not match its sha256 in the manifest: the package was changed after it was made")]
    Tampered { path: Quoted },
    #[error("`{path}` is not a WebAssembly component")]
    NotAComponent { path: Quoted },
    #[error(
        "the package is not signed, and this host accepts only signed packages: sign it \
         (`robohost package pack --key`), or allow unsigned packages here (`robohost package unsigned allow`)"
    )]
    Unsigned,
    #[error("publisher `{publisher}` is not one this host trusts")]
    UntrustedPublisher { publisher: Quoted },
    #[error("the signature does not match the manifest of publisher `{publisher}`")]
    BadSignature { publisher: Quoted },
}

/// Text from a package (a path, a publisher, a version) as an error quotes
/// it: at most [`Quoted::CHARS`] characters, then `…`, with control
/// characters, Unicode direction marks and backslashes escaped. A package's
/// names are the uploader's: unquoted, they could make an error as big as
/// the package, or rewrite the terminal or log line showing it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Quoted(String);

impl Quoted {
    /// The most characters quoted.
    pub const CHARS: usize = 100;

    /// `text` clipped to `chars` characters (escapes included), escaped.
    pub fn clipped(text: &str, chars: usize) -> Quoted {
        let mut shown = String::new();
        let mut count = 0;
        for c in text.chars() {
            let escaped = if c.is_control() || Quoted::is_bidi(c) {
                c.escape_unicode().to_string()
            } else if c == '\\' {
                "\\\\".to_owned()
            } else {
                c.to_string()
            };
            let width = escaped.chars().count();
            if count + width > chars {
                shown.push('…');
                break;
            }
            count += width;
            shown.push_str(&escaped);
        }
        Quoted(shown)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A Unicode mark or override of writing direction, which can make a
    /// name display as another (`exe.txt` shown for `txt.exe`).
    pub fn is_bidi(c: char) -> bool {
        matches!(c, '\u{200E}' | '\u{200F}' | '\u{061C}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
    }
}

impl From<&str> for Quoted {
    fn from(text: &str) -> Quoted {
        Quoted::clipped(text, Quoted::CHARS)
    }
}

/// Bytes that need not be UTF-8, such as a name in an archive: only the
/// first bytes are decoded, as no more are shown.
impl From<&[u8]> for Quoted {
    fn from(bytes: &[u8]) -> Quoted {
        let head = &bytes[..bytes.len().min(4 * Quoted::CHARS + 4)];
        let mut quoted = Quoted::from(String::from_utf8_lossy(head).as_ref());
        if head.len() < bytes.len() && !quoted.0.ends_with('…') {
            quoted.0.push('…');
        }
        quoted
    }
}

impl std::fmt::Display for Quoted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
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

/// A manifest's problem; both are clipped, as they may quote the manifest.
fn bad(field: &str, problem: impl Into<String>) -> PackageError {
    PackageError::BadManifest {
        field: Quoted::clipped(field, 2 * Quoted::CHARS).to_string(),
        problem: Quoted::clipped(&problem.into(), 5 * Quoted::CHARS).to_string(),
    }
}

/// The most a manifest may hold: a few hundred robots' worth, far from the
/// megabytes a TOML parser would build a tree for.
const MANIFEST_BYTES: usize = 256 * 1024;

fn parse_manifest(bytes: &[u8]) -> Result<Manifest, PackageError> {
    if bytes.len() > MANIFEST_BYTES {
        return Err(bad(
            "(file)",
            format!("is {} bytes; a manifest holds at most {MANIFEST_BYTES}", bytes.len()),
        ));
    }
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
            format!(
                "`{}` is not a semantic version such as 1.2.0 ({e})",
                Quoted::from(about.version.as_str())
            ),
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
                Quoted::from(about.wit.as_str()),
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
                    format!("`{}` is not listed in `files`", Quoted::from(p.component.as_str())),
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
        safe_path(path.as_bytes()).map_err(|e| bad("files", e.to_string()))?;
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
            format!(
                "`{}` is not a field code such as UF_SEGMENT (letters, digits and `_`), nor `*`",
                Quoted::from(code.as_str())
            ),
        ));
    }
    if let Some(e) = c.http.iter().find_map(|h| h.parse::<crate::domain::HttpTarget>().err()) {
        return Err(bad("capabilities.http", e.to_string()));
    }
    Ok(())
}

fn check_files(manifest: &Manifest, files: &BTreeMap<String, Vec<u8>>) -> Result<(), PackageError> {
    for (path, hash) in &manifest.files {
        let bytes = files.get(path).ok_or_else(|| PackageError::MissingFile {
            path: path.as_str().into(),
        })?;
        if hex::encode(Sha256::digest(bytes)) != hash.to_ascii_lowercase() {
            return Err(PackageError::Tampered {
                path: path.as_str().into(),
            });
        }
    }
    if let Some(path) = files.keys().find(|p| !manifest.files.contains_key(*p)) {
        return Err(PackageError::UnlistedFile {
            path: path.as_str().into(),
        });
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
            return Err(PackageError::NotAComponent {
                path: path.as_str().into(),
            });
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
        publisher: publisher.as_str().into(),
    };
    let key = trust
        .publishers
        .iter()
        .find(|(name, _)| name == publisher)
        .map(|(_, key)| key)
        .ok_or_else(|| PackageError::UntrustedPublisher {
            publisher: publisher.as_str().into(),
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
    use std::io::Read;

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

    /// A gzip-compressed tar written record by record, as a hostile
    /// uploader would: each header declares a kind, a name and a size, and
    /// the data that follows need not be what it declares.
    struct Tar(flate2::write::GzEncoder<Vec<u8>>);

    impl Tar {
        fn new() -> Tar {
            Tar(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast()))
        }

        /// A header, then `data` streamed (never held whole), padded.
        fn record(mut self, kind: tar::EntryType, name: &[u8], size: u64, data: &mut dyn Read) -> Tar {
            use std::io::Write;
            if name.len() > 100 {
                let mut long_name = name.to_vec();
                long_name.push(0);
                let long = long_name.len() as u64;
                self = self.record(tar::EntryType::GNULongName, b"././@LongLink", long, &mut &long_name[..]);
            }
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(kind);
            header.set_size(size);
            header.set_mode(0o644);
            let short = &name[..name.len().min(100)];
            header.as_old_mut().name[..short.len()].copy_from_slice(short);
            header.set_cksum();
            self.0.write_all(header.as_bytes()).unwrap();
            let written = std::io::copy(data, &mut self.0).unwrap();
            let padding = (512 - written % 512) % 512;
            self.0.write_all(&vec![0; padding as usize]).unwrap();
            self
        }

        fn file(self, name: &[u8], bytes: &[u8]) -> Tar {
            self.record(tar::EntryType::Regular, name, bytes.len() as u64, &mut &bytes[..])
        }

        /// A signed manifest listing the component and `extra` (as files
        /// with their hashes), the signature and the component.
        fn good(self, extra: &[(&str, &[u8])]) -> Tar {
            let mut files: Vec<(&str, &[u8])> = vec![("components/rf.wasm", COMPONENT)];
            files.extend_from_slice(extra);
            let mut m = manifest(&files[..1], "");
            for (path, bytes) in extra {
                let key = toml::Value::String((*path).into()).to_string();
                m.push_str(&format!("{key} = \"{}\"\n", hex::encode(Sha256::digest(bytes))));
            }
            let sig = hex::encode(key().sign(m.as_bytes()).to_bytes());
            self.file(MANIFEST.as_bytes(), m.as_bytes())
                .file(SIGNATURE.as_bytes(), sig.as_bytes())
                .file(b"components/rf.wasm", COMPONENT)
        }

        fn finish(mut self) -> Vec<u8> {
            use std::io::Write;
            self.0.write_all(&[0; 1024]).unwrap();
            self.0.finish().unwrap()
        }
    }

    /// The process's peak resident memory, in bytes.
    fn peak_memory() -> u64 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
        let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
        kib << 10
    }

    /// Opens `archive`, which must be refused: its error, how long the
    /// refusal took, and how much the process's peak memory grew meanwhile.
    fn refusal(archive: &[u8], limits: &Limits) -> (String, std::time::Duration, u64) {
        // The peak back to the present (Linux 4.0 on; where refused, the
        // peak so far stands, and growth past it still shows).
        let _ = std::fs::write("/proc/self/clear_refs", "5");
        let before = peak_memory();
        let started = std::time::Instant::now();
        let error = open(archive, limits, &trust()).expect_err("refused").to_string();
        (error, started.elapsed(), peak_memory().saturating_sub(before))
    }

    /// Asserts a refusal was quick, small in memory, short, and says `says`.
    #[track_caller]
    fn assert_refused_cheaply(what: &str, archive: &[u8], says: &[&str]) {
        let (error, took, grew) = refusal(archive, &Limits::default());
        let shown = &error[..error.len().min(300)];
        assert!(error.len() < 1024, "{what}: a {} byte error: {shown}…", error.len());
        for said in says {
            assert!(error.contains(said), "{what}: `{shown}` does not say `{said}`");
        }
        assert!(took < std::time::Duration::from_secs(2), "{what}: took {took:?}");
        assert!(grew < 64 << 20, "{what}: peak memory grew by {} MiB", grew >> 20);
    }

    #[test]
    fn header_records_are_refused_before_they_are_read() {
        // Each declares 64 MiB, and holds it: a 64 KiB upload.
        let bomb = 64 << 20;
        let records: [(tar::EntryType, &[u8], &str); 4] = [
            (tar::EntryType::GNULongName, b"a", "GNU long name of 67108864 bytes"),
            (
                tar::EntryType::GNULongLink,
                b"a",
                "GNU long link name of 67108864 bytes",
            ),
            (
                tar::EntryType::XHeader,
                b"path=",
                "PAX extended header of 67108864 bytes",
            ),
            (
                tar::EntryType::XGlobalHeader,
                b"path=",
                "PAX global header of 67108864 bytes",
            ),
        ];
        for (kind, fill, says) in records {
            // A PAX record's length, then its key and value.
            let mut data = format!("{bomb} ").into_bytes();
            data.extend_from_slice(fill);
            let head = data.len() as u64;
            let mut stream = (&data[..]).chain(std::io::repeat(b'a').take(bomb - head));
            let archive = Tar::new()
                .record(kind, b"././@LongLink", bomb, &mut stream)
                .file(b"x", b"x")
                .good(&[])
                .finish();
            assert!(archive.len() < 1 << 20);
            assert_refused_cheaply(says, &archive, &[says, "at most 4096 are read"]);
        }
        // Declared only: a 1 GiB long name in a few hundred bytes.
        let declared = Tar::new()
            .record(tar::EntryType::GNULongName, b"././@LongLink", 1 << 30, &mut &b"a"[..])
            .finish();
        assert_refused_cheaply("declared", &declared, &["GNU long name of 1073741824 bytes"]);
    }

    /// A control character or a direction mark, which no error may hold.
    fn invisible(c: char) -> bool {
        c.is_control() || matches!(c, '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
    }

    #[test]
    fn paths_must_be_short_shallow_and_portable() {
        let long = format!("{}/{}/{}", "x".repeat(100), "y".repeat(100), "z".repeat(60));
        let part = "p".repeat(101);
        let cases: [(&[u8], &str); 14] = [
            (b"a\x1bb.txt", "control character"),
            (b"a\nb.txt", "control character"),
            ("evil\u{202E}txt.exe".as_bytes(), "direction mark"),
            ("\u{200F}x.txt".as_bytes(), "direction mark"),
            ("x\u{2066}.txt".as_bytes(), "direction mark"),
            (b"a\xffb.txt", "not UTF-8"),
            (b"C:/evil.txt", "Windows drive"),
            (b"c:evil", "Windows drive"),
            (b"a\\b.txt", "backslash"),
            ("na\u{EF}ve.txt".as_bytes(), "not portable"),
            (b"a/b/c/d/e/f/g/h/i.txt", "more than 8 parts"),
            (part.as_bytes(), "longer than 100 bytes"),
            (long.as_bytes(), "longer than 255 bytes"),
            (b"templates/ok.toml/", "empty part"),
        ];
        for (path, why) in cases {
            let shown = String::from_utf8_lossy(path).into_owned();
            // Listed in the manifest when it can be: nothing else stops it.
            let listed: Vec<(&str, &[u8])> = std::str::from_utf8(path)
                .map(|p| vec![(p, &b"x"[..])])
                .unwrap_or_default();
            let archive = Tar::new().good(&listed).file(path, b"x").finish();
            let error = open(&archive, &Limits::default(), &trust())
                .map(|_| ())
                .expect_err(&shown)
                .to_string();
            assert!(error.contains(why), "{shown:?}: `{error}` does not say `{why}`");
            assert!(
                error.contains("at most 255 bytes in at most 8"),
                "{shown:?}: `{error}` states no rule"
            );
            assert!(!error.chars().any(invisible), "{shown:?}: `{error}` is not escaped");
        }
        // A 40 KB path: its long name is refused before it is read.
        let deep = "d/".repeat(20 << 10);
        let archive = Tar::new().good(&[]).file(deep.as_bytes(), b"x").finish();
        assert_refused_cheaply("40 KB path", &archive, &["GNU long name of 40961 bytes"]);
    }

    #[test]
    fn an_error_quotes_a_path_short_and_escaped() {
        let path = format!("{}\x1b]0;owned\x07.txt", "a".repeat(200));
        let archive = Tar::new().good(&[]).file(path.as_bytes(), b"x").finish();
        let error = refused(&archive).to_string();
        assert!(error.len() < 1024, "{error}");
        assert!(error.starts_with(&format!("`{}…`", "a".repeat(100))), "{error}");
        let archive = Tar::new().good(&[]).file(b"a\x1b]0;owned\x07.txt", b"x").finish();
        let error = refused(&archive).to_string();
        assert!(error.starts_with("`a\\u{1b}]0;owned\\u{7}.txt`"), "{error}");
        assert!(!error.chars().any(invisible), "{error}");
    }

    #[test]
    fn a_huge_manifest_is_refused_before_it_is_parsed() {
        let huge = format!("# {}\n", "x".repeat(MANIFEST_BYTES));
        let error = parse_manifest(huge.as_bytes()).err().expect("refused").to_string();
        assert!(error.contains("a manifest holds at most 262144"), "{error}");
    }

    #[test]
    fn quoted_text_is_clipped_and_escaped() {
        let escaped = Quoted::from("\x1b]0;\u{202E}\\");
        assert_eq!(escaped.as_str(), "\\u{1b}]0;\\u{202e}\\\\");
        assert_eq!(Quoted::from(&b"\xff\xfe"[..]).as_str(), "\u{FFFD}\u{FFFD}");
        assert_eq!(Quoted::clipped("abcdef", 3).as_str(), "abc…");
    }

    #[test]
    fn folders_count_as_files_and_hold_no_data() {
        let limits = Limits {
            files: 3,
            ..Limits::default()
        };
        let folder = |tar: Tar| tar.record(tar::EntryType::Directory, b"templates/", 0, &mut std::io::empty());
        let three = folder(Tar::new().good(&[])).finish();
        let (error, ..) = refusal(&three, &limits);
        assert!(error.contains("more than 3 files and folders"), "{error}");

        // A folder declaring 8 GiB, and a folder holding 64 MiB of zeros:
        // both refused without inflating a byte of it.
        let declared = folder(Tar::new().good(&[]))
            .record(tar::EntryType::Directory, b"big/", 8 << 30, &mut std::io::empty())
            .finish();
        assert_refused_cheaply("8 GiB folder", &declared, &["`big/` is a folder", "8589934592 bytes"]);
        let zeros = 64 << 20;
        let held = Tar::new()
            .good(&[])
            .record(
                tar::EntryType::Directory,
                b"big/",
                zeros,
                &mut std::io::repeat(0).take(zeros),
            )
            .finish();
        assert_refused_cheaply("64 MiB folder", &held, &["`big/` is a folder", "67108864 bytes"]);
    }

    #[test]
    fn everything_inflated_counts_against_the_expansion_limit() {
        // 1 MiB of folder headers, no data: it compresses a thousandfold.
        let mut tar = Tar::new();
        for _ in 0..2048 {
            tar = tar.record(tar::EntryType::Directory, b"d/", 0, &mut std::io::empty());
        }
        let limits = Limits {
            files: usize::MAX,
            ratio: 10,
            ..Limits::default()
        };
        let (error, ..) = refusal(&tar.finish(), &limits);
        assert!(error.contains("more than 10 times its size"), "{error}");
    }

    #[test]
    fn ambiguous_extension_records_are_refused() {
        use tar::EntryType::{GNULongName, XGlobalHeader, XHeader};
        let name = |tar: Tar, name: &[u8]| tar.record(GNULongName, b"././@LongLink", name.len() as u64, &mut &name[..]);
        let pax =
            |tar: Tar, kind, records: &[u8]| tar.record(kind, b"PaxHeaders/x", records.len() as u64, &mut &records[..]);
        let cases: [(&str, Tar, &str); 6] = [
            (
                "PAX size",
                pax(Tar::new(), XHeader, b"12 size=999\n"),
                "a PAX size differs from its header's",
            ),
            (
                "two long names",
                name(name(Tar::new(), b"a\0"), b"b\0"),
                "two records of one kind",
            ),
            (
                "a long name and a PAX path",
                pax(name(Tar::new(), b"a\0"), XHeader, b"10 path=b\n"),
                "both a GNU long name and a PAX path",
            ),
            (
                "malformed PAX",
                pax(Tar::new(), XHeader, b"99 path=b\n"),
                "not `LENGTH KEY=VALUE` records",
            ),
            (
                "global path",
                pax(Tar::new(), XGlobalHeader, b"10 path=b\n"),
                "PAX global header sets `path`",
            ),
            ("dangling", Tar::new().good(&[]), "describes no file"),
        ];
        for (what, tar, says) in cases {
            let tar = if what == "dangling" {
                name(tar, b"a\0")
            } else {
                tar.file(b"x", b"x").good(&[])
            };
            let error = refused(&tar.finish()).to_string();
            assert!(error.contains(says), "{what}: `{error}` does not say `{says}`");
        }
    }

    #[test]
    fn long_names_and_pax_records_of_common_tools_still_open() {
        // `pack` writes a GNU long name for a path over 100 bytes.
        let long = format!("templates/{}/{}.toml", "t".repeat(80), "u".repeat(20));
        let files = BTreeMap::from([
            ("components/rf.wasm".to_owned(), COMPONENT.to_vec()),
            (long.clone(), b"format = 1".to_vec()),
        ]);
        let m = "[package]\nname = \"rf\"\nversion = \"1.0.0\"\npublisher = \"acme\"\nwit = \"0.1.0\"\n\
                 [[robots]]\ncomponent = \"components/rf.wasm\"\ncodes = [\"rf_segment\"]\n";
        let packed = pack(m, &files, Some(&key())).unwrap();
        assert!(
            open(&packed, &Limits::default(), &trust())
                .unwrap()
                .files
                .contains_key(&long)
        );

        // A PAX path and times (Python's tarfile, bsdtar), and a global
        // comment (`git archive`).
        let pax = b"27 path=components/rf.wasm\n20 mtime=1700000000\n";
        let global = b"52 comment=6f1ed002ab5595859014ebf0951522d9c4b8e8a3\n";
        let mut tar = Tar::new().record(
            tar::EntryType::XGlobalHeader,
            b"pax_global_header",
            52,
            &mut &global[..],
        );
        let m = manifest(&[("components/rf.wasm", COMPONENT)], "");
        let sig = hex::encode(key().sign(m.as_bytes()).to_bytes());
        tar = tar
            .file(MANIFEST.as_bytes(), m.as_bytes())
            .file(SIGNATURE.as_bytes(), sig.as_bytes())
            .record(
                tar::EntryType::XHeader,
                b"PaxHeaders/x",
                pax.len() as u64,
                &mut &pax[..],
            )
            .file(b"ignored-for-the-pax-path", COMPONENT);
        let opened = open(&tar.finish(), &Limits::default(), &trust()).unwrap();
        assert_eq!(opened.files.keys().collect::<Vec<_>>(), ["components/rf.wasm"]);
    }
}
