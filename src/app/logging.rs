//! Log set-up: one line per event on stderr, `RUST_LOG` filters, token-leaking targets muted.

use std::io::Write;

use crate::kube;
use crate::logsink::QueueWriter;
use crate::timefmt;

/// The variable holding the log filter.
pub(super) const FILTER_ENV: &str = "RUST_LOG";

/// One line per event on stderr: `<time> <LEVEL> k8s-await-election: <message>`. `RUST_LOG`
/// overrides the default level `info`. With `queue`, lines go through it (election mode:
/// logging must never block, see [`crate::logsink`]); otherwise they are written directly.
pub(super) fn init(env: &dyn Fn(&str) -> Option<String>, queue: Option<QueueWriter>) {
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
    builder.format(|buf, record| {
        writeln!(
            buf,
            "{} {:<5} k8s-await-election: {}",
            timefmt::log_time(std::time::SystemTime::now()),
            record.level(),
            record.args()
        )
    });
    // Only fails if a logger is already set (tests calling main twice): keep that one.
    let _ = builder.try_init();
}
