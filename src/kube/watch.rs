//! Watch streams: newline-delimited JSON events ([`WatchEvent`]) read from a long GET, each
//! line bounded in size (`json::MAX_BODY`) and checked by the bounded first pass of `json`
//! before it is decoded, the whole stream bounded by a deadline. Events are decoded straight
//! into their types: the object stays raw text until it is decoded as `T`, a `Status` or a
//! bookmark's resourceVersion. Errors pass through [`Client::redact`]. See [`Client::watch`].

use std::fmt;
use std::io::{self, BufRead, BufReader, Read};
use std::marker::PhantomData;
use std::time::Instant;

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::value::RawValue;
use ureq::BodyReader;

use super::client::Client;
use super::error::{self, Error, Status};
use super::json::{self, MAX_BODY};

/// Largest single watch event line: the bound of a response body.
const MAX_WATCH_EVENT: u64 = MAX_BODY;

/// One event of a watch stream.
#[derive(Debug, Clone, PartialEq)]
pub enum WatchEvent<T> {
    /// The object was created (or, at the start of a watch without a resourceVersion, exists).
    Added(T),
    /// The object was changed.
    Modified(T),
    /// The object was deleted; its last state.
    Deleted(T),
    /// The server's progress marker: resume a later watch from this resourceVersion.
    Bookmark {
        /// The resourceVersion to resume from.
        resource_version: String,
    },
}

/// A watch: newline-delimited JSON events. See [`Client::watch`].
pub struct WatchStream<T> {
    reader: BufReader<BodyReader<'static>>,
    deadline: Instant,
    done: bool,
    path: String,
    client: Client,
    _marker: PhantomData<fn() -> T>,
}

impl<T> fmt::Debug for WatchStream<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WatchStream")
            .field("path", &self.path)
            .field("deadline", &self.deadline)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl<T> WatchStream<T> {
    /// A stream reading the events of the watch on `path` from `reader` until `deadline`.
    pub(super) fn new(
        reader: BodyReader<'static>,
        deadline: Instant,
        path: String,
        client: Client,
    ) -> WatchStream<T> {
        WatchStream {
            reader: BufReader::new(reader),
            deadline,
            done: false,
            path,
            client,
            _marker: PhantomData,
        }
    }
}

/// One line of the stream, its object still raw JSON text (unknown members skipped).
#[derive(Deserialize)]
struct RawEvent<'a> {
    #[serde(rename = "type")]
    kind: String,
    #[serde(borrow, default)]
    object: Option<&'a RawValue>,
}

