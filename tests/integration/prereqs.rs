//! What some tests need from the machine — root, PID namespaces, the static release binary, a
//! static busybox — and how a missing piece is reported: a printed skip for a developer's plain
//! `cargo test`, a failure where the suite must be complete (`CI` or `REQUIRE_STATIC` set, as
//! scripts/test.sh does). The client-go peer of the `interop` tests (needs Go) is the one
//! exception: missing, it fails only under `CI` ([`crate::interop::peer_or_skip`]).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// `Some(value)` when a prerequisite of `test` is met; otherwise `None` after a printed skip
/// naming `test` and the reason, or a panic where the suite must be complete.
pub fn require<T>(test: &str, prerequisite: Result<T, String>) -> Option<T> {
    match prerequisite {
        Ok(value) => Some(value),
        Err(reason) => {
            if std::env::var_os("CI").is_some() || std::env::var_os("REQUIRE_STATIC").is_some() {
                panic!("{test}: {reason}");
            }
            eprintln!("SKIPPED {test}: {reason}; scripts/test.sh runs it");
            None
        }
    }
}

/// Whether this process runs as root.
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

/// `Ok` when `unshare --pid --fork --mount-proc` works here (root, util-linux present);
/// otherwise the reason.
pub fn pid_namespace_support() -> Result<(), String> {
    match Command::new("unshare")
        .args(["--pid", "--fork", "--mount-proc", "true"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
    {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => Err(format!(
            "needs a new PID namespace as root: `unshare --pid --fork --mount-proc true` failed \
             ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Err(err) => Err(format!(
            "needs a new PID namespace as root: cannot run unshare: {err}"
        )),
    }
}

/// The static release binary built by scripts/build-static.sh, or why it is not there.
pub fn static_binary() -> Result<PathBuf, String> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    let bin = target.join("x86_64-unknown-linux-gnu/release/k8s-await-election");
    if !bin.exists() {
        return Err(format!(
            "{} is missing (scripts/build-static.sh)",
            bin.display()
        ));
    }
    let mut head = [0u8; 4];
    std::fs::File::open(&bin)
        .and_then(|mut f| f.read_exact(&mut head))
        .expect("read binary");
    assert_eq!(&head, b"\x7fELF", "{}", bin.display());
    Ok(bin)
}

/// A static busybox at `/bin/busybox` (a stand-in CMD for the scratch-image tests), or why
/// there is none.
pub fn static_busybox() -> Result<&'static Path, String> {
    const BUSYBOX: &str = "/bin/busybox";
    if std::fs::read(BUSYBOX).is_ok_and(|b| is_static_elf(&b)) {
        Ok(Path::new(BUSYBOX))
    } else {
        Err(format!(
            "no static {BUSYBOX} (apt-get install busybox-static)"
        ))
    }
}

/// True for a 64-bit little-endian ELF file without a program interpreter (`PT_INTERP`), i.e.
/// one that needs no dynamic loader.
fn is_static_elf(b: &[u8]) -> bool {
    let u16_at = |o: usize| {
        b.get(o..o + 2)
            .map(|x| u16::from_le_bytes([x[0], x[1]]) as usize)
    };
    let u64_at = |o: usize| {
        b.get(o..o + 8)
            .and_then(|x| x.try_into().ok())
            .map(|x: [u8; 8]| u64::from_le_bytes(x) as usize)
    };
    if b.get(..5) != Some(b"\x7fELF\x02") {
        return false;
    }
    let (Some(phoff), Some(phentsize), Some(phnum)) = (u64_at(0x20), u16_at(0x36), u16_at(0x38))
    else {
        return false;
    };
    (0..phnum).all(|i| {
        let at = phoff + i * phentsize;
        b.get(at..at + 4) != Some(&3u32.to_le_bytes()[..])
    })
}
