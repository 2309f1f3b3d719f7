//! `labelSelector` and `fieldSelector` query parameters: parsing (a bad selector is a 400)
//! and matching against stored objects, with apimachinery's semantics (`k!=v` and
//! `k notin (..)` also match objects without the label).

use serde_json::Value;

use crate::validate::qualified_name;

#[derive(Debug, Clone, PartialEq)]
enum Op {
    Eq,
    Ne,
    Exists,
    NotExists,
    In,
    NotIn,
}

#[derive(Debug, Clone)]
struct Requirement {
    key: String,
    op: Op,
    values: Vec<String>,
}

/// A parsed label selector; empty matches everything.
#[derive(Debug, Clone, Default)]
pub struct LabelSelector(Vec<Requirement>);

fn split_top_level(s: &str) -> Result<Vec<&str>, String> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
        if !(0..=1).contains(&depth) {
            return Err(format!(
                "unable to parse requirement: unbalanced parentheses in {s:?}"
            ));
        }
    }
    if depth != 0 {
        return Err(format!(
            "unable to parse requirement: unbalanced parentheses in {s:?}"
        ));
    }
    parts.push(&s[start..]);
    Ok(parts)
}

fn check_key(key: &str) -> Result<String, String> {
    let errs = qualified_name(key);
    if errs.is_empty() {
        Ok(key.to_string())
    } else {
        Err(format!(
            "unable to parse requirement: values[0][key]: Invalid value: {key:?}: {}",
            errs.join("; ")
        ))
    }
}

fn check_value(v: &str) -> Result<String, String> {
    let ok = v.len() <= 63
        && (v.is_empty()
            || (v.as_bytes()[0].is_ascii_alphanumeric()
                && v.as_bytes()[v.len() - 1].is_ascii_alphanumeric()
                && v.bytes()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))));
    if ok {
        Ok(v.to_string())
    } else {
        Err(format!(
            "unable to parse requirement: values[0]: Invalid value: {v:?}: a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"
        ))
    }
}

fn parse_set_op(part: &str) -> Option<(&str, Op, &str)> {
    for (word, op) in [(" notin", Op::NotIn), (" in", Op::In)] {
        if let Some(idx) = part.find(word) {
            let rest = part[idx + word.len()..].trim_start();
            if rest.starts_with('(') {
                return Some((part[..idx].trim(), op, rest));
            }
        }
    }
    None
}

impl LabelSelector {
    pub fn parse(s: &str) -> Result<LabelSelector, String> {
        let mut reqs = Vec::new();
        if s.trim().is_empty() {
            return Ok(LabelSelector(reqs));
        }
        for part in split_top_level(s)? {
            let part = part.trim();
            if part.is_empty() {
                return Err(format!(
                    "unable to parse requirement: found '', expected: identifier in {s:?}"
                ));
            }
            let req = if let Some(key) = part.strip_prefix('!') {
                Requirement {
                    key: check_key(key.trim())?,
                    op: Op::NotExists,
                    values: vec![],
                }
            } else if let Some((key, op, rest)) = parse_set_op(part) {
                let inner = rest
                    .strip_prefix('(')
                    .and_then(|r| r.strip_suffix(')'))
                    .ok_or_else(|| format!("unable to parse requirement: bad set in {part:?}"))?;
                let values = inner
                    .split(',')
                    .map(|v| check_value(v.trim()))
                    .collect::<Result<Vec<_>, _>>()?;
                Requirement {
                    key: check_key(key)?,
                    op,
                    values,
                }
            } else if let Some((k, v)) = part.split_once("!=") {
                Requirement {
                    key: check_key(k.trim())?,
                    op: Op::Ne,
                    values: vec![check_value(v.trim())?],
                }
            } else if let Some((k, v)) = part.split_once("==").or_else(|| part.split_once('=')) {
                Requirement {
                    key: check_key(k.trim())?,
                    op: Op::Eq,
                    values: vec![check_value(v.trim())?],
                }
            } else {
                if part.contains(['<', '>', '(', ')', ' ']) {
                    return Err(format!(
                        "unable to parse requirement: unsupported syntax {part:?}"
                    ));
                }
                Requirement {
                    key: check_key(part)?,
                    op: Op::Exists,
                    values: vec![],
                }
            };
            reqs.push(req);
        }
        Ok(LabelSelector(reqs))
    }

