//! Bounded decoding of what the API server answers: the size limits of bodies and watch
//! lines, and a first pass over the JSON text that refuses more values or deeper nesting than
//! any object we read can have, before anything is decoded.
//!
//! A body within the size limit can still cost many times its size once decoded (a
//! `serde_json::Value` takes 32 bytes or more for each `0,` of an array): the first pass builds
//! nothing (strings and keys are looked at in place, or in serde_json's one scratch buffer),
//! so decoding only ever starts on text whose values fit [`MAX_VALUES`]. The same pass can
//! look for a secret in the decoded strings ([`strings_contain`], for the token echo check). Nesting is capped at [`MAX_DEPTH`], well below serde_json's own
//! recursion limit of 128, which also applies to every decode here.

use std::cell::Cell;
use std::fmt;

use serde::de::{self, DeserializeOwned, DeserializeSeed, MapAccess, SeqAccess};

/// Largest response body we accept, and largest watch-event line: 2 MiB. etcd refuses to
/// store a value above 1.5 MiB, so no object is larger (its JSON form differs from the stored
/// one by field names and quoting only, a few percent for the string-heavy objects we read);
/// and the objects we read are far smaller still (all annotations of one object together are
/// at most 256 KiB). Two such bodies at once (a watch line and a GET) stay well inside the
/// 8 MiB the process may use.
pub(super) const MAX_BODY: u64 = 2 * 1024 * 1024;

/// Most JSON values (keys, scalars, arrays and objects each count one) in one body or watch
/// event. The objects we read (our Lease, Endpoints object, EndpointSlice) hold well under a
/// thousand even with many labels, annotations and managedFields entries.
pub(super) const MAX_VALUES: usize = 10_000;

/// Deepest nesting of arrays and objects in one body or watch event (ours reach about 8,
/// with managedFields).
pub(super) const MAX_DEPTH: usize = 32;

/// Decodes `bytes` as `T` after checking the bounds above; the error says what was wrong.
pub(super) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    check(bytes)?;
    serde_json::from_slice(bytes).map_err(|e| e.to_string())
}

/// Checks that `bytes` is one JSON value within [`MAX_VALUES`] and [`MAX_DEPTH`].
pub(super) fn check(bytes: &[u8]) -> Result<(), String> {
    scan(bytes, None).map(drop)
}

/// True if `bytes` is one JSON value within the bounds of [`check`] and one of its strings or
/// keys, with its escapes (`\u0041`, `\/`) decoded, contains `needle`.
pub(super) fn strings_contain(bytes: &[u8], needle: &str) -> bool {
    scan(bytes, Some(needle)).unwrap_or(false)
}

/// The pass of [`check`], also looking for `needle` in every decoded string and key: whether
/// one contains it.
fn scan(bytes: &[u8], needle: Option<&str>) -> Result<bool, String> {
    let left = Cell::new(MAX_VALUES);
    let found = Cell::new(false);
    let mut de = serde_json::Deserializer::from_slice(bytes);
    Count {
        left: &left,
        depth: 0,
        needle,
        found: &found,
    }
    .deserialize(&mut de)
    .and_then(|()| de.end())
    .map_err(|e| e.to_string())?;
    Ok(found.get())
}

/// Visits one JSON value, counting it and everything in it against `left`, and noting in
/// `found` a string or key that contains `needle`.
#[derive(Clone, Copy)]
struct Count<'a> {
    left: &'a Cell<usize>,
    depth: usize,
    needle: Option<&'a str>,
    found: &'a Cell<bool>,
}

impl Count<'_> {
    fn tick<E: de::Error>(self) -> Result<(), E> {
        match self.left.get().checked_sub(1) {
            Some(n) => {
                self.left.set(n);
                Ok(())
            }
            None => Err(E::custom(format_args!(
                "more than {MAX_VALUES} JSON values"
            ))),
        }
    }

    fn inner<E: de::Error>(self) -> Result<Self, E> {
        self.tick()?;
        if self.depth >= MAX_DEPTH {
            return Err(E::custom(format_args!(
                "JSON nested deeper than {MAX_DEPTH} levels"
            )));
        }
        Ok(Count {
            depth: self.depth + 1,
            ..self
        })
    }
}

impl<'de> DeserializeSeed<'de> for Count<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> de::Visitor<'de> for Count<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        self.tick()
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        self.tick()
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        self.tick()
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        self.tick()
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<(), E> {
        if self.needle.is_some_and(|n| s.contains(n)) {
            self.found.set(true);
        }
        self.tick()
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.tick()
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let inner = self.inner()?;
        while seq.next_element_seed(inner)?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let inner = self.inner()?;
        // A key is a string: counted, and searched, like one.
        while map.next_key_seed(inner)?.is_some() {
            map.next_value_seed(inner)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn ordinary_objects_pass() {
        let v: Value = decode(br#"{"a":[1,2.5,"x",null,true,{"b":{}}]} "#).unwrap();
        assert_eq!(v["a"][2], "x");
        assert!(check(br#"{"a":1} x"#).is_err(), "trailing text");
        assert!(check(b"").is_err());
    }

    #[test]
    fn too_many_values_are_refused_before_decoding() {
        let ok = format!("[{}0]", "0,".repeat(MAX_VALUES - 2));
        assert!(check(ok.as_bytes()).is_ok());
        let many = format!("[{}0]", "0,".repeat(MAX_VALUES - 1));
        let e = decode::<Value>(many.as_bytes()).unwrap_err();
        assert!(e.contains("more than 10000 JSON values"), "{e}");
        let keys: String = (0..MAX_VALUES).map(|i| format!("\"k{i}\":0,")).collect();
        assert!(check(format!("{{{keys}\"z\":0}}").as_bytes()).is_err());
    }

    #[test]
    fn serde_json_keeps_its_own_recursion_limit() {
        // No `unbounded_depth`: a decode that skipped our first pass would still stop at 128.
        let deep = format!("{}{}", "[".repeat(129), "]".repeat(129));
        let e = serde_json::from_slice::<Value>(deep.as_bytes()).unwrap_err();
        assert!(e.to_string().contains("recursion limit exceeded"), "{e}");
    }

    #[test]
    fn deep_nesting_is_refused_without_recursing_far() {
        let ok = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(check(ok.as_bytes()).is_ok());
        for depth in [MAX_DEPTH + 1, 200, 1 << 20] {
            let deep = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
            let e = check(deep.as_bytes()).unwrap_err();
            assert!(e.contains("nested deeper than 32"), "{e}");
            let objs = format!("{}{}", "{\"a\":".repeat(depth), "}".repeat(depth));
            assert!(check(objs.as_bytes()).is_err());
        }
    }
}
