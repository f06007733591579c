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

#[cfg(test)]
mod tests {
    use super::*;

    fn wit_file(path: &str) -> &'static str {
        let (_, bytes) =
            wit().find(|(p, _)| *p == path).unwrap_or_else(|| panic!("wit/{path} is not embedded"));
        std::str::from_utf8(bytes).unwrap()
    }

    /// A project vendors the whole contract tree: 0.1 at `wit/` (what older projects and the 0.1
    /// examples build against) and 0.2 at `wit/v0.2` (what new projects build against).
    #[test]
    fn the_whole_wit_tree_is_embedded_with_both_versions() {
        assert!(wit_file("strategy.wit").contains("package cutover:strategy@0.1.0;"));
        assert!(wit_file("v0.2/strategy.wit").contains("package cutover:strategy@0.2.0;"));
    }

    /// New Python and JavaScript projects build against contract 0.2: their manifests point the
    /// toolchain at `wit/v0.2`, which the project has.
    #[test]
    fn python_and_javascript_templates_build_against_0_2() {
        for (lang, flag) in [("python", "\"-d\", \"wit/v0.2\""), ("js", "\"--wit\", \"wit/v0.2\"")] {
            let (_, manifest) = template(lang)
                .find(|(p, _)| *p == "cutover-strategy.toml")
                .unwrap_or_else(|| panic!("{lang}: no cutover-strategy.toml"));
            let manifest = std::str::from_utf8(manifest).unwrap();
            assert!(manifest.contains(flag), "{lang} builds against wit/v0.2: {manifest}");
        }
    }
}
