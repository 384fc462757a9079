//! On-disk cache of precompiled plugins.
//!
//! Deserializing a precompiled artifact is `unsafe` in wasmtime: a crafted file is native code.
//! So the cache only ever reads files this process's user wrote, from a directory that user
//! owns and nobody else can write to. Plugins from ConfigMaps arrive as `.wasm` and are compiled
//! here; a `.cwasm` from anywhere else is never loaded.

use std::fs;
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

use super::Error;

/// A private directory of `<sha256>-<engine hash>.cwasm` files.
#[derive(Debug)]
pub struct ArtifactCache {
    dir: PathBuf,
    engine_hash: String,
}

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

impl ArtifactCache {
    /// Opens (creating if needed, mode 0700) the cache directory and checks it is private.
    ///
    /// A directory someone else made for us is fine too: the kubelet creates an `emptyDir`
    /// owned by root with mode 0777, whatever the pod's user. Then the cache lives in a
    /// subdirectory `uid-<uid>` this process creates and owns. Either way every artifact is also
    /// checked on the open file before it is loaded (see `try_load`), so a directory swapped
    /// under us can at worst cost a recompile.
    pub fn open(dir: &Path, engine: &Engine) -> Result<Self, Error> {
        let host = |path: &Path, what: &str, e: &dyn std::fmt::Display| Error::Host {
            message: format!("plugin cache {}: {what}: {e}", path.display()),
        };
        let private_dir = |path: &Path, recursive: bool| -> Result<(), Error> {
            match fs::DirBuilder::new()
                .recursive(recursive)
                .mode(0o700)
                .create(path)
            {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(host(path, "cannot create", &e)),
            }
            let meta = fs::symlink_metadata(path).map_err(|e| host(path, "cannot stat", &e))?;
            check_private(
                meta.is_dir(),
                meta.uid(),
                meta.permissions().mode(),
                current_uid(),
            )
            .map_err(|why| host(path, "refusing to use", &why))
        };
        let dir = match private_dir(dir, true) {
            Ok(()) => dir.to_owned(),
            Err(refused) => {
                let meta = fs::symlink_metadata(dir).map_err(|e| host(dir, "cannot stat", &e))?;
                if !meta.is_dir() {
                    return Err(refused);
                }
                let own = dir.join(format!("uid-{}", current_uid()));
                private_dir(&own, false)?;
                own
            }
        };
        Ok(ArtifactCache {
            dir,
            engine_hash: engine_hash(engine),
        })
    }

    /// The directory artifacts are kept in (the one given, or the private subdirectory).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the artifact for this plugin digest lives, for this engine configuration.
    pub fn path_for(&self, sha256: &str) -> PathBuf {
        self.dir
            .join(format!("{sha256}-{}.cwasm", self.engine_hash))
    }

    /// Loads the component from the cache, or compiles it and stores the artifact.
    /// Returns the component and whether it came from the cache.
    pub fn load_or_compile(
        &self,
        engine: &Engine,
        sha256: &str,
        wasm: &[u8],
    ) -> Result<(Component, bool), Error> {
        let path = self.path_for(sha256);
        if let Some(component) = self.try_load(engine, &path) {
            return Ok((component, true));
        }
        let artifact = engine
            .precompile_component(wasm)
            .map_err(|e| Error::InvalidModule {
                message: format!("{e:#}"),
            })?;
        if let Err(e) = self.write_atomically(&path, &artifact) {
            // A read-only or full disk costs a recompile next start, nothing else.
            eprintln!("warning: cannot write plugin cache {}: {e}", path.display());
        }
        // SAFETY: `artifact` was produced just now by this engine.
        let component =
            unsafe { Component::deserialize(engine, &artifact) }.map_err(|e| Error::Host {
                message: format!("cannot load a freshly compiled plugin: {e:#}"),
            })?;
        Ok((component, false))
    }

