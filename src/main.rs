//! `k8s-await-election CMD [ARGS...]`: argv and environment in, exit code out.
//! Everything else lives in the library; see [`k8s_await_election::app`].

fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let code = k8s_await_election::app::main(args, &|k| std::env::var(k).ok());
    std::process::exit(code);
}
