//! JSON as dockerd's Go decoder sees it.
//!
//! Go's `encoding/json`, decoding an object into a struct, matches each member to a field by
//! exact name or else case-insensitively (with Unicode simple folding: `ſ` is `s`, `K` (Kelvin)
//! is `k`), and a later member overwrites an earlier one. A policy reading `"Privileged"` while
//! dockerd reads `"privileged"` or a second `"Privileged"` is the classic bypass. So [`parse`]
//! keeps every member in order, and [`Value::validate`] refuses objects where two members
//! resolve to the same field (for struct-typed objects) or repeat a key exactly (for maps);
//! after that, [`Value::field`] finds the one member dockerd will use.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

/// A JSON value with object members kept in document order, duplicates included.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    String(String),
    Array(Vec<Value>),
    Object(Vec<(String, Value)>),
}

/// Why a body cannot be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BodyError {
    /// Not JSON (the message is serde_json's, with line and column).
    Malformed(String),
    /// Two members of one object resolve to the same field: `path` names the object.
    AmbiguousKey { path: String, key: String },
}

impl fmt::Display for BodyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BodyError::Malformed(e) => write!(f, "malformed JSON body: {e}"),
            BodyError::AmbiguousKey { path, key } => write!(
                f,
                "JSON body has the key {key:?} more than once (ignoring case) in {path}"
            ),
        }
    }
}

impl std::error::Error for BodyError {}

/// Deepest nesting of arrays and objects accepted: Docker's bodies need about 8 levels, and
/// every level of a deeply nested body costs memory (serde_json alone stops at 128).
pub const MAX_DEPTH: usize = 32;

/// Parses a body. The empty body is `null`, as dockerd treats it.
pub fn parse(body: &[u8]) -> Result<Value, BodyError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    let malformed = |e: serde_json::Error| BodyError::Malformed(e.to_string());
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = de::DeserializeSeed::deserialize(Seed { depth: 0 }, &mut de).map_err(malformed)?;
    de.end().map_err(malformed)?;
    Ok(value)
}

/// Go's case folding for field names: ASCII case, plus the two non-ASCII characters that
/// fold to ASCII letters (`ſ` U+017F to `s`, `K` U+212A to `k`).
fn fold(c: char) -> char {
    match c {
        '\u{017F}' => 's',
        '\u{212A}' => 'k',
        c => c.to_ascii_lowercase(),
    }
}

/// An object member's key as the duplicate check compares it: exactly (map keys) or folded
/// as Go folds struct field names, without allocating a folded copy.
struct Key<'a> {
    text: &'a str,
    folded: bool,
}

impl std::hash::Hash for Key<'_> {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        if self.folded {
            self.text.chars().map(fold).for_each(|c| c.hash(h));
        } else {
            self.text.hash(h);
        }
    }
}

impl PartialEq for Key<'_> {
    fn eq(&self, other: &Key<'_>) -> bool {
        if self.folded {
            go_field_matches(self.text, other.text)
        } else {
            self.text == other.text
        }
    }
}

impl Eq for Key<'_> {}

/// Whether Go's decoder would put member `key` into struct field `field`.
pub fn go_field_matches(key: &str, field: &str) -> bool {
    key.chars().map(fold).eq(field.chars().map(fold))
}

/// Object members whose values are Go maps (keys matched exactly, case kept), by field name.
/// Everything else that is an object decodes into a struct.
const MAP_FIELDS: &[&str] = &[
    "Labels",
    "ExposedPorts",
    "Volumes",
    "DriverOpts",
    "Options",
    "Sysctls",
    "StorageOpt",
    "Config",
    "PortBindings",
    "Tmpfs",
    "Annotations",
    "EndpointsConfig",
    "DriverOptions",
    "BuildArgs",
];

impl Value {
    /// Refuses objects that two decoders could resolve differently: in struct-typed objects,
    /// two members matching one field name (ignoring case); in map-typed objects (see
    /// `MAP_FIELDS`), one key twice.
    pub fn validate(&self) -> Result<(), BodyError> {
        self.validate_at("the body", false)
    }

    fn validate_at(&self, path: &str, is_map: bool) -> Result<(), BodyError> {
        match self {
            Value::Object(members) => {
                // One set per object: linear in the number of members, whatever the keys
                // (a quadratic scan let one 1 MiB body cost a minute of CPU).
                let mut seen = std::collections::HashSet::with_capacity(members.len());
                for (k, v) in members {
                    let fresh = seen.insert(Key {
                        text: k,
                        folded: !is_map,
                    });
                    if !fresh {
                        return Err(BodyError::AmbiguousKey {
                            path: path.to_string(),
                            key: k.clone(),
                        });
                    }
                    let child_is_map = !is_map && MAP_FIELDS.iter().any(|m| go_field_matches(k, m));
                    v.validate_at(k, child_is_map)?;
                }
                Ok(())
            }
            Value::Array(items) => items.iter().try_for_each(|v| v.validate_at(path, false)),
            _ => Ok(()),
        }
    }

