//! The package format's unit tests. Over 600 lines because each malformed
//! archive, manifest and signature is a case of its own, written out so a
//! reader sees what is refused and with which message.

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
    let error = parse_manifest(huge.as_bytes()).expect_err("refused").to_string();
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