/// What we read of a BOOKMARK's object.
#[derive(Deserialize)]
struct Bookmark {
    metadata: BookmarkMeta,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BookmarkMeta {
    resource_version: String,
}

impl<T: DeserializeOwned> WatchStream<T> {
    fn next_event(&mut self) -> Option<Result<WatchEvent<T>, Error>> {
        if Instant::now() >= self.deadline {
            return Some(Err(Error::Timeout));
        }
        let client = &self.client;
        let event = next_event(
            &mut self.reader,
            |e| client.map_io(e, self.deadline),
            |line| client.refuse_echo(line),
        );
        if event.is_none() {
            log::debug!("watch {} closed by the server", self.path);
        }
        event.map(|r| {
            r.map_err(|e| match e {
                Error::Decode(m) => Error::Decode(format!("watch on {}: {m}", self.path)),
                e => e,
            })
        })
    }
}

/// Reads and decodes the next event of a watch stream from `reader`: `None` at the end of
/// the stream, blank lines skipped, each line at most `MAX_WATCH_EVENT` bytes (a longer one
/// is an error as soon as that many bytes arrived without a newline). `io_error` maps read
/// failures; `check` may refuse a line before it is decoded.
fn next_event<T: DeserializeOwned>(
    reader: &mut impl BufRead,
    io_error: impl Fn(io::Error) -> Error,
    check: impl Fn(&[u8]) -> Result<(), Error>,
) -> Option<Result<WatchEvent<T>, Error>> {
    loop {
        let mut line = Vec::new();
        match reader.take(MAX_WATCH_EVENT).read_until(b'\n', &mut line) {
            Ok(0) => return None,
            Ok(_) => {}
            Err(e) => return Some(Err(io_error(e))),
        }
        if line.last() != Some(&b'\n') && line.len() as u64 >= MAX_WATCH_EVENT {
            return Some(Err(Error::Decode(format!(
                "a watch event is larger than {MAX_WATCH_EVENT} bytes"
            ))));
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        return Some(check(&line).and_then(|()| decode_event(&line)));
    }
}

/// The events of a whole watch stream held in `bytes`, up to and including the first error,
/// read exactly as [`Client::watch`] reads them (for fuzzing).
#[doc(hidden)]
pub fn events_of<T: DeserializeOwned>(bytes: &[u8]) -> Vec<Result<WatchEvent<T>, Error>> {
    let mut reader = bytes;
    let mut out = Vec::new();
    let io_error = |e: io::Error| Error::Transport(e.to_string());
    while let Some(event) = next_event(&mut reader, io_error, |_| Ok(())) {
        let failed = event.is_err();
        out.push(event);
        if failed {
            break;
        }
    }
    out
}

/// Decodes one watch-event line (after the bounded first pass of `json`).
fn decode_event<T: DeserializeOwned>(line: &[u8]) -> Result<WatchEvent<T>, Error> {
    let raw: RawEvent = json::check(line)
        .and_then(|()| serde_json::from_slice(line).map_err(|e| e.to_string()))
        .map_err(|e| Error::Decode(format!("a watch event is not a JSON event ({e})")))?;
    let text = raw.object.map_or("null", RawValue::get);
    let object = || {
        serde_json::from_str::<T>(text).map_err(|e| {
            Error::Decode(format!(
                "the object of a {} watch event is not the expected kind: {e}",
                raw.kind
            ))
        })
    };
    match raw.kind.as_str() {
        "ADDED" => Ok(WatchEvent::Added(object()?)),
        "MODIFIED" => Ok(WatchEvent::Modified(object()?)),
        "DELETED" => Ok(WatchEvent::Deleted(object()?)),
        "BOOKMARK" => {
            let b: Bookmark = serde_json::from_str(text).map_err(|_| {
                Error::Decode("BOOKMARK watch event without metadata.resourceVersion".into())
            })?;
            Ok(WatchEvent::Bookmark {
                resource_version: b.metadata.resource_version,
            })
        }
        "ERROR" => {
            let status: Status = serde_json::from_str(text).unwrap_or_default();
            let code = status.code.unwrap_or(500);
            Err(error::from_status(code, &status, text.as_bytes(), None))
        }
        other => Err(Error::Decode(format!("unknown watch event type {other:?}"))),
    }
}

impl<T: DeserializeOwned> Iterator for WatchStream<T> {
    type Item = Result<WatchEvent<T>, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let item = self.next_event();
        if !matches!(item, Some(Ok(_))) {
            self.done = true;
        }
        item.map(|r| r.map_err(|e| self.client.redact(e, None)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn watch_events_decode() {
        let e: WatchEvent<Value> =
            decode_event(br#"{"type":"MODIFIED","object":{"metadata":{"name":"a"}}}"#).unwrap();
        assert!(matches!(e, WatchEvent::Modified(v) if v["metadata"]["name"] == "a"));
        let e: WatchEvent<Value> = decode_event(
            br#"{"type":"BOOKMARK","object":{"kind":"Lease","metadata":{"resourceVersion":"42"}}}"#,
        )
        .unwrap();
        assert_eq!(
            e,
            WatchEvent::Bookmark {
                resource_version: "42".into()
            }
        );
        let e = decode_event::<Value>(
            br#"{"type":"ERROR","object":{"kind":"Status","status":"Failure","message":"too old resource version: 1 (5)","reason":"Expired","code":410}}"#,
        )
        .unwrap_err();
        assert_eq!(e, Error::Gone("too old resource version: 1 (5)".into()));
        assert!(matches!(
            decode_event::<Value>(b"not json"),
            Err(Error::Decode(_))
        ));
        assert!(matches!(
            decode_event::<Value>(br#"{"type":"WHAT","object":{}}"#),
            Err(Error::Decode(_))
        ));
    }

    #[test]
    fn a_stream_is_read_line_by_line_within_the_bounds() {
        let ev = br#"{"type":"BOOKMARK","object":{"kind":"Lease","metadata":{"resourceVersion":"7"},"x":[1,2]}}"#;
        let mut stream = Vec::new();
        for _ in 0..1000 {
            stream.extend_from_slice(ev);
            stream.extend_from_slice(b"\n\n");
        }
        let events = events_of::<Value>(&stream);
        assert_eq!(events.len(), 1000);
        assert!(events.iter().all(|e| e.as_ref().is_ok_and(|e| *e
            == WatchEvent::Bookmark {
                resource_version: "7".into()
            })));
        // A line that reaches the bound without a newline is an error without reading on.
        let mut long = b"{\"type\":\"ADDED\",\"object\":\"".to_vec();
        long.resize(MAX_WATCH_EVENT as usize + 10, b'a');
        let events = events_of::<Value>(&long);
        assert!(
            matches!(&events[..], [Err(Error::Decode(m))] if m.contains("larger than")),
            "{events:?}"
        );
        // Too deep or too many values: refused by the first pass.
        let deep = format!(
            r#"{{"type":"ADDED","object":{{"a":{}{}}}}}"#,
            "[".repeat(100),
            "]".repeat(100)
        );
        let many = format!(
            r#"{{"type":"ADDED","object":[{}0]}}"#,
            "0,".repeat(json::MAX_VALUES)
        );
        for (line, why) in [(deep, "nested deeper"), (many, "JSON values")] {
            let events = events_of::<Value>(format!("{line}\n").as_bytes());
            assert!(
                matches!(&events[..], [Err(Error::Decode(m))] if m.contains(why)),
                "{events:?}"
            );
        }
        // The stream stops at the first error.
        let events = events_of::<Value>(b"nonsense\n{\"type\":\"BOOKMARK\"}\n");
        assert_eq!(events.len(), 1);
    }
}