    /// The member Go would decode into struct field `name` (after [`Value::validate`], at most
    /// one matches). `null` members count as absent, as Go leaves the field unset.
    pub fn field(&self, name: &str) -> Option<&Value> {
        match self {
            Value::Object(members) => members
                .iter()
                .rev()
                .find(|(k, _)| go_field_matches(k, name))
                .map(|(_, v)| v)
                .filter(|v| !matches!(v, Value::Null)),
            _ => None,
        }
    }

    /// The member Go would decode into struct field `name`, for changing it (see
    /// [`Value::field`]); `null` members count too, as they are there to be replaced.
    pub fn field_mut(&mut self, name: &str) -> Option<&mut Value> {
        match self {
            Value::Object(members) => members
                .iter_mut()
                .rev()
                .find(|(k, _)| go_field_matches(k, name))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    /// Struct field `name`, created (as `{}`) if absent or `null`. A body that is not an
    /// object becomes one, as an absent body decodes to zero values in Go.
    pub fn object_field(&mut self, name: &str) -> &mut Value {
        if !matches!(self, Value::Object(_)) {
            *self = Value::Object(Vec::new());
        }
        let missing = !matches!(self.field_mut(name), Some(Value::Object(_)));
        if missing {
            self.set_field(name, Value::Object(Vec::new()));
        }
        self.field_mut(name).expect("just set")
    }

    /// Sets struct field `name` (replacing the member Go would use, or adding one).
    pub fn set_field(&mut self, name: &str, value: Value) {
        if !matches!(self, Value::Object(_)) {
            *self = Value::Object(Vec::new());
        }
        match self.field_mut(name) {
            Some(slot) => *slot = value,
            None => {
                if let Value::Object(members) = self {
                    members.push((name.to_string(), value));
                }
            }
        }
    }

    /// Sets map key `key` exactly (maps keep the case of their keys).
    pub fn set_map_key(&mut self, key: &str, value: Value) {
        if !matches!(self, Value::Object(_)) {
            *self = Value::Object(Vec::new());
        }
        if let Value::Object(members) = self {
            match members.iter_mut().find(|(k, _)| k == key) {
                Some((_, slot)) => *slot = value,
                None => members.push((key.to_string(), value)),
            }
        }
    }

    /// Serialises back to JSON, members in their order.
    pub fn to_json(&self) -> String {
        let mut out = String::new();
        self.write_json(&mut out);
        out
    }

    fn write_json(&self, out: &mut String) {
        match self {
            Value::Null => out.push_str("null"),
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::Number(n) => out.push_str(&n.to_string()),
            Value::String(s) => out.push_str(&serde_json::Value::from(s.as_str()).to_string()),
            Value::Array(items) => {
                out.push('[');
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    v.write_json(out);
                }
                out.push(']');
            }
            Value::Object(members) => {
                out.push('{');
                for (i, (k, v)) in members.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&serde_json::Value::from(k.as_str()).to_string());
                    out.push(':');
                    v.write_json(out);
                }
                out.push('}');
            }
        }
    }

    /// Follows a path of struct fields: `body.path(&["HostConfig", "Privileged"])`.
    pub fn path(&self, names: &[&str]) -> Option<&Value> {
        names.iter().try_fold(self, |v, name| v.field(name))
    }

    /// Members of an object (for maps), in order.
    pub fn members(&self) -> &[(String, Value)] {
        match self {
            Value::Object(m) => m,
            _ => &[],
        }
    }

    /// Items of an array; nothing for anything else.
    pub fn items(&self) -> &[Value] {
        match self {
            Value::Array(a) => a,
            _ => &[],
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// Go's truthiness for a `bool` field: only JSON `true` sets it.
    pub fn is_true(&self) -> bool {
        matches!(self, Value::Bool(true))
    }

    /// Whether this is an array with no items (`[]`, as opposed to absent or `null`).
    pub fn is_empty_array(&self) -> bool {
        matches!(self, Value::Array(a) if a.is_empty())
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Value, D::Error> {
        de::DeserializeSeed::deserialize(Seed { depth: 0 }, d)
    }
}

/// A value at nesting `depth`: deeper than [`MAX_DEPTH`] is refused.
#[derive(Clone, Copy)]
struct Seed {
    depth: usize,
}

impl<'de> de::DeserializeSeed<'de> for Seed {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl Seed {
    fn inner<E: de::Error>(self) -> Result<Seed, E> {
        if self.depth >= MAX_DEPTH {
            return Err(E::custom(format!(
                "the body nests arrays and objects deeper than {MAX_DEPTH} levels"
            )));
        }
        Ok(Seed {
            depth: self.depth + 1,
        })
    }
}

impl<'de> Visitor<'de> for Seed {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        serde_json::Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("non-finite number"))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let inner = self.inner()?;
        let mut items = Vec::new();
        while let Some(v) = seq.next_element_seed(inner)? {
            items.push(v);
        }
        // Exactly sized: a body of many small lists would otherwise hold 4 slots for each.
        items.shrink_to_fit();
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let inner = self.inner()?;
        let mut members = Vec::new();
        while let Some(k) = map.next_key::<String>()? {
            members.push((k, map.next_value_seed(inner)?));
        }
        members.shrink_to_fit();
        Ok(Value::Object(members))
    }
}

#[cfg(test)]
mod tests;
