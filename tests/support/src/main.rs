//! Standalone `test-apiserver` for demos and benchmarks:
//! `test-apiserver --sa-dir DIR [--port N] [--token TOKEN]... [--namespace NS]... [--request-log FILE] [--ipv6]`
//! writes the service-account dir with the first token (and the first namespace; every
//! `--namespace` exists, besides `default` and the other built-in ones), prints `listening https://127.0.0.1:PORT`
//! and serves until killed (or until stdin closes when `--exit-on-stdin-eof` is given).

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use test_apiserver::{ApiServer, Options};

const USAGE: &str = "usage: test-apiserver --sa-dir DIR [--port N] [--token TOKEN]... [--namespace NS]... [--request-log FILE] [--ipv6] [--exit-on-stdin-eof]";

struct Args {
    sa_dir: PathBuf,
    port: u16,
    tokens: Vec<String>,
    namespace: String,
    /// Every `--namespace` (the first one is the service account's).
    namespaces: Vec<String>,
    request_log: Option<PathBuf>,
    ipv6: bool,
    stdin_eof: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut sa_dir = None;
    let mut port = 0u16;
    let mut tokens = Vec::new();
    let mut namespaces: Vec<String> = Vec::new();
    let mut request_log = None;
    let mut ipv6 = false;
    let mut stdin_eof = false;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        match a.as_str() {
            "--sa-dir" => sa_dir = Some(PathBuf::from(value("--sa-dir")?)),
            "--port" => {
                port = value("--port")?
                    .parse()
                    .map_err(|e| format!("--port: {e}"))?
            }
            "--token" => tokens.push(value("--token")?),
            "--namespace" => namespaces.push(value("--namespace")?),
            "--request-log" => request_log = Some(PathBuf::from(value("--request-log")?)),
            "--ipv6" => ipv6 = true,
            "--exit-on-stdin-eof" => stdin_eof = true,
            "-h" | "--help" => return Err(USAGE.to_string()),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    let sa_dir = sa_dir.ok_or(format!("--sa-dir is required\n{USAGE}"))?;
    if tokens.is_empty() {
        tokens.push("test-token".to_string());
    }
    let namespace = namespaces
        .first()
        .cloned()
        .unwrap_or_else(|| "default".to_string());
    Ok(Args {
        sa_dir,
        port,
        tokens,
        namespace,
        namespaces,
        request_log,
        ipv6,
        stdin_eof,
    })
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    if let Some(parent) = args.request_log.as_deref().and_then(|p| p.parent()) {
        let _ = std::fs::create_dir_all(parent);
    }
    let opts = Options {
        ipv6: args.ipv6,
        request_log_file: args.request_log.clone(),
    };
    let server = match ApiServer::start_on(opts, args.port) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("test-apiserver: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    for ns in &args.namespaces {
        server.add_namespace(ns);
    }
    for (i, t) in args.tokens.iter().enumerate() {
        server.add_token(
            t,
            &format!("system:serviceaccount:{}:replica-{}", args.namespace, i + 1),
        );
    }
    if let Err(e) = server.write_service_account_dir(&args.sa_dir, &args.tokens[0], &args.namespace)
    {
        eprintln!(
            "test-apiserver: cannot write {}: {e}",
            args.sa_dir.display()
        );
        return ExitCode::FAILURE;
    }
    let mut out = std::io::stdout();
    let _ = writeln!(out, "listening {}", server.url());
    if let Some(u) = server.url_v6() {
        let _ = writeln!(out, "listening {u}");
    }
    let _ = out.flush();
    if args.stdin_eof {
        let mut sink = Vec::new();
        let _ = std::io::stdin().read_to_end(&mut sink);
        return ExitCode::SUCCESS;
    }
    loop {
        std::thread::park();
    }
}
