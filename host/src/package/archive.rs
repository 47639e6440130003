//! Reading a package's gzip-compressed tar archive, with everything the
//! archive declares bounded before it is read.
//!
//! The archive is iterated raw: the `tar` crate reads one 512-byte header
//! at a time and nothing else on its own. GNU long names and links (`L`,
//! `K`) and PAX extended headers (`x`, `g`) are records like any other,
//! which this module reads only when they declare at most
//! [`HEADER_RECORD_BYTES`], and refuses unread otherwise: a 1 MB upload
//! declaring a 1 GiB long name must not make the host allocate it. Every
//! byte inflated (headers, names, padding, data) counts against the
//! expansion limit, so decompression is bounded whatever the headers say.
//!
//! It must not quote a name in an error but through [`Quoted`], nor read an
//! entry's data before its kind, path and size are accepted.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::io::{self, Read};

use super::{Limits, PackageError, Quoted};

/// The most bytes a GNU long name or long link name, or a PAX extended
/// header, may declare. A path is at most [`PATH_BYTES`], so anything
/// bigger is not a package's name but a way to make the host buffer what
/// an archive merely declares; 4 KiB leaves room for the other records
/// tools write (times, attributes).
pub const HEADER_RECORD_BYTES: u64 = 4096;
/// The longest path, in bytes: what a ustar header's prefix and name hold.
pub const PATH_BYTES: usize = 255;
/// The most `/`-separated parts of a path: deep trees are a way to exhaust
/// whoever unpacks them, and no package needs one.
pub const PATH_PARTS: usize = 8;
/// The longest part of a path, in bytes: what a tar name field holds, and
/// short of every file system's limit.
pub const PART_BYTES: usize = 100;

/// What the path rules are, for errors to say.
pub(super) const PATH_RULES: &str = "package paths are relative, at most 255 bytes in at most 8 `/`-separated parts \
     of at most 100 bytes, each of ASCII letters, digits, `.`, `_` and `-`";

/// Every regular file of the archive, by its checked path.
pub(super) fn read_entries(archive: &[u8], limits: &Limits) -> Result<BTreeMap<String, Vec<u8>>, PackageError> {
    let limit = limits
        .expanded_bytes
        .min((archive.len() as u64).saturating_mul(limits.ratio).max(1 << 16));
    let inflated = Cell::new(0);
    let stream = Counted {
        inner: flate2::read::GzDecoder::new(archive),
        inflated: &inflated,
        limit,
    };
    let read = read_stream(stream, limits, limit);
    // A read past the limit fails, whoever asked for it (the tar crate
    // reading a header, or this module a record): that is the real reason.
    if inflated.get() > limit {
        return Err(too_much(limit, limits));
    }
    read
}

/// Refuses `expanded` bytes when over `limit`: the ratio's error when the
/// ratio set the limit, the size cap's otherwise.
fn check_expansion(expanded: u64, limit: u64, limits: &Limits) -> Result<(), PackageError> {
    if expanded <= limit {
        Ok(())
    } else {
        Err(too_much(limit, limits))
    }
}

fn too_much(limit: u64, limits: &Limits) -> PackageError {
    if limit < limits.expanded_bytes {
        PackageError::ExpansionRatio { limit: limits.ratio }
    } else {
        PackageError::ExpandsTooMuch {
            limit: limits.expanded_bytes,
        }
    }
}

/// The decompressed stream, counted: nothing past `limit + 1` bytes is ever
/// inflated, and reading past `limit` fails.
struct Counted<'a, R> {
    inner: R,
    inflated: &'a Cell<u64>,
    limit: u64,
}

impl<R: Read> Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let room = self.limit.saturating_add(1).saturating_sub(self.inflated.get());
        let want = buf.len().min(usize::try_from(room).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        self.inflated.set(self.inflated.get() + n as u64);
        if self.inflated.get() > self.limit {
            return Err(io::Error::other("the archive expands past its limit"));
        }
        Ok(n)
    }
}

