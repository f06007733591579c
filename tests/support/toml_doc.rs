//! Editing a config as TOML: tests make variants of a fly.toml (or of a simulator scenario) by setting
//! keys, never by replacing text, so an edit cannot miss because a line was reworded or land in the
//! wrong table. Built on `toml_edit`, so what is not changed keeps its comments and order.
//!
//! Tests that mean to write invalid or oddly formatted TOML (`fuzz.rs`, the config error messages in
//! `cli/`) write text instead.

use serde::Serialize;
use std::fmt;
use std::path::{Path, PathBuf};
use toml_edit::{DocumentMut, Item, Table};

/// A TOML document being edited.
#[derive(Debug, Clone)]
pub struct Toml {
    doc: DocumentMut,
}

impl Toml {
    /// The document in `path`.
    pub fn read(path: impl AsRef<Path>) -> Self {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        Self { doc: text.parse().unwrap_or_else(|e| panic!("{}: {e}", path.display())) }
    }

    /// The document `text`.
    pub fn parse(text: &str) -> Self {
        Self { doc: text.parse().unwrap_or_else(|e| panic!("not TOML ({e}):\n{text}")) }
    }

    /// The example app's fly.toml (examples/app), with its simulator scenario made absolute so that a
    /// copy anywhere still finds it.
    pub fn example_app() -> Self {
        let app = super::root().join("examples/app");
        Self::read(app.join("fly.toml")).set("cutover.sim.scenario", app.join("scenarios/happy.toml"))
    }

    /// Set `key` — dotted, from the top (`deploy.strategy`, `cutover.params.steps`) — to `value`: a
    /// string, number, boolean, path, array or map. Missing tables are added; a value already there is
    /// replaced in place, keeping its comment; a new key is indented as the key before it.
    pub fn set(mut self, key: &str, value: impl Serialize) -> Self {
        let mut new = value
            .serialize(toml_edit::ser::ValueSerializer::new())
            .unwrap_or_else(|e| panic!("{key}: not a TOML value: {e}"));
        let (tables, last) = key.rsplit_once('.').map_or((None, key), |(t, l)| (Some(t), l));
        let mut table = self.doc.as_table_mut() as &mut dyn toml_edit::TableLike;
        for name in tables.into_iter().flat_map(|t| t.split('.')) {
            table = table
                .entry(name)
                .or_insert_with(|| Item::Table(Table::new()))
                .as_table_like_mut()
                .unwrap_or_else(|| panic!("{key}: `{name}` is not a table"));
        }
        match table.get_mut(last) {
            Some(Item::Value(old)) => {
                *new.decor_mut() = old.decor().clone();
                *old = new;
            }
            _ => {
                let indent = indent_of_last_key(table);
                table.insert(last, Item::Value(new));
                if let (Some(indent), Some(mut key)) = (indent, table.key_mut(last)) {
                    key.leaf_decor_mut().set_prefix(indent);
                }
            }
        }
        self
    }

    /// Write the document to `path` and return the path.
    pub fn write(&self, path: impl AsRef<Path>) -> PathBuf {
        let path = path.as_ref();
        std::fs::write(path, self.doc.to_string())
            .unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        path.to_path_buf()
    }
}

/// How the last key of `table` holding a value is indented, so a key added after it lines up.
fn indent_of_last_key(table: &dyn toml_edit::TableLike) -> Option<String> {
    let (last, _) = table.iter().filter(|(_, item)| item.is_value()).last()?;
    Some(table.key(last)?.leaf_decor().prefix()?.as_str()?.to_string())
}

impl fmt::Display for Toml {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.doc.fmt(f)
    }
}
