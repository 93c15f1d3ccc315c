//! The JSON Schema of the stack file, generated from the `RawFile` types.
//! `schema/stack.schema.json` is this output; a test keeps them equal.
use schemars::generate::SchemaSettings;
use serde_json::Value;

use super::raw::RawFile;

/// The schema as a JSON value (draft-07, like the Compose schema).
pub fn json_schema() -> Value {
    let mut schema = SchemaSettings::draft07()
        .into_generator()
        .into_root_schema_for::<RawFile>();
    schema.insert(
        "$id".into(),
        "https://stack.invalid/stack.schema.json".into(),
    );
    schema.into()
}

/// Pretty-printed, with a trailing newline (the checked-in file's form).
pub fn json_schema_text() -> String {
    let mut text = serde_json::to_string_pretty(&json_schema()).unwrap_or_default();
    text.push('\n');
    text
}

/// Follows `$ref` to a definition of the root schema.
pub fn resolve<'a>(root: &'a Value, schema: &'a Value) -> &'a Value {
    let mut s = schema;
    for _ in 0..16 {
        match s.get("$ref").and_then(Value::as_str) {
            Some(r) => {
                let name = r.rsplit('/').next().unwrap_or_default();
                match root.get("definitions").and_then(|d| d.get(name)) {
                    Some(def) => s = def,
                    None => return s,
                }
            }
            None => return s,
        }
    }
    s
}

/// The object schemas reachable from `schema` through oneOf/anyOf/allOf and
/// array items: where a table written at this place gets its keys.
pub fn object_schemas<'a>(root: &'a Value, schema: &'a Value) -> Vec<&'a Value> {
    let s = resolve(root, schema);
    let mut out = Vec::new();
    if s.get("properties").is_some() || s.get("additionalProperties").is_some_and(Value::is_object)
    {
        out.push(s);
    }
    for key in ["oneOf", "anyOf", "allOf"] {
        for alt in s.get(key).and_then(Value::as_array).into_iter().flatten() {
            out.extend(object_schemas(root, alt));
        }
    }
    if let Some(items) = s.get("items") {
        out.extend(object_schemas(root, items));
    }
    out
}