fn read_stream(stream: impl Read, limits: &Limits, limit: u64) -> Result<BTreeMap<String, Vec<u8>>, PackageError> {
    let mut tar = tar::Archive::new(stream);
    let mut files = BTreeMap::new();
    let mut entries = 0;
    let mut declared: u64 = 0;
    let mut pending = Extensions::default();
    for entry in tar.entries().map_err(unreadable)?.raw(true) {
        let mut entry = entry.map_err(unreadable)?;
        let kind = entry.header().entry_type();
        // The size the data takes in the archive, as the header declares it.
        let size = entry.size();
        if let Some(what) = extension(kind) {
            if size > HEADER_RECORD_BYTES {
                return Err(PackageError::HeaderTooLarge {
                    what,
                    size,
                    limit: HEADER_RECORD_BYTES,
                });
            }
            let record = read_data(&mut entry, size)?;
            pending.add(kind, record)?;
            continue;
        }
        let extensions = std::mem::take(&mut pending);
        let path = {
            let header_path = entry.header().path_bytes();
            accept(kind, size, extensions.path(&header_path)?, extensions.pax_size)?
        };
        let folder = kind.is_dir();
        entries += 1;
        if entries > limits.files {
            return Err(PackageError::TooManyFiles { limit: limits.files });
        }
        if folder {
            continue;
        }
        declared = declared.saturating_add(size);
        check_expansion(declared, limit, limits)?;
        let bytes = read_data(&mut entry, size)?;
        if is_archive(&path, &bytes) {
            return Err(PackageError::NestedArchive {
                path: path.as_str().into(),
            });
        }
        if files.contains_key(&path) {
            return Err(PackageError::Duplicate {
                path: path.as_str().into(),
            });
        }
        files.insert(path, bytes);
    }
    if !pending.is_empty() {
        return Err(unreadable(
            "it ends with a long name or PAX header that describes no file",
        ));
    }
    Ok(files)
}

/// The checked path of a file or folder of `size` bytes named `raw_path`;
/// an error for anything else, or a folder holding data.
fn accept(kind: tar::EntryType, size: u64, raw_path: &[u8], pax_size: Option<u64>) -> Result<String, PackageError> {
    if pax_size.is_some_and(|s| s != size) {
        // Quoted once, by `unreadable`, last so clipping cuts only the path.
        let head = &raw_path[..raw_path.len().min(4 * Quoted::CHARS)];
        return Err(unreadable(format_args!(
            "a PAX size differs from its header's, so readers would disagree on where the file ends: `{}`",
            String::from_utf8_lossy(head)
        )));
    }
    if kind.is_symlink() || kind.is_hard_link() {
        return Err(PackageError::Link { path: raw_path.into() });
    }
    if kind.is_dir() {
        if size > 0 {
            return Err(PackageError::FolderWithData {
                path: raw_path.into(),
                size,
            });
        }
        return safe_path(raw_path.strip_suffix(b"/").unwrap_or(raw_path));
    }
    if !kind.is_file() {
        return Err(PackageError::SpecialFile { path: raw_path.into() });
    }
    safe_path(raw_path)
}

/// What an extension record is, for errors; `None` for a file or folder.
fn extension(kind: tar::EntryType) -> Option<&'static str> {
    if kind.is_gnu_longname() {
        Some("GNU long name")
    } else if kind.is_gnu_longlink() {
        Some("GNU long link name")
    } else if kind.is_pax_local_extensions() {
        Some("PAX extended header")
    } else if kind.is_pax_global_extensions() {
        Some("PAX global header")
    } else {
        None
    }
}

/// Exactly `size` bytes of an entry's data; the caller has bounded `size`.
fn read_data(entry: &mut impl Read, size: u64) -> Result<Vec<u8>, PackageError> {
    let mut bytes = Vec::with_capacity(size.min(1 << 20) as usize);
    entry.take(size).read_to_end(&mut bytes).map_err(unreadable)?;
    if bytes.len() as u64 != size {
        return Err(unreadable("it ends inside an entry"));
    }
    Ok(bytes)
}

/// The extension records read for the next file or folder.
#[derive(Default)]
struct Extensions {
    long_name: Option<Vec<u8>>,
    long_link: bool,
    pax: bool,
    pax_path: Option<Vec<u8>>,
    pax_size: Option<u64>,
}

impl Extensions {
    fn is_empty(&self) -> bool {
        self.long_name.is_none() && !self.long_link && !self.pax
    }

