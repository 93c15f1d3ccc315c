//! The "either" shapes of Compose syntax (string or list, list or map, short
//! or long form), as small serde types with hand-written JSON schemas.
//! They only capture the shape; `convert` gives the values their meaning,
//! so that semantic errors can point at the exact node.
use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

/// `command` / `entrypoint` / healthcheck `test`: a string (shell form) or
/// a list (exec form).
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Shell(String),
    Exec(Vec<String>),
}

impl<'de> Deserialize<'de> for Command {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Command;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or a list of strings")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Command, E> {
                Ok(Command::Shell(s.to_string()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Command, A::Error> {
                Vec::<String>::deserialize(SeqAccessDeserializer::new(seq)).map(Command::Exec)
            }
        }
        d.deserialize_any(V)
    }
}

impl JsonSchema for Command {
    fn schema_name() -> Cow<'static, str> {
        "Command".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A string (split into words as a shell would; no shell runs) or a list (exec form).",
            "oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]
        })
    }
}

/// A string or a list of strings (`dns`, `tmpfs`, `env_file`, ...).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct OneOrMany(pub Vec<String>);

impl<'de> Deserialize<'de> for OneOrMany {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Command::deserialize(d).map(|c| match c {
            Command::Shell(s) => OneOrMany(vec![s]),
            Command::Exec(v) => OneOrMany(v),
        })
    }
}

impl JsonSchema for OneOrMany {
    fn schema_name() -> Cow<'static, str> {
        "StringOrList".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]
        })
    }
}

/// `environment`, `labels`, `sysctls`, `extra_hosts`: a map of scalars, or a
/// list of `KEY=VALUE` strings. A list item without `=`, or a null map value,
/// gives `None` (e.g. "take it from the environment").
#[derive(Debug, Clone, PartialEq, Default)]
pub struct KeyValues {
    pub items: Vec<(String, Option<String>)>,
    /// True when written as a list (then `sep` split the items).
    pub from_list: bool,
}

impl KeyValues {
    /// Splits `KEY=VALUE` list items; an item without `=` has no value.
    fn parse_list(list: Vec<String>) -> KeyValues {
        let items = list
            .into_iter()
            .map(|s| match s.split_once('=') {
                Some((k, v)) => (k.to_string(), Some(v.to_string())),
                None => (s, None),
            })
            .collect();
        KeyValues {
            items,
            from_list: true,
        }
    }
}

/// A map value of `KeyValues`: any scalar, or null.
struct ScalarOrNull(Option<String>);

impl<'de> Deserialize<'de> for ScalarOrNull {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Option::<String>::deserialize(d).map(ScalarOrNull)
    }
}

impl<'de> Deserialize<'de> for KeyValues {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = KeyValues;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a table of values or a list of \"KEY=VALUE\" strings")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<KeyValues, A::Error> {
                Vec::<String>::deserialize(SeqAccessDeserializer::new(seq))
                    .map(KeyValues::parse_list)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<KeyValues, A::Error> {
                let mut items = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, ScalarOrNull>()? {
                    items.push((k, v.0));
                }
                Ok(KeyValues {
                    items,
                    from_list: false,
                })
            }
        }
        d.deserialize_any(V)
    }
}

impl JsonSchema for KeyValues {
    fn schema_name() -> Cow<'static, str> {
        "ListOrDict".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "oneOf": [
                {"type": "object", "additionalProperties": {"type": ["string", "number", "boolean", "null"]}},
                {"type": "array", "items": {"type": "string"}, "uniqueItems": true}
            ]
        })
    }
}

/// A value with a short (string or number) and a long (table) form:
/// ports, volumes, devices, secrets, ulimits.
#[derive(Debug, Clone, PartialEq)]
pub enum ShortOrLong<L> {
    Short(String),
    Long(L),
}

