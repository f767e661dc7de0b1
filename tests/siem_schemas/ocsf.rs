//! A validator of OCSF events built from the schema's JSON definitions:
//! resolves `extends` and `$include` (profiles) the way the OCSF server does,
//! merges each attribute with its dictionary entry, and checks required
//! attributes, `at_least_one`/`just_one` constraints, types (scalars, objects,
//! arrays), enum values and their caption siblings, profile-bound attributes,
//! attributes the schema does not define (anything is allowed only under
//! `unmapped`), and the class, category and type uids.

use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

pub struct Ocsf {
    root: PathBuf,
    dictionary: Map<String, Value>,
    types: Map<String, Value>,
    categories: Map<String, Value>,
}

/// A class or object with its attributes fully merged.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub name: String,
    pub caption: String,
    pub uid: Option<i64>,
    pub category: Option<String>,
    pub attributes: Map<String, Value>,
    pub constraints: Map<String, Value>,
}

fn read(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `over` on top of `base`, objects merged key by key (the OCSF server's
/// merge: a class refines its parent's and the dictionary's definition).
fn deep_merge(base: &Value, over: &Value) -> Value {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            let mut m = b.clone();
            for (k, v) in o {
                let merged = match m.get(k) {
                    Some(bv) => deep_merge(bv, v),
                    None => v.clone(),
                };
                m.insert(k.clone(), merged);
            }
            Value::Object(m)
        }
        (_, o) => o.clone(),
    }
}

