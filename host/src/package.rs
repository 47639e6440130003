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
    let mut table: toml::Table = toml::from_str(manifest).map_err(|e| {
        let (line, _) = crate::domain::location(manifest, e.span().map_or(0, |s| s.start));
        bad("(file)", format!("line {line}: {}", e.message()))
    })?;
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
mod tests;