    pub fn matches(&self, obj: &Value) -> bool {
        let labels = obj.pointer("/metadata/labels").and_then(Value::as_object);
        self.0.iter().all(|r| {
            let v = labels.and_then(|l| l.get(&r.key)).and_then(Value::as_str);
            match r.op {
                Op::Exists => v.is_some(),
                Op::NotExists => v.is_none(),
                Op::Eq | Op::In => v.is_some_and(|v| r.values.iter().any(|x| x == v)),
                Op::Ne | Op::NotIn => v.is_none_or(|v| r.values.iter().all(|x| x != v)),
            }
        })
    }
}

/// A parsed field selector over `metadata.name` / `metadata.namespace`.
#[derive(Debug, Clone, Default)]
pub struct FieldSelector(Vec<(String, bool, String)>);

impl FieldSelector {
    pub fn parse(s: &str) -> Result<FieldSelector, String> {
        let mut reqs = Vec::new();
        if s.trim().is_empty() {
            return Ok(FieldSelector(reqs));
        }
        for part in s.split(',') {
            let (field, eq, value) = if let Some((f, v)) = part.split_once("!=") {
                (f, false, v)
            } else if let Some((f, v)) = part.split_once("==").or_else(|| part.split_once('=')) {
                (f, true, v)
            } else {
                return Err(format!(
                    "invalid selector: '{s}'; can't understand '{part}'"
                ));
            };
            let field = field.trim();
            if field != "metadata.name" && field != "metadata.namespace" {
                return Err(format!(
                    "{field:?} is not a known field selector: only \"metadata.name\", \"metadata.namespace\""
                ));
            }
            reqs.push((field.to_string(), eq, value.trim().to_string()));
        }
        Ok(FieldSelector(reqs))
    }

    pub fn with_name(mut self, name: &str) -> FieldSelector {
        self.0.push(("metadata.name".into(), true, name.into()));
        self
    }

    pub fn matches(&self, obj: &Value) -> bool {
        self.0.iter().all(|(f, eq, v)| {
            let ptr = if f == "metadata.name" {
                "/metadata/name"
            } else {
                "/metadata/namespace"
            };
            let actual = obj.pointer(ptr).and_then(Value::as_str).unwrap_or("");
            (actual == v) == *eq
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn label_selectors() {
        let o = json!({"metadata": {"labels": {"app": "web", "tier": "fe"}}});
        let m = |s: &str| LabelSelector::parse(s).unwrap().matches(&o);
        assert!(m("app=web"));
        assert!(m("app==web,tier"));
        assert!(!m("app!=web"));
        assert!(m("zone!=x"));
        assert!(m("!zone"));
        assert!(!m("!app"));
        assert!(m("app in (web, db)"));
        assert!(!m("app notin (web)"));
        assert!(m("zone notin (a,b),app"));
        assert!(LabelSelector::parse("a=b=c").is_err());
        assert!(LabelSelector::parse("app in (web").is_err());
        assert!(LabelSelector::parse(",").is_err());
    }

    #[test]
    fn field_selectors() {
        let o = json!({"metadata": {"name": "a", "namespace": "ns"}});
        assert!(FieldSelector::parse("metadata.name=a").unwrap().matches(&o));
        assert!(!FieldSelector::parse("metadata.name!=a")
            .unwrap()
            .matches(&o));
        assert!(FieldSelector::parse("spec.x=a").is_err());
    }
}
