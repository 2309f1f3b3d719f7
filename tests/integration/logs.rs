//! A `log` capture for tests that call the library in this process: every line logged, at
//! every level and by every crate, so a test can assert on what was (or was not) logged.

use std::sync::{Mutex, OnceLock};

struct Capture;

static LINES: Mutex<Vec<String>> = Mutex::new(Vec::new());

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata) -> bool {
        true
    }
    fn log(&self, record: &log::Record) {
        let line = format!("{} {}: {}", record.level(), record.target(), record.args());
        LINES.lock().unwrap_or_else(|p| p.into_inner()).push(line);
    }
    fn flush(&self) {}
}

/// Installs a logger that records every line (all levels, all crates) for this test binary.
pub fn capture_logs() {
    static INIT: OnceLock<()> = OnceLock::new();
    INIT.get_or_init(|| {
        let _ = log::set_logger(&Capture);
        log::set_max_level(log::LevelFilter::Trace);
    });
}

/// Every line logged so far by this test binary.
pub fn logged_lines() -> Vec<String> {
    LINES.lock().unwrap_or_else(|p| p.into_inner()).clone()
}