    fn add(&mut self, kind: tar::EntryType, mut record: Vec<u8>) -> Result<(), PackageError> {
        let twice = || unreadable("two records of one kind describe the same file");
        if kind.is_gnu_longname() {
            if self.long_name.is_some() {
                return Err(twice());
            }
            // GNU tar ends the name with a NUL; any other is refused with the path.
            if record.last() == Some(&0) {
                record.pop();
            }
            self.long_name = Some(record);
        } else if kind.is_gnu_longlink() {
            // Only links have link names, and links are refused.
            if self.long_link {
                return Err(twice());
            }
            self.long_link = true;
        } else if kind.is_pax_local_extensions() {
            if self.pax {
                return Err(twice());
            }
            self.pax = true;
            for (key, value) in pax_records(&record)? {
                match key {
                    b"path" => self.pax_path = Some(value.to_vec()),
                    b"size" => self.pax_size = Some(pax_number(value)?),
                    _ => {}
                }
            }
        } else {
            // A global header applies to every file after it: `path` or
            // `size` there would give them all one name or one size.
            if pax_records(&record)?
                .iter()
                .any(|(key, _)| *key == b"path" || *key == b"size")
            {
                return Err(unreadable(
                    "a PAX global header sets `path` or `size` for every file after it",
                ));
            }
        }
        Ok(())
    }

    /// The path of the file these records describe, whose header holds
    /// `header_path`.
    fn path<'a>(&'a self, header_path: &'a [u8]) -> Result<&'a [u8], PackageError> {
        match (&self.long_name, &self.pax_path) {
            (Some(_), Some(_)) => Err(unreadable(
                "a file has both a GNU long name and a PAX path; readers would disagree on its name",
            )),
            (Some(name), None) | (None, Some(name)) => Ok(name),
            (None, None) => Ok(header_path),
        }
    }
}

/// A PAX record's key and value.
type PaxRecord<'a> = (&'a [u8], &'a [u8]);

/// The `LENGTH KEY=VALUE\n` records of a PAX extended header.
fn pax_records(mut bytes: &[u8]) -> Result<Vec<PaxRecord<'_>>, PackageError> {
    let malformed = || unreadable("a PAX extended header is not `LENGTH KEY=VALUE` records");
    let mut records = Vec::new();
    while !bytes.is_empty() {
        let space = bytes.iter().position(|b| *b == b' ').ok_or_else(malformed)?;
        let length = pax_number(&bytes[..space]).map_err(|_| malformed())?;
        let length = usize::try_from(length).map_err(|_| malformed())?;
        if length <= space + 1 || length > bytes.len() || bytes[length - 1] != b'\n' {
            return Err(malformed());
        }
        let record = &bytes[space + 1..length - 1];
        let equals = record.iter().position(|b| *b == b'=').ok_or_else(malformed)?;
        records.push((&record[..equals], &record[equals + 1..]));
        bytes = &bytes[length..];
    }
    Ok(records)
}

fn pax_number(digits: &[u8]) -> Result<u64, PackageError> {
    std::str::from_utf8(digits)
        .ok()
        .filter(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|d| d.parse().ok())
        .ok_or_else(|| unreadable("a PAX number is not decimal digits"))
}

fn unreadable(problem: impl std::fmt::Display) -> PackageError {
    PackageError::Unreadable(Quoted::clipped(&problem.to_string(), 300).to_string())
}

/// A relative path of portable names, `/`-separated, within the
/// [`PATH_BYTES`], [`PATH_PARTS`] and [`PART_BYTES`] limits; a leading `./`
/// is dropped.
pub(super) fn safe_path(raw: &[u8]) -> Result<String, PackageError> {
    let unsafe_path = |why| PackageError::UnsafePath { path: raw.into(), why };
    let path = std::str::from_utf8(raw).map_err(|_| unsafe_path("it is not UTF-8"))?;
    let path = path.strip_prefix("./").unwrap_or(path);
    if path.is_empty() {
        return Err(unsafe_path("it is empty"));
    }
    if path.len() > PATH_BYTES {
        return Err(unsafe_path("it is longer than 255 bytes"));
    }
    if path.starts_with('/') {
        return Err(unsafe_path("it is absolute"));
    }
    for c in path.chars() {
        let why = match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '.' | '_' | '-' | '/' => continue,
            c if c.is_control() => "it holds a control character",
            c if Quoted::is_bidi(c) => "it holds a Unicode direction mark, which can make a name read as another",
            '\\' => "it holds a backslash",
            ':' => "it holds `:`, which names a Windows drive or stream",
            _ => "it holds a character that is not portable",
        };
        return Err(unsafe_path(why));
    }
    let parts: Vec<&str> = path.split('/').collect();
    if parts.len() > PATH_PARTS {
        return Err(unsafe_path("it has more than 8 parts"));
    }
    for part in parts {
        match part {
            "" => return Err(unsafe_path("it has an empty part")),
            "." | ".." => return Err(unsafe_path("it climbs out of the package")),
            part if part.len() > PART_BYTES => return Err(unsafe_path("a part of it is longer than 100 bytes")),
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