impl<'de, L: Deserialize<'de>> Deserialize<'de> for ShortOrLong<L> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<L>(PhantomData<L>);
        impl<'de, L: Deserialize<'de>> Visitor<'de> for V<L> {
            type Value = ShortOrLong<L>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or a table")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
                Ok(ShortOrLong::Short(s.to_string()))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Self::Value, E> {
                Ok(ShortOrLong::Short(n.to_string()))
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Self::Value, E> {
                Ok(ShortOrLong::Short(n.to_string()))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                L::deserialize(MapAccessDeserializer::new(map)).map(ShortOrLong::Long)
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

impl<L: JsonSchema> JsonSchema for ShortOrLong<L> {
    fn schema_name() -> Cow<'static, str> {
        format!("ShortOr{}", L::schema_name()).into()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let long = generator.subschema_for::<L>();
        json_schema!({"oneOf": [{"type": ["string", "integer"]}, long]})
    }
}

/// `networks` / `depends_on` of a service: a list of names, or a map from
/// name to settings (which may be null).
#[derive(Debug, Clone, PartialEq)]
pub struct ListOrMap<V> {
    pub items: Vec<(String, Option<V>)>,
}

impl<V> Default for ListOrMap<V> {
    fn default() -> Self {
        ListOrMap { items: Vec::new() }
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for ListOrMap<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = ListOrMap<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of names or a table keyed by name")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
                let names = Vec::<String>::deserialize(SeqAccessDeserializer::new(seq))?;
                Ok(ListOrMap {
                    items: names.into_iter().map(|n| (n, None)).collect(),
                })
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut items = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, Option<T>>()? {
                    items.push((k, v));
                }
                Ok(ListOrMap { items })
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

impl<T: JsonSchema> JsonSchema for ListOrMap<T> {
    fn schema_name() -> Cow<'static, str> {
        format!("ListOrMapOf{}", T::schema_name()).into()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let value = generator.subschema_for::<T>();
        json_schema!({
            "oneOf": [
                {"type": "array", "items": {"type": "string"}, "uniqueItems": true},
                {"type": "object", "additionalProperties": {"oneOf": [value, {"type": "null"}]}}
            ]
        })
    }
}

/// A scalar kept as text (sizes, durations, cpus, octal modes), parsed by
/// `convert` where the error can point at it. The flag says it was written
/// as a number, which matters for file modes: `0o440` (a number) vs `"440"`
/// (octal text).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Scalar(pub String, pub bool);

impl Scalar {
    pub fn text(s: &str) -> Scalar {
        Scalar(s.to_string(), false)
    }
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or a number")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Scalar, E> {
                Ok(Scalar(s.to_string(), false))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Scalar, E> {
                Ok(Scalar(n.to_string(), true))
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Scalar, E> {
                Ok(Scalar(n.to_string(), true))
            }
            fn visit_f64<E: de::Error>(self, n: f64) -> Result<Scalar, E> {
                Ok(Scalar(n.to_string(), true))
            }
        }
        d.deserialize_any(V)
    }
}

impl JsonSchema for Scalar {
    fn schema_name() -> Cow<'static, str> {
        "StringOrNumber".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({"type": ["string", "number"]})
    }
}

/// A string, or a list mixing strings and `L` tables (`env_file`).
#[derive(Debug, Clone, PartialEq)]
pub struct OneOrManyOf<L>(pub Vec<ShortOrLong<L>>);

impl<'de, L: Deserialize<'de>> Deserialize<'de> for OneOrManyOf<L> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<L>(PhantomData<L>);
        impl<'de, L: Deserialize<'de>> Visitor<'de> for V<L> {
            type Value = OneOrManyOf<L>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or a list of strings and tables")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
                Ok(OneOrManyOf(vec![ShortOrLong::Short(s.to_string())]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
                Vec::<ShortOrLong<L>>::deserialize(SeqAccessDeserializer::new(seq)).map(OneOrManyOf)
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

impl<L: JsonSchema> JsonSchema for OneOrManyOf<L> {
    fn schema_name() -> Cow<'static, str> {
        format!("OneOrManyOf{}", L::schema_name()).into()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let item = generator.subschema_for::<ShortOrLong<L>>();
        json_schema!({"oneOf": [{"type": "string"}, {"type": "array", "items": item}]})
    }
}
