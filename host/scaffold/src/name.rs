//! Project names. A name becomes a cargo package, a Python module and an npm package, so it is held to
//! what all of them accept: kebab-case ASCII.

use super::ScaffoldError;

/// Check that `name` is kebab-case: lower-case letters, digits and single dashes, starting with a
/// letter, at most 64 characters.
pub fn validate(name: &str) -> Result<(), ScaffoldError> {
    let ok = (1..=64).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && !name.ends_with('-')
        && !name.contains("--")
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok { Ok(()) } else { Err(ScaffoldError::BadName(name.to_string())) }
}

/// `name` with dashes as underscores: what cargo names the `.wasm` and Python names the module.
pub fn snake(name: &str) -> String {
    name.replace('-', "_")
}

/// Fill a template file's placeholders: `{{name}}` and `{{name_snake}}`.
pub fn fill(text: &str, name: &str) -> String {
    text.replace("{{name_snake}}", &snake(name)).replace("{{name}}", name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kebab_case_names_pass_and_others_say_why() {
        for good in ["demo", "drain-slowly", "a1", "canary-2x"] {
            assert!(validate(good).is_ok(), "{good}");
        }
        for bad in ["", "Demo", "1demo", "-x", "x-", "a--b", "a_b", "a b", "../x", "é"] {
            let err = validate(bad).unwrap_err().to_string();
            assert!(err.contains("kebab") || err.contains("lower-case"), "{bad}: {err}");
        }
    }

    #[test]
    fn placeholders_are_filled() {
        assert_eq!(fill("{{name}} {{name_snake}}.wasm", "my-strat"), "my-strat my_strat.wasm");
    }
}
