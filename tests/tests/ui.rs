//! What a user reads when a template or a package manifest is refused, as
//! snapshot files (see `robohost_tests::ui`): each `tests/ui/KIND/NAME.toml`
//! goes through the real parser and checker, and its message must equal
//! `NAME.err`. `ROBOHOST_BLESS=1` writes the messages instead.

use robohost::package::{Limits, MANIFEST};
use robohost_tests::db::Db;
use robohost_tests::fixtures::{standard_portal, trust};
use robohost_tests::ui::{check_folder, folder};

/// Each template installed into one portal that has the standard robots
/// and nothing else: refused, with every problem and its place.
async fn templates(db: Db) {
    let engine = standard_portal(db).await;
    check_folder(&folder("templates"), "toml", async |name, text| {
        let text = std::str::from_utf8(text).unwrap_or_else(|e| panic!("{name}: {e}"));
        match engine.install_template(text).await {
            Ok(report) => format!("installed, not refused: {report:?}"),
            Err(refused) => refused.to_string(),
        }
    })
    .await;
}

robohost_tests::on_both!(templates);

/// Each manifest, byte for byte, as the only file of a package opened as
/// an upload is: its fields are checked before the files it lists.
#[tokio::test]
async fn manifests() {
    check_folder(
        &folder("manifests"),
        "toml",
        async |_, manifest| match robohost::package::open(&only_file(MANIFEST, manifest), &Limits::default(), &trust())
        {
            Ok(package) => format!("opened, not refused: {:?}", package.manifest),
            Err(refused) => refused.to_string(),
        },
    )
    .await;
}

/// A gzip-compressed tar holding one file.
fn only_file(path: &str, bytes: &[u8]) -> Vec<u8> {
    let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast()));
    let mut header = tar::Header::new_gnu();
    header.set_size(bytes.len() as u64);
    header.set_mode(0o644);
    tar.append_data(&mut header, path, bytes).unwrap();
    tar.into_inner().unwrap().finish().unwrap()
}
