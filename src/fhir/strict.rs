//! A strict reader for FHIR JSON that arrives from outside (issue 11).
//!
//! serde_json's `Value` keeps the last of two equal keys and takes `null`,
//! `{}`, `[]`, `""` and U+0000 as ordinary values; FHIR JSON forbids all of
//! them (R4 json.html: "there SHALL be no duplicate keys", no nulls except
//! to align a primitive array with its `_element`, ele-1: no empty elements;
//! strings hold no U+0000). [`parse`] reads the body into [`Json`], a tree
//! that keeps every key in order (duplicates included), and
//! [`representation`] walks it and names each offending element with a
//! FHIRPath-like expression (`Appointment.participant[0].actor`).
//!
//! It must not: read any FHIR semantics (that is `fhir::notification`),
//! echo a caller's key that is not an element name (see [`segment`]), or
//! recurse deeper than serde_json's own limit (128), which bounds the walk.

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

/// A JSON value with its object keys in order, duplicates kept.
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    /// `null`.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// A number (as serde_json reads it).
    Number(serde_json::Number),
    /// A string.
    String(String),
    /// An array.
    Array(Vec<Json>),
    /// An object: every key as written, in order.
    Object(Vec<(String, Json)>),
}

impl Json {
    /// The first value under `key`, when this is an object.
    pub fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Self::Object(m) => m.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// How many times `key` occurs, when this is an object.
    pub fn count(&self, key: &str) -> usize {
        match self {
            Self::Object(m) => m.iter().filter(|(k, _)| k == key).count(),
            _ => 0,
        }
    }

    /// The string, when this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::String(s) => Some(s),
            _ => None,
        }
    }

    /// The items, when this is an array.
    pub fn as_array(&self) -> Option<&[Json]> {
        match self {
            Self::Array(a) => Some(a),
            _ => None,
        }
    }

    /// The members, when this is an object.
    pub fn as_object(&self) -> Option<&[(String, Json)]> {
        match self {
            Self::Object(m) => Some(m),
            _ => None,
        }
    }
}

struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Json, E> {
        Ok(Json::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Json, E> {
        Ok(Json::Number(v.into()))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Json, E> {
        Ok(Json::Number(v.into()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Json, E> {
        serde_json::Number::from_f64(v)
            .map(Json::Number)
            .ok_or_else(|| E::custom("not a finite number"))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Json, E> {
        Ok(Json::String(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Json, E> {
        Ok(Json::String(v))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Json, D::Error> {
        Json::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
        let mut out = Vec::new();
        while let Some(v) = seq.next_element::<Json>()? {
            out.push(v);
        }
        Ok(Json::Array(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
        let mut out = Vec::new();
        while let Some((k, v)) = map.next_entry::<String, Json>()? {
            out.push((k, v));
        }
        Ok(Json::Object(out))
    }
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(JsonVisitor)
    }
}

/// Where the text stops being JSON (line and column only, never the text).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not JSON (line {line}, column {column})")]
pub struct SyntaxError {
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
}

/// Reads `text` as one JSON value, keeping duplicate keys for [`representation`].
pub fn parse(text: &str) -> Result<Json, SyntaxError> {
    serde_json::from_str::<Json>(text).map_err(|e| SyntaxError {
        line: e.line(),
        column: e.column(),
    })
}

/// What breaks the FHIR JSON representation rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Breach {
    /// A key twice in one object.
    DuplicateKey,
    /// `null` outside the `_element` alignment.
    Null,
    /// `{}`.
    EmptyObject,
    /// `[]`.
    EmptyArray,
    /// `""`.
    EmptyString,
    /// U+0000 in a string or key.
    Nul,
}

impl Breach {
    /// What to tell the sender (fixed text: no caller input).
    pub fn message(self) -> &'static str {
        match self {
            Self::DuplicateKey => {
                "The element occurs twice in one JSON object; FHIR JSON keys are unique."
            }
            Self::Null => {
                "null is not a FHIR value (allowed only to align a primitive array with its _element)."
            }
            Self::EmptyObject => "An empty object is not a FHIR value (ele-1).",
            Self::EmptyArray => "An empty array is not a FHIR value (ele-1).",
            Self::EmptyString => "An empty string is not a FHIR value (ele-1).",
            Self::Nul => "U+0000 is not allowed in FHIR JSON.",
        }
    }
}

/// The path segment for a key: the key when it is an element name (as FHIR
/// writes them: `_`? letter, letters and digits, at most 64), else `*`, so an
/// expression never carries arbitrary caller text.
pub fn segment(key: &str) -> &str {
    let name = key.strip_prefix('_').unwrap_or(key);
    let ok = !name.is_empty()
        && key.len() <= 64
        && name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric());
    if ok { key } else { "*" }
}

/// Every breach of the representation rules under `value`, with its path
/// (`root` names the top, e.g. `Appointment`). At most `limit` are kept.
pub fn representation(value: &Json, root: &str, limit: usize) -> Vec<(String, Breach)> {
    let mut out = Vec::new();
    walk(value, root, &mut out, limit);
    out
}

fn push(out: &mut Vec<(String, Breach)>, limit: usize, path: &str, b: Breach) {
    if out.len() < limit {
        out.push((path.to_string(), b));
    }
}

fn walk(v: &Json, path: &str, out: &mut Vec<(String, Breach)>, limit: usize) {
    if out.len() >= limit {
        return;
    }
    match v {
        Json::Null => push(out, limit, path, Breach::Null),
        Json::Bool(_) | Json::Number(_) => {}
        Json::String(s) if s.is_empty() => push(out, limit, path, Breach::EmptyString),
        Json::String(s) if s.contains('\0') => push(out, limit, path, Breach::Nul),
        Json::String(_) => {}
        Json::Array(a) if a.is_empty() => push(out, limit, path, Breach::EmptyArray),
        Json::Array(a) => {
            for (i, item) in a.iter().enumerate() {
                walk(item, &format!("{path}[{i}]"), out, limit);
            }
        }
        Json::Object(m) if m.is_empty() => push(out, limit, path, Breach::EmptyObject),
        Json::Object(m) => {
            for (i, (k, item)) in m.iter().enumerate() {
                let child = format!("{path}.{}", segment(k));
                if k.is_empty() {
                    push(out, limit, &child, Breach::EmptyString);
                    continue;
                }
                if k.contains('\0') {
                    push(out, limit, &child, Breach::Nul);
                    continue;
                }
                if m.iter().take(i).any(|(earlier, _)| earlier == k) {
                    push(out, limit, &child, Breach::DuplicateKey);
                    continue;
                }
                match (item, aligned(m, k)) {
                    (Json::Array(a), Some(other)) if !a.is_empty() => {
                        for (j, x) in a.iter().enumerate() {
                            let pair_null = other.get(j).is_none_or(|o| *o == Json::Null);
                            if *x == Json::Null && !pair_null {
                                continue; // the value or its extension, aligned (json.html)
                            }
                            walk(x, &format!("{child}[{j}]"), out, limit);
                        }
                    }
                    _ => walk(item, &child, out, limit),
                }
            }
        }
    }
}

/// The array aligned with `key` (`given` ↔ `_given`) when both are arrays of
/// the same length.
fn aligned<'a>(m: &'a [(String, Json)], key: &str) -> Option<&'a [Json]> {
    let other = match key.strip_prefix('_') {
        Some(k) => k.to_string(),
        None => format!("_{key}"),
    };
    let mine = m
        .iter()
        .find(|(k, _)| k == key)
        .and_then(|(_, v)| v.as_array())?;
    let theirs = m
        .iter()
        .find(|(k, _)| *k == other)
        .and_then(|(_, v)| v.as_array())?;
    (mine.len() == theirs.len()).then_some(theirs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str, expect: &[(&str, Breach)]) {
        let v = parse(text).unwrap();
        let got = representation(&v, "R", 20);
        let want: Vec<(String, Breach)> = expect.iter().map(|(p, b)| (p.to_string(), *b)).collect();
        assert_eq!(got, want, "{text}");
    }

    #[test]
    fn duplicate_keys_are_kept_and_named() {
        // serde_json's Value would keep only "b".
        let v = parse(r#"{"s":"a","s":"b"}"#).unwrap();
        assert_eq!(v.count("s"), 2);
        assert_eq!(v.get("s").and_then(Json::as_str), Some("a"));
        check(r#"{"s":"a","s":"b"}"#, &[("R.s", Breach::DuplicateKey)]);
        check(
            r#"{"p":[{"a":{"r":"x","r":"x"}}]}"#,
            &[("R.p[0].a.r", Breach::DuplicateKey)],
        );
        // The same key in two objects is no duplicate.
        check(r#"{"p":[{"r":"x"},{"r":"x"}]}"#, &[]);
    }

    #[test]
    fn null_empty_and_nul_are_refused() {
        check("null", &[("R", Breach::Null)]);
        check("{}", &[("R", Breach::EmptyObject)]);
        check("[]", &[("R", Breach::EmptyArray)]);
        check(r#"{"s":null}"#, &[("R.s", Breach::Null)]);
        check(r#"{"s":""}"#, &[("R.s", Breach::EmptyString)]);
        check(r#"{"s":[]}"#, &[("R.s", Breach::EmptyArray)]);
        check(r#"{"s":{}}"#, &[("R.s", Breach::EmptyObject)]);
        check(r#"{"s":"a\u0000b"}"#, &[("R.s", Breach::Nul)]);
        check(r#"{"s\u0000":"a"}"#, &[("R.*", Breach::Nul)]);
        check(r#"{"s":[1,null]}"#, &[("R.s[1]", Breach::Null)]);
        // Numbers, booleans, zero and whitespace are values.
        check(r#"{"a":0,"b":false,"c":" ","d":-1.5e3}"#, &[]);
    }

    #[test]
    fn null_aligns_a_primitive_array_with_its_extensions() {
        check(r#"{"given":["Ana",null],"_given":[null,{"id":"x"}]}"#, &[]);
        // Both null at one position aligns nothing.
        check(
            r#"{"given":["Ana",null],"_given":[null,null]}"#,
            &[("R.given[1]", Breach::Null), ("R._given[1]", Breach::Null)],
        );
        // Lengths differ: no alignment.
        check(
            r#"{"given":["Ana",null],"_given":[null]}"#,
            &[("R.given[1]", Breach::Null), ("R._given[0]", Breach::Null)],
        );
    }

    #[test]
    fn keys_that_are_not_element_names_are_not_echoed() {
        assert_eq!(segment("status"), "status");
        assert_eq!(segment("_status"), "_status");
        assert_eq!(segment("valueDateTime"), "valueDateTime");
        assert_eq!(segment("Jane Doe has HIV"), "*");
        assert_eq!(segment("a.b"), "*");
        assert_eq!(segment(""), "*");
        assert_eq!(segment(&"a".repeat(65)), "*");
    }

    #[test]
    fn syntax_errors_give_a_position_only() {
        let e = parse("{\"a\":\n tru}").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(parse("{\"a\":1} x").is_err(), "trailing text");
        assert!(parse(&"[".repeat(200)).is_err(), "nesting is bounded");
        assert!(parse("\"\u{0}\"").is_err(), "a raw control character");
    }
}