    fn try_load(&self, engine: &Engine, path: &Path) -> Option<Component> {
        // Checked and read through one file descriptor, never by path twice: what is checked is
        // what is loaded, even if the directory entry changes in between.
        let mut file = fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)
            .ok()?;
        let meta = file.metadata().ok()?;
        let ours =
            meta.is_file() && meta.uid() == current_uid() && meta.permissions().mode() & 0o022 == 0;
        if !ours {
            return None;
        }
        let mut bytes = Vec::with_capacity(meta.len() as usize);
        std::io::Read::read_to_end(&mut file, &mut bytes).ok()?;
        // SAFETY: the bytes come from a regular file owned by this user and writable by no one
        // else, and only `write_atomically` below writes such files (renamed into place, never
        // modified). A file from another wasmtime version or configuration is rejected by
        // wasmtime with an error, not loaded.
        match unsafe { Component::deserialize(engine, &bytes) } {
            Ok(component) => Some(component),
            Err(_) => {
                let _ = fs::remove_file(path);
                None
            }
        }
    }

    fn write_atomically(&self, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
        let tmp = self.dir.join(format!(
            ".{}.{}.{}.tmp",
            path.file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("artifact"),
            std::process::id(),
            TMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let result = (|| {
            let mut file = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)?;
            file.write_all(bytes)?;
            file.sync_all()?;
            fs::rename(&tmp, path)
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }
}

/// Sha256 of a plugin's bytes, lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// A short stable digest of everything that makes an artifact loadable by this engine
/// (wasmtime version, Config flags, Cargo features).
fn engine_hash(engine: &Engine) -> String {
    struct ShaHasher(Sha256);
    impl Hasher for ShaHasher {
        fn finish(&self) -> u64 {
            unreachable!("only the full digest is used")
        }
        fn write(&mut self, bytes: &[u8]) {
            self.0.update(bytes);
        }
    }
    let mut hasher = ShaHasher(Sha256::new());
    engine.precompile_compatibility_hash().hash(&mut hasher);
    hex(&hasher.0.finalize()[..8])
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn current_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// The directory rule, kept pure for testing: a real directory, owned by us, writable by no one else.
fn check_private(is_dir: bool, owner: u32, mode: u32, uid: u32) -> Result<(), String> {
    if !is_dir {
        return Err("not a directory (symlinks are not followed)".into());
    }
    if owner != uid {
        return Err(format!(
            "owned by uid {owner}, not by this process (uid {uid})"
        ));
    }
    if mode & 0o022 != 0 {
        return Err(format!(
            "writable by group or others (mode {:o})",
            mode & 0o777
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_dir_must_be_owned_and_not_writable_by_others() {
        assert!(check_private(true, 1000, 0o700, 1000).is_ok());
        assert!(check_private(true, 1000, 0o755, 1000).is_ok());
        assert!(check_private(false, 1000, 0o700, 1000).is_err());
        assert!(check_private(true, 0, 0o700, 1000).is_err());
        assert!(check_private(true, 1000, 0o770, 1000).is_err());
        assert!(check_private(true, 1000, 0o777, 1000).is_err());
    }

    #[test]
    fn a_shared_directory_gets_a_private_subdirectory_of_ours() {
        // What the kubelet gives an emptyDir: world-writable, not ours (here: ours but 0777,
        // which the rule refuses the same way).
        let shared =
            std::env::temp_dir().join(format!("opstack-cache-shared-{}", std::process::id()));
        fs::create_dir_all(&shared).unwrap();
        fs::set_permissions(&shared, fs::Permissions::from_mode(0o777)).unwrap();
        let engine = Engine::default();
        let cache = ArtifactCache::open(&shared, &engine).unwrap();
        assert_eq!(cache.dir(), shared.join(format!("uid-{}", current_uid())));
        let meta = fs::symlink_metadata(cache.dir()).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o700);
        // Opening again reuses it.
        assert_eq!(
            ArtifactCache::open(&shared, &engine).unwrap().dir(),
            cache.dir()
        );
        fs::remove_dir_all(&shared).unwrap();
    }

    #[test]
    fn a_private_directory_is_used_as_it_is() {
        let private =
            std::env::temp_dir().join(format!("opstack-cache-private-{}", std::process::id()));
        let engine = Engine::default();
        let cache = ArtifactCache::open(&private, &engine).unwrap();
        assert_eq!(cache.dir(), private);
        fs::remove_dir_all(&private).unwrap();
    }

    #[test]
    fn sha256_is_lowercase_hex() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
