//! A copy of /proc/kallsyms kept between runs.
//!
//! The kernel formats /proc/kallsyms anew on every read: ~120 000 lines,
//! about 35 ms of CPU, which was a third of the fixed cost of a recording.
//! The text only changes with a reboot (KASLR) or when modules are loaded or
//! unloaded, so a copy is kept under CACHE_DIR, named by a hash of the boot
//! ID and /proc/modules (which lists each module's load address), and
//! blazesym reads that instead. The copy holds real kernel addresses: the
//! directory is root's alone (0700) and the file 0600, written to a temporary
//! name and renamed, never through a symlink.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

const CACHE_DIR: &str = "/var/cache/pystrobe/kallsyms";

/// The path of an up-to-date copy of /proc/kallsyms, made if missing; None
/// when no copy can be used (not root, an unsafe directory, a full disk):
/// the caller then reads /proc/kallsyms itself.
pub fn cached_kallsyms() -> Option<PathBuf> {
    cached_in(Path::new(CACHE_DIR))
}

fn cached_in(dir: &Path) -> Option<PathBuf> {
    let key = cache_key()?;
    if !safe_dir(dir) {
        return None;
    }
    let path = dir.join(format!("kallsyms-{key:016x}"));
    if let Ok(meta) = fs::symlink_metadata(&path) {
        if meta.is_file() && meta.uid() == 0 && meta.mode() & 0o022 == 0 {
            return Some(path);
        }
        return None;
    }
    let text = fs::read(Path::new("/proc/kallsyms")).ok()?;
    // All addresses zero: not allowed to see them (kptr_restrict), nothing to cache.
    if text.starts_with(b"0000000000000000 ") {
        return None;
    }
    let tmp = dir.join(format!("kallsyms-{key:016x}.{}.tmp", std::process::id()));
    let written = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&tmp)
        .and_then(|mut f: File| f.write_all(&text))
        .and_then(|()| fs::rename(&tmp, &path));
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
        return None;
    }
    remove_stale(dir, &path);
    Some(path)
}

/// Boot ID and module list: what changes the kernel's symbol addresses.
fn cache_key() -> Option<u64> {
    let boot = fs::read("/proc/sys/kernel/random/boot_id").ok()?;
    let modules = fs::read("/proc/modules").unwrap_or_default();
    let mut h = DefaultHasher::new();
    boot.hash(&mut h);
    modules.hash(&mut h);
    Some(h.finish())
}

/// The cache directory exists (made if missing), is a real directory owned
/// by root and writable by nobody else.
fn safe_dir(dir: &Path) -> bool {
    if fs::symlink_metadata(dir).is_err() {
        let _ = DirBuilder::new().recursive(true).mode(0o700).create(dir);
    }
    fs::symlink_metadata(dir).is_ok_and(|m| m.is_dir() && m.uid() == 0 && m.mode() & 0o077 == 0)
}

/// Copies for earlier boots or module sets.
fn remove_stale(dir: &Path, keep: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        let name = e.file_name();
        if p != keep && name.to_string_lossy().starts_with("kallsyms-") {
            let _ = fs::remove_file(p);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Kernel addresses need root; under CI=true (as root) a skip is a failure.
    fn root() -> bool {
        let root = unsafe { libc::geteuid() } == 0;
        assert!(
            root || std::env::var("CI").as_deref() != Ok("true"),
            "CI must run as root"
        );
        if !root {
            eprintln!("skipped: needs root to read kernel addresses");
        }
        root
    }

    #[test]
    fn copies_kallsyms_once_and_reuses_it() {
        if !root() {
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("cache");
        let first = cached_in(&dir).expect("a copy");
        assert_eq!(fs::metadata(&dir).unwrap().mode() & 0o777, 0o700);
        assert_eq!(fs::metadata(&first).unwrap().mode() & 0o777, 0o600);
        let text = fs::read_to_string(&first).unwrap();
        assert!(
            text.lines()
                .any(|l| l.ends_with(" T _text") || l.contains(" T "))
        );
        let again = cached_in(&dir).expect("the same copy");
        assert_eq!(first, again);
        // A stale copy is removed when a new one is made.
        fs::remove_file(&first).unwrap();
        fs::write(dir.join("kallsyms-0000000000000000"), "old").unwrap();
        let third = cached_in(&dir).unwrap();
        assert!(!dir.join("kallsyms-0000000000000000").exists());
        assert_eq!(third, first);
    }

    #[test]
    fn refuses_a_directory_others_can_write() {
        if !root() {
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("open");
        fs::create_dir(&dir).unwrap();
        fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
        assert!(cached_in(&dir).is_none());
    }
}
