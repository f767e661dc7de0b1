//! A validator of ECS documents built from `ecs_flat.yml`: every leaf field
//! of the (nested) document must be an ECS field or under the documented
//! custom namespace; values must fit the field type; fields ECS normalises to
//! arrays must be arrays; values of fields with allowed values must be
//! allowed, and `event.type` must be expected for each `event.category`;
//! fields ECS marks required must be present.

use serde_json::Value;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;
use yaml_rust2::{Yaml, YamlLoader};

#[derive(Debug, Clone, Default)]
pub struct Field {
    pub ty: String,
    pub array: bool,
    pub required: bool,
    /// Allowed value → the event types expected with it (event.category).
    pub allowed: Option<BTreeMap<String, Vec<String>>>,
}

pub struct Ecs {
    pub fields: BTreeMap<String, Field>,
    /// Top-level key under which custom fields live.
    pub custom: String,
}

fn strings(y: &Yaml) -> Vec<String> {
    y.as_vec()
        .map(|v| {
            v.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

impl Ecs {
    pub fn load(dir: &Path, custom: &str) -> Ecs {
        let path = dir.join("ecs-9.4.0/generated/ecs/ecs_flat.yml");
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let docs =
            YamlLoader::load_from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let root = docs
            .first()
            .and_then(Yaml::as_hash)
            .expect("ecs_flat.yml is a mapping");
        let mut fields = BTreeMap::new();
        for (k, v) in root {
            let Some(name) = k.as_str() else { continue };
            let allowed = v["allowed_values"].as_vec().map(|vals| {
                vals.iter()
                    .filter_map(|a| {
                        Some((
                            a["name"].as_str()?.to_owned(),
                            strings(&a["expected_event_types"]),
                        ))
                    })
                    .collect()
            });
            fields.insert(
                name.to_owned(),
                Field {
                    ty: v["type"].as_str().unwrap_or_default().to_owned(),
                    array: strings(&v["normalize"]).iter().any(|n| n == "array"),
                    required: v["required"].as_bool().unwrap_or(false),
                    allowed,
                },
            );
        }
        assert!(
            fields.len() > 1000,
            "ecs_flat.yml: only {} fields",
            fields.len()
        );
        Ecs {
            fields,
            custom: custom.to_owned(),
        }
    }

    /// Leaf fields of a nested document: dotted name → value.
    fn flatten(&self, prefix: &str, v: &Value, out: &mut Vec<(String, Value)>) {
        match v {
            Value::Object(m) => {
                for (k, child) in m {
                    let name = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    // Object-typed ECS fields (labels) hold free-form keys.
                    let free = self.fields.get(&name).is_some_and(|f| {
                        matches!(f.ty.as_str(), "object" | "nested" | "flattened")
                    });
                    if child.is_object() && !free {
                        self.flatten(&name, child, out);
                    } else {
                        out.push((name, child.clone()));
                    }
                }
            }
            other => out.push((prefix.to_owned(), other.clone())),
        }
    }

    pub fn validate(&self, doc: &Value) -> Vec<String> {
        let mut errs = Vec::new();
        if !doc.is_object() {
            return vec!["document is not an object".into()];
        }
        let mut leaves = Vec::new();
        self.flatten("", doc, &mut leaves);
        let present: BTreeMap<&str, &Value> = leaves.iter().map(|(k, v)| (k.as_str(), v)).collect();
        for (name, f) in &self.fields {
            if f.required && !present.contains_key(name.as_str()) {
                errs.push(format!("{name}: required field missing"));
            }
        }
        for (name, v) in &leaves {
            if name == &self.custom || name.starts_with(&format!("{}.", self.custom)) {
                continue;
            }
            let Some(f) = self.fields.get(name) else {
                errs.push(format!("{name}: not an ECS field"));
                continue;
            };
            let values: Vec<&Value> = match v {
                Value::Array(items) => items.iter().collect(),
                one => {
                    if f.array {
                        errs.push(format!("{name}: ECS expects an array"));
                    }
                    vec![one]
                }
            };
            for item in values {
                if let Some(e) = type_error(&f.ty, item) {
                    errs.push(format!("{name}: {item} {e}"));
                }
                if let (Some(allowed), Some(s)) = (&f.allowed, item.as_str())
                    && !allowed.contains_key(s)
                {
                    errs.push(format!("{name}: {s:?} is not an allowed value"));
                }
            }
        }
        // Each category lists the event types expected with it.
        let cats = present
            .get("event.category")
            .map(|v| as_strings(v))
            .unwrap_or_default();
        let types = present
            .get("event.type")
            .map(|v| as_strings(v))
            .unwrap_or_default();
        let expected = self
            .fields
            .get("event.category")
            .and_then(|f| f.allowed.as_ref());
        for c in &cats {
            let exp = expected.and_then(|e| e.get(c)).cloned().unwrap_or_default();
            for t in &types {
                if !exp.is_empty() && !exp.contains(t) {
                    errs.push(format!(
                        "event.type: {t:?} is not expected with category {c:?}"
                    ));
                }
            }
        }
        errs
    }
}

fn as_strings(v: &Value) -> Vec<String> {
    match v {
        Value::Array(a) => a
            .iter()
            .filter_map(|s| s.as_str().map(str::to_owned))
            .collect(),
        Value::String(s) => vec![s.clone()],
        _ => Vec::new(),
    }
}

fn type_error(ty: &str, v: &Value) -> Option<&'static str> {
    let ok = match ty {
        "keyword" | "constant_keyword" | "wildcard" | "text" | "match_only_text" => v.is_string(),
        "long" | "integer" | "short" | "byte" => v.is_i64() || v.is_u64(),
        "unsigned_long" => v.is_u64(),
        "float" | "half_float" | "scaled_float" | "double" => v.is_number(),
        "boolean" => v.is_boolean(),
        "ip" => v.as_str().and_then(|s| s.parse::<IpAddr>().ok()).is_some(),
        "date" => v
            .as_str()
            .and_then(|s| humantime::parse_rfc3339(s).ok())
            .is_some(),
        "object" | "nested" | "flattened" => v.is_object(),
        _ => return Some("has a type this validator does not know"),
    };
    (!ok).then_some("does not fit the field type")
}
