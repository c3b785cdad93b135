//! Every problem of a policy file at once, each at its `line:column`: what `config check` and
//! the `hotfix-lane/policy` check show the person who edits the file.
//!
//! serde stops at the first bad key, so a file that does not deserialize is read again key by
//! key: each key of each section is deserialized on its own (spans are kept, so each error
//! points into the original text), and what is left valid is checked for the semantic rules
//! too. A TOML syntax error stops everything: nothing after it can be read reliably.

use std::ops::Range;

use toml_edit::{DocumentMut, ImDocument, Item, Key, Table};

use super::{line_column, Policy, PolicyError};

/// The sections of the file, as `Policy` names its fields.
pub(super) const SECTIONS: [&str; 7] = ["lane", "responders", "postmortem", "backport", "merge", "approval", "metrics"];

/// A value that deserializes but breaks a rule: where it is, and what to do about it.
pub(super) struct Problem {
    pub section: &'static str,
    pub key: &'static str,
    /// The entry of an array value, when one entry is at fault.
    pub entry: Option<usize>,
    pub message: String,
}

/// Every problem of a file that did not deserialize (`first` is serde's first error).
pub(super) fn errors(text: &str, first: toml::de::Error, forge: crate::lane::event::Forge) -> Vec<PolicyError> {
    let first_error = || error(text, first.span(), first.message());
    let Ok(doc) = ImDocument::parse(text) else { return vec![first_error()] };
    let mut errors = Vec::new();
    let mut valid = Table::new();
    for (name, item) in doc.as_table().iter() {
        let Some(key) = doc.as_table().key(name) else { continue };
        match item.as_table_like().filter(|_| SECTIONS.contains(&name)) {
            Some(section) => {
                for (field, _) in section.iter() {
                    let Some((field_key, value)) = section.get_key_value(field) else { continue };
                    let mut one = Table::new();
                    one.insert_formatted(field_key, value.clone());
                    match deserialize(key, Item::Table(one)) {
                        Ok(_) => {
                            let into = valid.entry_format(key).or_insert_with(|| Item::Table(Table::new()));
                            if let Some(table) = into.as_table_like_mut() {
                                table.insert(field, value.clone());
                            }
                        }
                        Err(err) => errors.push(error(text, err.span(), err.message())),
                    }
                }
            }
            None => {
                if let Err(err) = deserialize(key, item.clone()) {
                    errors.push(error(text, err.span(), err.message()));
                }
            }
        }
    }
    // What is valid on its own may still break a rule.
    if let Ok(policy) = toml_edit::de::from_document::<Policy>(DocumentMut::from(valid)) {
        errors.extend(locate(text, policy.problems(forge)));
    }
    if errors.is_empty() {
        errors.push(first_error());
    }
    sort(&mut errors);
    errors
}

/// The problems of a file that deserialized, each at the value it is about.
pub(super) fn locate(text: &str, problems: Vec<Problem>) -> Vec<PolicyError> {
    let doc = ImDocument::parse(text).ok();
    let mut errors: Vec<PolicyError> = problems
        .into_iter()
        .map(|p| {
            let span = doc.as_ref().and_then(|doc| span_of(doc, &p));
            PolicyError { location: span.map(|s| line_column(text, s.start)), message: p.message }
        })
        .collect();
    sort(&mut errors);
    errors
}

/// In the order of the file; anything without a place last.
fn sort(errors: &mut [PolicyError]) {
    errors.sort_by_key(|e| e.location.unwrap_or((usize::MAX, usize::MAX)));
}

fn span_of(doc: &ImDocument<&str>, p: &Problem) -> Option<Range<usize>> {
    let section = doc.as_table().get(p.section)?.as_table_like()?;
    let (key, item) = section.get_key_value(p.key)?;
    let entry = p.entry.and_then(|i| {
        item.as_array()
            .and_then(|a| a.get(i))
            .and_then(|v| v.span())
            .or_else(|| item.as_array_of_tables()?.get(i)?.span())
    });
    entry.or_else(|| item.span()).or_else(|| key.span())
}

/// A policy holding only `section = item`, deserialized as the whole file would be.
fn deserialize(section: &Key, item: Item) -> Result<Policy, toml_edit::de::Error> {
    let mut root = Table::new();
    root.insert_formatted(section, item);
    toml_edit::de::from_document::<Policy>(DocumentMut::from(root))
}

fn error(text: &str, span: Option<Range<usize>>, message: &str) -> PolicyError {
    PolicyError { location: span.map(|s| line_column(text, s.start)), message: message.trim().to_string() }
}
