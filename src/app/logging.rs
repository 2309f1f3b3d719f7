//! Log set-up and line formats: one line per record on stderr, as text (the default) or as
//! one JSON object (`K8S_AWAIT_ELECTION_LOG_FORMAT=json`); `RUST_LOG` filters; token-leaking
//! targets muted.
//!
//! Every message is escaped before it is written: text that came from the API server (a
//! holder identity, a Status message) or from anywhere else may hold newlines or terminal
//! escape codes, and must not forge a second log line or drive the reader's terminal.

use std::fmt::Write as _;
use std::io::Write;

use crate::config::{self, LogFormat};
use crate::kube;
use crate::logsink::QueueWriter;
use crate::timefmt;

/// The variable holding the log filter.
pub(super) const FILTER_ENV: &str = "RUST_LOG";

/// Fields every JSON line of an election carries.
#[derive(Debug, Clone, Default)]
pub(super) struct Context {
    /// `<namespace>/<name>` of the Lease.
    pub lease: String,
    /// This replica's identity.
    pub identity: String,
}

/// The log format the environment asks for; an invalid value (reported by the configuration)
/// means text.
pub(super) fn format_from_env(env: &dyn Fn(&str) -> Option<String>) -> LogFormat {
    config::log_format(env(config::LOG_FORMAT).as_deref()).unwrap_or_default()
}

/// One line per record on stderr: `<time> <LEVEL> k8s-await-election: <message>`, or a JSON
/// object with `ts`, `level`, `msg`, the `context` fields and the record's own key-values.
/// `RUST_LOG` overrides the default level `info`. With `queue`, lines go through it (election
/// mode: logging must never block, see [`crate::logsink`]); otherwise they are written
/// directly.
pub(super) fn init(
    env: &dyn Fn(&str) -> Option<String>,
    queue: Option<QueueWriter>,
    context: Option<Context>,
) {
    let format = format_from_env(env);
    let mut builder = env_logger::Builder::new();
    if let Some(q) = queue {
        builder.target(env_logger::Target::Pipe(Box::new(q)));
    }
    builder.filter_level(log::LevelFilter::Info);
    if let Some(spec) = env(FILTER_ENV).filter(|s| !s.is_empty()) {
        builder.parse_filters(&spec);
    }
    // Some HTTP internals hex-dump raw requests (bearer token included) at trace level and
    // narrate every request at debug: keep them at warnings whatever RUST_LOG says, so the
    // token never reaches a log. (Release builds compile trace logging out entirely.)
    for target in kube::TOKEN_LEAKING_LOG_TARGETS {
        builder.filter_module(target, log::LevelFilter::Warn);
    }
    let context = context.unwrap_or_default();
    builder.format(move |buf, record| {
        let now = std::time::SystemTime::now();
        let line = match format {
            LogFormat::Text => text_line(&timefmt::log_time(now), record),
            LogFormat::Json => json_line(&timefmt::log_time(now), record, &context),
        };
        buf.write_all(line.as_bytes())
    });
    // Only fails if a logger is already set (tests calling main twice): keep that one.
    let _ = builder.try_init();
}

/// The note the log writer puts where lines were dropped, in `format`.
pub(super) fn drop_note(format: LogFormat) -> fn(u64) -> String {
    match format {
        LogFormat::Text => |n| {
            format!("k8s-await-election: {n} log line(s) dropped here: stderr was not being read\n")
        },
        LogFormat::Json => |n| {
            let ts = timefmt::log_time(std::time::SystemTime::now());
            format!("{{\"ts\":\"{ts}\",\"level\":\"WARN\",\"msg\":\"{n} log line(s) dropped here: stderr was not being read\",\"dropped\":{n}}}\n")
        },
    }
}

/// `<ts> <LEVEL> k8s-await-election: <escaped message>\n`
fn text_line(ts: &str, record: &log::Record<'_>) -> String {
    let mut line = format!("{ts} {:<5} k8s-await-election: ", record.level());
    escape_into(&mut line, &record.args().to_string(), false);
    line.push('\n');
    line
}

