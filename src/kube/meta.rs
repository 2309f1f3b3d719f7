//! `metadata` of every object we write (the Lease, the Endpoints object, our EndpointSlice):
//! the three fields we read typed, everything else kept as it came.
//!
//! A PUT replaces the whole object, so whatever we do not interpret (labels, annotations,
//! ownerReferences, managedFields, uid, any future field) lands in [`ObjectMeta::rest`] and is
//! written back unchanged. `name` is always written (`""` when the server sent none), the
//! other two only when present.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The metadata fields we read; every other one is carried in `rest`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectMeta {
    /// `metadata.name`; `""` when missing.
    #[serde(default)]
    pub name: String,
    /// `metadata.namespace`, left out of the JSON when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The opaque `metadata.resourceVersion` (compare for equality only); a PUT carrying it is
    /// conditional. Left out of the JSON when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_version: Option<String>,
    /// Every other metadata field (labels included), as it came.
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

impl ObjectMeta {
    /// Sets `labels` in `metadata.labels` (kept in [`ObjectMeta::rest`]), keeping the other
    /// labels; the map is created when missing, `null` or not a JSON object.
    pub fn add_labels<'a>(&mut self, labels: impl IntoIterator<Item = (&'a str, &'a str)>) {
        let mut map = match self.rest.remove("labels") {
            Some(Value::Object(map)) => map,
            _ => Map::new(),
        };
        for (key, value) in labels {
            map.insert(key.to_string(), Value::String(value.to_string()));
        }
        self.rest.insert("labels".to_string(), Value::Object(map));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unknown_fields_round_trip_and_name_is_always_written() {
        let text = r#"{"name":"l","namespace":"ns","resourceVersion":"7","annotations":{"a":"b"},"labels":{"x":"y"},"uid":"u"}"#;
        let meta: ObjectMeta = serde_json::from_str(text).expect("parse");
        assert_eq!(meta.resource_version.as_deref(), Some("7"));
        assert_eq!(serde_json::to_string(&meta).expect("serialize"), text);
        let empty = serde_json::to_value(ObjectMeta::default()).expect("serialize");
        assert_eq!(empty, json!({"name": ""}));
    }

    #[test]
    fn add_labels_creates_or_extends_the_map() {
        let mut meta: ObjectMeta =
            serde_json::from_value(json!({"name": "s", "labels": {"team": "db", "k": "old"}}))
                .expect("parse");
        meta.add_labels([("k", "v")]);
        assert_eq!(meta.rest["labels"], json!({"team": "db", "k": "v"}));
        for odd in [
            json!({"name": "s"}),
            json!({"name": "s", "labels": null}),
            json!({"name": "s", "labels": "x"}),
        ] {
            let mut meta: ObjectMeta = serde_json::from_value(odd).expect("parse");
            meta.add_labels([("k", "v")]);
            assert_eq!(meta.rest["labels"], json!({"k": "v"}));
        }
    }
}