fn obj(v: &Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

impl Ocsf {
    pub fn load(dir: &Path) -> Ocsf {
        let root = dir.join("ocsf-1.7.0");
        let dict = read(&root.join("dictionary.json"));
        let version = read(&root.join("version.json"));
        assert_eq!(version["version"], "1.7.0", "schema version");
        Ocsf {
            dictionary: obj(&dict["attributes"]),
            types: obj(&dict["types"]["attributes"]),
            categories: obj(&read(&root.join("categories.json"))["attributes"]),
            root,
        }
    }

    /// Attributes of a definition with its `$include`d profiles; profile
    /// attributes tagged with the profile name unless the definition says
    /// `"profile": null`.
    fn own_attributes(&self, def: &Value) -> Map<String, Value> {
        let mut attrs = Map::new();
        if let Some(incs) = def["attributes"]["$include"].as_array() {
            for inc in incs.iter().filter_map(Value::as_str) {
                let p = read(&self.root.join(inc));
                let profile = p["name"].as_str().unwrap_or_default().to_owned();
                for (k, v) in obj(&p["attributes"]) {
                    let mut v = v;
                    if let Some(m) = v.as_object_mut() {
                        m.entry("profile").or_insert(Value::String(profile.clone()));
                    }
                    attrs.insert(k, v);
                }
            }
        }
        for (k, v) in obj(&def["attributes"]) {
            if k == "$include" {
                continue;
            }
            let merged = match attrs.get(&k) {
                Some(b) => deep_merge(b, &v),
                None => v,
            };
            attrs.insert(k, merged);
        }
        attrs
    }

    fn find_event(&self, name: &str, near: &Path) -> PathBuf {
        let same = near.join(format!("{name}.json"));
        if same.is_file() {
            return same;
        }
        let top = self.root.join("events").join(format!("{name}.json"));
        assert!(top.is_file(), "event definition {name} not found");
        top
    }

    fn resolve_file(&self, path: &Path, is_object: bool) -> Resolved {
        let def = read(path);
        let mut attrs = self.own_attributes(&def);
        let mut constraints = obj(&def["constraints"]);
        let mut category = def["category"].as_str().map(str::to_owned);
        if let Some(parent) = def["extends"].as_str() {
            let ppath = if is_object {
                self.root.join("objects").join(format!("{parent}.json"))
            } else {
                self.find_event(parent, path.parent().unwrap_or(&self.root))
            };
            let p = self.resolve_file(&ppath, is_object);
            let mut merged = p.attributes.clone();
            for (k, v) in attrs {
                let m = match merged.get(&k) {
                    Some(b) => deep_merge(b, &v),
                    None => v,
                };
                merged.insert(k, m);
            }
            attrs = merged;
            if constraints.is_empty() {
                constraints = p.constraints;
            }
            if category.is_none() {
                category = p.category;
            }
        }
        Resolved {
            name: def["name"].as_str().unwrap_or_default().to_owned(),
            caption: def["caption"].as_str().unwrap_or_default().to_owned(),
            uid: def["uid"].as_i64(),
            category,
            attributes: attrs,
            constraints,
        }
    }

    /// Each attribute merged onto its dictionary entry.
    fn finish(&self, mut r: Resolved) -> Resolved {
        for (k, v) in r.attributes.iter_mut() {
            if let Some(d) = self.dictionary.get(k) {
                *v = deep_merge(d, v);
            }
        }
        if r.name == "observable" {
            self.add_observable_types(&mut r);
        }
        r
    }

    /// The OCSF server fills `observable.type_id` from every type, object and
    /// dictionary attribute that declares an `observable` number.
    fn add_observable_types(&self, r: &mut Resolved) {
        let mut extra = Map::new();
        let mut add = |n: &Value, caption: &Value| {
            if let Some(n) = n.as_i64() {
                extra.insert(n.to_string(), serde_json::json!({ "caption": caption }));
            }
        };
        for t in self.types.values() {
            add(&t["observable"], &t["caption"]);
        }
        for a in self.dictionary.values() {
            add(&a["observable"], &a["caption"]);
        }
        if let Ok(dir) = std::fs::read_dir(self.root.join("objects")) {
            for e in dir.flatten() {
                let o = read(&e.path());
                add(&o["observable"], &o["caption"]);
            }
        }
        if let Some(Value::Object(en)) = r
            .attributes
            .get_mut("type_id")
            .and_then(|t| t.get_mut("enum"))
        {
            en.extend(extra);
        }
    }

    pub fn class(&self, path: &str) -> Resolved {
        let r = self.resolve_file(&self.root.join(path), false);
        self.finish(r)
    }

    pub fn object(&self, name: &str) -> Resolved {
        let path = self.root.join("objects").join(format!("{name}.json"));
        assert!(path.is_file(), "object {name} not defined");
        let r = self.resolve_file(&path, true);
        self.finish(r)
    }

    /// Violations of `event` against the class at `class_path`
    /// (e.g. `events/findings/detection_finding.json`).
    pub fn validate_event(&self, class_path: &str, event: &Value) -> Vec<String> {
        let class = self.class(class_path);
        let mut errs = Vec::new();
        let profiles: Vec<String> = event["metadata"]["profiles"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|p| p.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        // Uids are computed by the OCSF server, not listed as enums.
        let category = class.category.clone().unwrap_or_default();
        let category_uid = self.categories[&category]["uid"].as_i64();
        let class_uid = category_uid.zip(class.uid).map(|(c, u)| c * 1000 + u);
        let activity = event["activity_id"].as_i64();
        let checks = [
            ("category_uid", category_uid),
            ("class_uid", class_uid),
            (
                "type_uid",
                class_uid.zip(activity).map(|(c, a)| c * 100 + a),
            ),
        ];
        for (k, want) in checks {
            if event[k].as_i64() != want {
                errs.push(format!("{k}: {} is not {want:?}", event[k]));
            }
        }
        let captions = [
            (
                "category_name",
                self.categories[&category]["caption"]
                    .as_str()
                    .map(str::to_owned),
            ),
            ("class_name", Some(class.caption.clone())),
        ];
        for (k, want) in captions {
            if !event[k].is_null() && event[k].as_str().map(str::to_owned) != want {
                errs.push(format!("{k}: {} is not {want:?}", event[k]));
            }
        }
        let activity_caption = activity.and_then(|a| {
            class.attributes["activity_id"]["enum"][a.to_string()]["caption"]
                .as_str()
                .map(str::to_owned)
        });
        if let (Some(t), Some(a)) = (event["type_name"].as_str(), &activity_caption)
            && t != format!("{}: {a}", class.caption)
        {
            errs.push(format!("type_name: {t:?}"));
        }
        self.check_object(&class, event, "", &profiles, &mut errs, true);
        errs
    }

    fn check_object(
        &self,
        def: &Resolved,
        v: &Value,
        at: &str,
        profiles: &[String],
        errs: &mut Vec<String>,
        is_class: bool,
    ) {
        let Some(m) = v.as_object() else {
            errs.push(format!("{at}: expected an object ({})", def.name));
            return;
        };
        let applies = |a: &Value| match a["profile"].as_str() {
            None => true,
            Some(p) => profiles.iter().any(|x| x == p),
        };
        for (k, a) in &def.attributes {
            if a["requirement"] == "required" && applies(a) && !m.contains_key(k) {
                errs.push(format!(
                    "{at}{k}: required attribute missing ({})",
                    def.name
                ));
            }
        }
        if let Some(list) = def
            .constraints
            .get("at_least_one")
            .and_then(Value::as_array)
            && !list
                .iter()
                .filter_map(Value::as_str)
                .any(|k| m.contains_key(k))
        {
            errs.push(format!("{at}: {} needs at least one of {list:?}", def.name));
        }
        if let Some(list) = def.constraints.get("just_one").and_then(Value::as_array) {
            let n = list
                .iter()
                .filter_map(Value::as_str)
                .filter(|k| m.contains_key(*k))
                .count();
            if n != 1 {
                errs.push(format!("{at}: {} needs exactly one of {list:?}", def.name));
            }
        }
        for (k, val) in m {
            let path = format!("{at}{k}");
            let Some(a) = def.attributes.get(k) else {
                errs.push(format!("{path}: not an attribute of {}", def.name));
                continue;
            };
            if !applies(a) {
                errs.push(format!(
                    "{path}: needs profile {} in metadata.profiles",
                    a["profile"]
                ));
            }
            if a.get("@deprecated").is_some() {
                errs.push(format!("{path}: deprecated"));
            }
            if val.is_null() {
                errs.push(format!("{path}: null (leave absent instead)"));
                continue;
            }
            let uid_attr =
                is_class && matches!(k.as_str(), "class_uid" | "category_uid" | "type_uid");
            if a["is_array"] == true {
                match val.as_array() {
                    Some(items) => {
                        for (i, item) in items.iter().enumerate() {
                            self.check_value(
                                a,
                                item,
                                &format!("{path}[{i}]"),
                                profiles,
                                errs,
                                uid_attr,
                            );
                        }
                    }
                    None => errs.push(format!("{path}: expected an array")),
                }
            } else {
                self.check_value(a, val, &path, profiles, errs, uid_attr);
            }
            // A `_id` enum and its caption sibling must agree (99 = Other:
            // the sibling is source-defined).
            if let (Some(sib), Some(id)) = (a["sibling"].as_str(), val.as_i64())
                && id != 99
                && !uid_attr
                && let Some(s) = m.get(sib)
            {
                let cap = &a["enum"][id.to_string()]["caption"];
                if s != cap {
                    errs.push(format!(
                        "{at}{sib}: {s} is not the caption {cap} of {k} {id}"
                    ));
                }
            }
        }
    }

    fn check_value(
        &self,
        a: &Value,
        v: &Value,
        path: &str,
        profiles: &[String],
        errs: &mut Vec<String>,
        skip_enum: bool,
    ) {
        let ty = a["type"].as_str().unwrap_or("string_t");
        if !skip_enum && let Some(en) = a["enum"].as_object() {
            let key = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            if !en.contains_key(&key) {
                errs.push(format!(
                    "{path}: {v} is not one of {:?}",
                    en.keys().collect::<Vec<_>>()
                ));
            }
        }
        if !ty.ends_with("_t") {
            // `object` is the free-form type of `unmapped`.
            if ty == "object" {
                if !v.is_object() {
                    errs.push(format!("{path}: expected an object"));
                }
                return;
            }
            let def = self.object(ty);
            self.check_object(&def, v, &format!("{path}."), profiles, errs, false);
            return;
        }
        let t = &self.types[ty];
        let base = t["type"].as_str().unwrap_or(ty);
        let ok = match base {
            "string_t" => v.is_string(),
            "integer_t" | "long_t" | "timestamp_t" => v.is_i64() || v.is_u64(),
            "float_t" => v.is_number(),
            "boolean_t" => v.is_boolean(),
            "json_t" => true,
            other => {
                errs.push(format!("{path}: unknown base type {other}"));
                true
            }
        };
        if !ok {
            errs.push(format!("{path}: {v} is not a {ty}"));
            return;
        }
        if let (Some(max), Some(s)) = (t["max_len"].as_u64(), v.as_str())
            && s.len() as u64 > max
        {
            errs.push(format!("{path}: longer than {max}"));
        }
        if ty == "ip_t" && v.as_str().and_then(|s| s.parse::<IpAddr>().ok()).is_none() {
            errs.push(format!("{path}: {v} is not an IP address"));
        }
        if let (Some(r), Some(n)) = (t["range"].as_array(), v.as_i64())
            && let (Some(lo), Some(hi)) = (
                r.first().and_then(Value::as_i64),
                r.get(1).and_then(Value::as_i64),
            )
            && !(lo..=hi).contains(&n)
        {
            errs.push(format!("{path}: {n} outside {lo}..={hi}"));
        }
    }
}

/// Attribute names of a resolved definition (for tests that list them).
pub fn attribute_names(r: &Resolved) -> BTreeMap<String, String> {
    r.attributes
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                v["requirement"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}
