//! Reading a small file we are handed (the service-account token, CA bundle and namespace):
//! a regular file only, and at most a fixed number of bytes, so that a FIFO, a device such
//! as `/dev/zero` or a huge file is refused at once instead of hanging or filling memory.

use std::fmt;
use std::io::{self, Read};
use std::path::Path;

use crate::sys;

/// Why a small file could not be read.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// Opening, inspecting or reading it failed.
    Io(io::Error),
    /// It is not a regular file: what it is instead (`"a FIFO"`, `"a character device"`...).
    NotRegular(&'static str),
    /// It holds more than this many bytes.
    TooLarge(u64),
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::Io(e) => write!(f, "{e}"),
            ReadError::NotRegular(what) => write!(f, "it is {what}, not a regular file"),
            ReadError::TooLarge(limit) => write!(f, "it holds more than {limit} bytes"),
        }
    }
}

/// The contents of the regular file at `path` (symlinks followed), at most `limit` bytes.
/// Never blocks on a FIFO: the file is opened non-blocking and inspected before any read.
pub(crate) fn read(path: &Path, limit: u64) -> Result<Vec<u8>, ReadError> {
    let file = sys::open_nonblocking(path).map_err(ReadError::Io)?;
    let kind = file.metadata().map_err(ReadError::Io)?.file_type();
    if !kind.is_file() {
        return Err(ReadError::NotRegular(describe(kind)));
    }
    let mut raw = Vec::new();
    file.take(limit.saturating_add(1))
        .read_to_end(&mut raw)
        .map_err(ReadError::Io)?;
    if raw.len() as u64 > limit {
        return Err(ReadError::TooLarge(limit));
    }
    Ok(raw)
}

fn describe(kind: std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if kind.is_dir() {
        "a directory"
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else if kind.is_socket() {
        "a socket"
    } else {
        "not a file"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn regular_files_only_and_bounded() {
        let d = std::env::temp_dir().join(format!("kube-small-file-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        let p = d.join("f");
        fs::write(&p, b"12345").unwrap();
        assert_eq!(read(&p, 5).unwrap(), b"12345");
        assert!(matches!(read(&p, 4), Err(ReadError::TooLarge(4))));
        let link = d.join("zero");
        std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
        assert!(matches!(
            read(&link, 10),
            Err(ReadError::NotRegular("a character device"))
        ));
        assert!(matches!(
            read(&d, 10),
            Err(ReadError::NotRegular("a directory"))
        ));
        assert!(matches!(
            read(&d.join("missing"), 10),
            Err(ReadError::Io(_))
        ));
        fs::remove_dir_all(&d).unwrap();
    }
}
