//! The files `cutover new` writes, embedded by `build.rs` so the binary works anywhere.

include!(concat!(env!("OUT_DIR"), "/scaffold_files.rs"));

/// The languages this build has a template for, sorted.
pub fn languages() -> Vec<&'static str> {
    let mut langs: Vec<&str> = TEMPLATE_FILES.iter().map(|(lang, _, _)| *lang).collect();
    langs.dedup();
    langs
}

/// A language's template files: (path in the project, contents).
pub fn template(lang: &str) -> impl Iterator<Item = (&'static str, &'static [u8])> + '_ {
    TEMPLATE_FILES.iter().filter(move |(l, _, _)| *l == lang).map(|(_, path, bytes)| (*path, *bytes))
}

/// A language's SDK files: (path in the SDK, contents).
pub fn sdk(lang: &str) -> impl Iterator<Item = (&'static str, &'static [u8])> + '_ {
    SDK_FILES.iter().filter(move |(l, _, _)| *l == lang).map(|(_, path, bytes)| (*path, *bytes))
}

/// The contract's files: (path in wit/, contents).
pub fn wit() -> impl Iterator<Item = (&'static str, &'static [u8])> {
    WIT_FILES.iter().copied()
}