/// `{"ts":…,"level":…,"msg":…,"lease":…,"identity":…,<record's key-values>}\n`
fn json_line(ts: &str, record: &log::Record<'_>, context: &Context) -> String {
    let mut line = String::from("{\"ts\":");
    json_string(&mut line, ts);
    line.push_str(",\"level\":");
    json_string(&mut line, record.level().as_str());
    line.push_str(",\"msg\":");
    json_string(&mut line, &record.args().to_string());
    for (key, value) in [("lease", &context.lease), ("identity", &context.identity)] {
        if !value.is_empty() {
            let _ = write!(line, ",\"{key}\":");
            json_string(&mut line, value);
        }
    }
    let mut fields = JsonFields(&mut line);
    let _ = record.key_values().visit(&mut fields);
    line.push_str("}\n");
    line
}

/// Appends a record's key-values as JSON members: numbers as numbers, the rest as strings.
struct JsonFields<'a>(&'a mut String);

impl<'kvs> log::kv::VisitSource<'kvs> for JsonFields<'_> {
    fn visit_pair(
        &mut self,
        key: log::kv::Key<'kvs>,
        value: log::kv::Value<'kvs>,
    ) -> Result<(), log::kv::Error> {
        self.0.push(',');
        json_string(self.0, key.as_str());
        self.0.push(':');
        if let Some(n) = value.to_i64() {
            let _ = write!(self.0, "{n}");
        } else {
            json_string(self.0, value.to_borrowed_str().unwrap_or_default());
        }
        Ok(())
    }
}

/// Appends `s` as a JSON string literal with every control character escaped.
fn json_string(out: &mut String, s: &str) {
    out.push('"');
    escape_into(out, s, true);
    out.push('"');
}

/// Appends `s` with control characters (C0, DEL, C1) and the Unicode line and paragraph
/// separators escaped (`\n`, `\r`, `\t`, else `\u001b`), so it can neither end the line nor
/// reach a terminal as a control sequence. With `json`, `"` and `\` are escaped too.
fn escape_into(out: &mut String, s: &str, json: bool) {
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '"' | '\\' if json => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() || c == '\u{2028}' || c == '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record_line(json: bool, msg: &str) -> String {
        let args = format_args!("{msg}");
        let kvs: &[(&str, i64)] = &[("pid", 42)];
        let record = log::Record::builder()
            .args(args)
            .level(log::Level::Warn)
            .key_values(&kvs)
            .build();
        let ctx = Context {
            lease: "ns/lock".into(),
            identity: "pod-0".into(),
        };
        if json {
            json_line("2026-01-01T00:00:00.000Z", &record, &ctx)
        } else {
            text_line("2026-01-01T00:00:00.000Z", &record)
        }
    }

    #[test]
    fn forged_lines_stay_one_line_in_both_formats() {
        let hostile = "new leader: evil\n2026-01-01T00:00:00.000Z INFO  k8s-await-election: became leader\u{1b}[2J\u{9b}\u{2028}\"}";
        let text = record_line(false, hostile);
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(text.contains("evil\\n2026"), "{text}");
        assert!(text.contains("\\u001b[2J\\u009b\\u2028"), "{text}");
        let json = record_line(true, hostile);
        assert_eq!(json.lines().count(), 1, "{json}");
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["msg"], hostile);
        assert_eq!(v["level"], "WARN");
        assert_eq!(v["pid"], 42);
        assert_eq!(v["lease"], "ns/lock");
        assert_eq!(v["identity"], "pod-0");
        assert!(!json.contains('\u{1b}') && !json.contains('\u{9b}'));
    }

    #[test]
    fn the_json_drop_note_parses() {
        let note = drop_note(LogFormat::Json)(7);
        let v: serde_json::Value = serde_json::from_str(&note).unwrap();
        assert_eq!(v["dropped"], 7);
    }
}
