//! Watch streams: newline-delimited JSON events ([`WatchEvent`]) read from a long GET, each
//! line bounded in size and the whole stream by a deadline. See [`Client::watch`].

use std::fmt;
use std::io::{BufRead, BufReader, Read};
use std::marker::PhantomData;
use std::time::Instant;

use serde::de::DeserializeOwned;
use serde::Deserialize;
use ureq::BodyReader;

use super::client::{preview, Client};
use super::error::{self, Error, Status};

/// Largest single watch event line.
const MAX_WATCH_EVENT: u64 = 16 * 1024 * 1024;

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

/// One line of the stream before its object is decoded as `T`.
#[derive(Deserialize)]
struct RawEvent {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    object: serde_json::Value,
}

impl<T: DeserializeOwned> WatchStream<T> {
    fn next_event(&mut self) -> Option<Result<WatchEvent<T>, Error>> {
        loop {
            if Instant::now() >= self.deadline {
                return Some(Err(Error::Timeout));
            }
            let mut line = Vec::new();
            let read = (&mut self.reader)
                .take(MAX_WATCH_EVENT)
                .read_until(b'\n', &mut line);
            match read {
                Ok(0) => {
                    log::debug!("watch {} closed by the server", self.path);
                    return None;
                }
                Ok(_) => {}
                Err(e) => return Some(Err(self.client.map_io(e, self.deadline))),
            }
            if line.last() != Some(&b'\n') && line.len() as u64 >= MAX_WATCH_EVENT {
                return Some(Err(Error::Decode(format!(
                    "a watch event on {} is larger than {MAX_WATCH_EVENT} bytes",
                    self.path
                ))));
            }
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            return Some(decode_event(&line));
        }
    }
}

fn decode_event<T: DeserializeOwned>(line: &[u8]) -> Result<WatchEvent<T>, Error> {
    let raw: RawEvent = serde_json::from_slice(line).map_err(|e| {
        Error::Decode(format!(
            "watch event is not JSON ({e}); starts with {:?}",
            preview(line)
        ))
    })?;
    let object = |o: serde_json::Value| {
        serde_json::from_value::<T>(o).map_err(|e| {
            Error::Decode(format!(
                "the object of a {} watch event is not the expected kind: {e}",
                raw.kind
            ))
        })
    };
    match raw.kind.as_str() {
        "ADDED" => Ok(WatchEvent::Added(object(raw.object.clone())?)),
        "MODIFIED" => Ok(WatchEvent::Modified(object(raw.object.clone())?)),
        "DELETED" => Ok(WatchEvent::Deleted(object(raw.object.clone())?)),
        "BOOKMARK" => {
            let rv = raw
                .object
                .pointer("/metadata/resourceVersion")
                .and_then(|v| v.as_str())
                .ok_or_else(|| {
                    Error::Decode("BOOKMARK watch event without metadata.resourceVersion".into())
                })?;
            Ok(WatchEvent::Bookmark {
                resource_version: rv.to_string(),
            })
        }
        "ERROR" => {
            let status: Status = serde_json::from_value(raw.object.clone()).unwrap_or_default();
            let code = status.code.unwrap_or(500);
            let body = serde_json::to_vec(&raw.object).unwrap_or_default();
            Err(error::from_status(code, &status, &body, None))
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
        item
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
}
