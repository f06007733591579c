//! Which language and tools built a component, for `cutover inspect`.
//!
//! Compilers and component tools record themselves in `producers` custom sections (one per core module
//! and per component layer): `language` (Rust, C11, …), `processed-by` (rustc, clang, wit-component,
//! wit-bindgen, componentize-py, …) and `sdk`. The Python and JavaScript componentizers embed a whole
//! interpreter (CPython, StarlingMonkey) whose own sections say C or C++, so their names anywhere in the
//! component decide first. Reading is best effort: a component without the sections is "unknown".

use serde::Serialize;
use wasmparser::{KnownCustom, Parser, Payload};

/// What built a component, as far as it says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Toolchain {
    /// The source language, e.g. `Rust`, `Python`, `JavaScript`, or `unknown`.
    pub language: String,
    /// Every (tool, version) the producers sections name, in order of appearance, without repeats.
    pub tools: Vec<(String, String)>,
    /// Every language the producers sections name (a Rust strategy also lists C11, from wasi-libc).
    pub languages: Vec<String>,
}

impl Toolchain {
    /// One line for humans: `Rust (rustc 1.95.0, wit-component 0.245.1)`.
    pub fn summary(&self) -> String {
        let tools: Vec<String> = self
            .tools
            .iter()
            .filter(|(name, _)| !name.starts_with("clang"))
            .map(|(name, version)| {
                // rustc's version carries its commit and date: the number is what a reader wants.
                let short = version.split_whitespace().next().unwrap_or(version);
                if short.is_empty() { name.clone() } else { format!("{name} {short}") }
            })
            .collect();
        if tools.is_empty() {
            self.language.clone()
        } else {
            format!("{} ({})", self.language, tools.join(", "))
        }
    }
}

/// Read the producers sections of `bytes` (a component or a module; anything else is "unknown").
pub fn detect(bytes: &[u8]) -> Toolchain {
    let mut tools: Vec<(String, String)> = Vec::new();
    let mut languages: Vec<String> = Vec::new();
    for payload in Parser::new(0).parse_all(bytes) {
        // A malformed section ends the reading, not the inspection: loading has its own checks.
        let Ok(Payload::CustomSection(section)) = payload else {
            continue;
        };
        let KnownCustom::Producers(reader) = section.as_known() else { continue };
        for field in reader.into_iter().flatten() {
            let into = match field.name {
                "language" => None,
                "processed-by" | "sdk" => Some(()),
                _ => continue,
            };
            for value in field.values.into_iter().flatten() {
                match into {
                    None => push(&mut languages, value.name.to_string()),
                    Some(()) => push(&mut tools, (value.name.to_string(), value.version.to_string())),
                }
            }
        }
    }
    let language = language_of(bytes, &tools, &languages);
    Toolchain { language, tools, languages }
}

fn push<T: PartialEq>(list: &mut Vec<T>, item: T) {
    if !list.contains(&item) {
        list.push(item);
    }
}

/// The source language: a componentizer's name first (its interpreter is C), then a language other than
/// C (which wasi-libc adds to every component), then the compiler's.
fn language_of(bytes: &[u8], tools: &[(String, String)], languages: &[String]) -> String {
    let named = |needle: &str| {
        tools.iter().any(|(t, _)| t.to_ascii_lowercase().contains(needle))
            || contains(bytes, needle.as_bytes())
    };
    if named("componentize-py") {
        return "Python".into();
    }
    if named("componentize-js") || named("starlingmonkey") || contains(bytes, b"ComponentizeJS") {
        return "JavaScript".into();
    }
    if let Some(l) = languages.iter().find(|l| !l.starts_with('C')) {
        return l.clone();
    }
    if tools.iter().any(|(t, _)| t == "rustc" || t.starts_with("wit-bindgen-rust")) {
        return "Rust".into();
    }
    if tools.iter().any(|(t, _)| t == "TinyGo" || t == "tinygo") {
        return "Go".into();
    }
    languages.first().cloned().unwrap_or_else(|| "unknown".into())
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_component_without_producers_is_unknown() {
        // `(component)`: the header of an empty component.
        let t = detect(b"\0asm\x0d\0\x01\0");
        assert_eq!(t.language, "unknown");
        assert!(t.tools.is_empty());
    }

    #[test]
    fn garbage_is_unknown_not_a_panic() {
        assert_eq!(detect(b"not wasm at all").language, "unknown");
        assert_eq!(detect(b"\0asm\x0d\0\x01\0\x00\xff").language, "unknown");
    }

    #[test]
    fn summary_shortens_versions_and_drops_clang() {
        let t = Toolchain {
            language: "Rust".into(),
            tools: vec![
                ("rustc".into(), "1.95.0 (59807616e 2026-04-14)".into()),
                ("clang".into(), "21.1.4".into()),
                ("wit-component".into(), "0.245.1".into()),
            ],
            languages: vec!["Rust".into(), "C11".into()],
        };
        assert_eq!(t.summary(), "Rust (rustc 1.95.0, wit-component 0.245.1)");
    }
}
