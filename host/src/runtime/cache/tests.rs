use super::*;

fn disk(name: &str, max_bytes: u64, max_age_days: u32) -> Disk {
    let root = std::env::temp_dir().join(format!("robohost-sweep-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&root);
    let disk = Disk {
        artifacts: root.join("0123456789abcdef"),
        functions: root.join("functions"),
        staging: root.join("staging"),
        root,
        max_bytes,
        max_age: DAY * max_age_days,
    };
    for dir in [&disk.artifacts, &disk.functions, &disk.staging] {
        fs::create_dir_all(dir).unwrap();
    }
    disk
}

/// Writes `bytes` bytes to `path`, last used `ago` before now.
fn put(path: &Path, bytes: usize, ago: Duration) {
    fs::write(path, vec![7; bytes]).unwrap();
    let file = fs::File::options().write(true).open(path).unwrap();
    file.set_modified(SystemTime::now() - ago).unwrap();
}

fn hex_name(n: u8) -> String {
    hex::encode([n; 32])
}

fn left(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn the_least_recently_used_go_first_until_the_cache_is_under_its_size() {
    let disk = disk("size", 200, 30);
    let hour = Duration::from_secs(3600);
    put(&disk.artifacts.join(format!("{}.cwasm", hex_name(1))), 100, 3 * hour);
    put(&disk.functions.join(hex_name(2)), 100, 2 * hour);
    put(&disk.functions.join(hex_name(3)), 100, hour);
    put(
        &disk.artifacts.join(format!("{}.cwasm", hex_name(4))),
        50,
        Duration::ZERO,
    );
    // Not the cache's: never removed, never counted.
    put(&disk.root.join("notes.txt"), 1000, 400 * DAY);
    put(&disk.functions.join("README"), 1000, 400 * DAY);

    let swept = disk.sweep();
    assert_eq!(
        swept,
        Swept {
            removed_files: 2,
            removed_bytes: 200,
            kept_files: 2,
            kept_bytes: 150
        }
    );
    assert_eq!(left(&disk.functions), [hex_name(3), "README".into()]);
    assert_eq!(left(&disk.artifacts), [format!("{}.cwasm", hex_name(4))]);
    assert!(disk.root.join("notes.txt").exists());
    fs::remove_dir_all(&disk.root).unwrap();
}

#[test]
fn files_unused_for_longer_than_the_age_are_removed_whatever_the_size() {
    let disk = disk("age", u64::MAX, 30);
    put(&disk.functions.join(hex_name(1)), 10, 31 * DAY);
    put(&disk.functions.join(hex_name(2)), 10, 29 * DAY);
    // An older engine's artifacts age out the same way.
    let old_engine = disk.root.join("fedcba9876543210");
    fs::create_dir(&old_engine).unwrap();
    put(&old_engine.join(format!("{}.cwasm", hex_name(3))), 10, 31 * DAY);
    put(&old_engine.join(format!("{}.tmp42", hex_name(4))), 10, 31 * DAY);

    let swept = disk.sweep();
    assert_eq!((swept.removed_files, swept.kept_files), (3, 1));
    assert_eq!(left(&disk.functions), [hex_name(2)]);
    assert!(left(&old_engine).is_empty());
    fs::remove_dir_all(&disk.root).unwrap();
}

#[test]
fn a_staging_folder_is_removed_only_once_its_owner_is_gone() {
    let disk = Arc::new(disk("staging", u64::MAX, 30));
    let live = Staging::create(&disk).unwrap();
    // A crashed process's folder: nobody holds its lock.
    let stale = disk.staging.join("1-0-0");
    fs::create_dir_all(stale.join("functions")).unwrap();
    put(&stale.join("functions").join(hex_name(1)), 10, Duration::ZERO);
    fs::File::create(stale.join("lock")).unwrap();
    let old = SystemTime::now() - 2 * STAGING_GRACE;
    fs::File::open(&stale).unwrap().set_modified(old).unwrap();
    fs::File::open(&live.dir).unwrap().set_modified(old).unwrap();

    disk.sweep();
    assert!(!stale.exists());
    assert!(live.dir.exists(), "a folder whose owner holds its lock stays");
    let dir = live.dir.clone();
    drop(live);
    assert!(!dir.exists(), "dropped uncommitted, a staging folder is deleted");
    fs::remove_dir_all(&disk.root).unwrap();
}

#[test]
fn a_hit_marks_a_function_used() {
    let disk = Arc::new(disk("touch", u64::MAX, 30));
    let staging = Staging::create(&disk).unwrap();
    let cache = FunctionCache::new(staging.functions.clone());
    use wasmtime::CacheStore as _;
    assert!(cache.insert(b"key", b"code".to_vec()));
    assert!(left(&disk.functions).is_empty(), "new functions are staged");
    assert_eq!(cache.get(b"key").as_deref(), Some(&b"code"[..]));
    Staged(Some(Box::new(staging))).commit();
    let shared = disk.functions.join(FunctionCache::name(b"key"));
    let long_ago = SystemTime::now() - 10 * DAY;
    fs::File::options()
        .write(true)
        .open(&shared)
        .unwrap()
        .set_modified(long_ago)
        .unwrap();

    let staging = Staging::create(&disk).unwrap();
    let cache = FunctionCache::new(staging.functions.clone());
    assert_eq!(cache.get(b"key").as_deref(), Some(&b"code"[..]));
    let used = fs::metadata(&shared).unwrap().modified().unwrap();
    assert!(used > long_ago + DAY, "touched on a hit");
    fs::remove_dir_all(&disk.root).unwrap();
}
