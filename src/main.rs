//! `k8s-await-election CMD [ARGS...]`: argv and environment in, exit code out.
//! Everything else lives in the library; see [`k8s_await_election::app`].
//!
//! The program starts at the C `main`, not at Rust's runtime entry (`no_main`). That entry
//! would, before our first line runs, put a SIGSEGV handler on an alternate stack and read
//! `/proc/self/maps` to find the stack guard (the price: a stack overflow is a plain SIGSEGV,
//! without Rust's message). Leaving it out also leaves its code out of the binary. The two
//! things of it we do need, open descriptors 0–2 and an ignored SIGPIPE, are the first thing
//! `app::main` does (`supervisor::init_process`). `std::env::args_os` still works: glibc
//! passes argv to std's initialiser before `main`.
#![no_main]

use std::ffi::{c_char, c_int};

// The C library calls `main` by its unmangled name; `no_mangle` is the one `unsafe` attribute
// outside `sys` (two functions with that name would clash at link time; there is one).
#[allow(unsafe_code)]
#[no_mangle]
extern "C" fn main(_argc: c_int, _argv: *const *const c_char) -> c_int {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let code = k8s_await_election::app::main(args, &|k| std::env::var_os(k));
    // Not `return`: std flushes its stdout buffer in `process::exit`, while returning from a C
    // `main` only runs the C library's exit handlers.
    std::process::exit(code);
}
