//! The on-disk cache of compiled components.
//!
//! Compiling a component with Cranelift takes from tens of milliseconds (a small Rust strategy) to
//! seconds (an 18 MB componentize-py one); loading a precompiled artifact takes well under a
//! millisecond for the former. Artifacts are keyed by the BLAKE3 hash of the component's bytes and the
//! engine's compatibility hash (wasmtime version, target and compiler settings), so a cache written by
//! another build or configuration is never misread; it is simply missed.

use anyhow::Result;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use wasmtime::Engine;
use wasmtime::component::Component;

/// Where a loaded component came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Deserialized from a cached artifact: no compilation happened.
    DiskCache,
    /// Compiled now (and written to the cache, if there is one).
    Compiled,
}

/// A directory of compiled artifacts (or none: always compile).
#[derive(Debug, Clone)]
pub struct ComponentCache {
    dir: Option<PathBuf>,
}

impl ComponentCache {
    /// A cache in `dir` (created on first write).
    pub fn at(dir: impl Into<PathBuf>) -> Self {
        Self { dir: Some(dir.into()) }
    }

    /// No cache: every load compiles.
    pub fn disabled() -> Self {
        Self { dir: None }
    }

    /// `$CUTOVER_CACHE_DIR`, else the user's cache directory (`~/.cache/cutover/components`).
    pub fn default_location() -> Self {
        match std::env::var_os("CUTOVER_CACHE_DIR") {
            Some(dir) => Self::at(dir),
            None => match dirs::cache_dir() {
                Some(base) => Self::at(base.join("cutover").join("components")),
                None => Self::disabled(),
            },
        }
    }

    /// Where compiled components are kept; `None` when the cache is disabled.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// The content hash of a component (BLAKE3), as used in cache keys. BLAKE3 rather than SHA-256
    /// because it is on the warm-start path: hashing an 18 MB componentize-py strategy must not
    /// dominate a load that otherwise takes a few milliseconds.
    pub fn content_hash(bytes: &[u8]) -> [u8; 32] {
        blake3::hash(bytes).into()
    }

    /// Load `bytes` as a component, from the cache when possible; else `compile` them (a cache hit
    /// compiles nothing, so it is held to no compile deadline).
    pub fn load(
        &self,
        engine: &Engine,
        hash: &[u8; 32],
        compile: impl FnOnce() -> Result<Component>,
    ) -> Result<(Component, Origin)> {
        let Some(path) = self.artifact_path(engine, hash) else {
            return Ok((compile()?, Origin::Compiled));
        };
        if path.exists() {
            // SAFETY: the artifact was written by `Component::serialize` of an engine with the same
            // compatibility hash (it is part of the file name), into a directory only this user writes.
            // It is memory-mapped, which is why artifacts are only ever replaced by rename, never
            // rewritten in place: a process still using the old file keeps its inode.
            match unsafe { Component::deserialize_file(engine, &path) } {
                Ok(c) => return Ok((c, Origin::DiskCache)),
                Err(e) => tracing::warn!("ignoring unreadable cached component {}: {e}", path.display()),
            }
        }
        let component = compile()?;
        if let Err(e) = cutover_core::os::write_atomically(&path, &component.serialize()?) {
            tracing::warn!("could not cache compiled component at {}: {e:#}", path.display());
        }
        Ok((component, Origin::Compiled))
    }

    fn artifact_path(&self, engine: &Engine, hash: &[u8; 32]) -> Option<PathBuf> {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut h);
        let engine_key = h.finish();
        Some(self.dir.as_ref()?.join(format!("{}-{engine_key:016x}.cwasm", hex::encode(&hash[..16]))))
    }
}
