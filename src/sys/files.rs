//! Opening a file for reading without ever blocking in `open(2)`: a FIFO with no writer
//! would otherwise hold the caller until one comes.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Opens `path` read-only with `O_NONBLOCK` (and `O_NOCTTY`), following symlinks. Callers
/// check what they got (`File::metadata`) before reading: a read from a FIFO or a device
/// may still block or never end, and `O_NONBLOCK` does not change a regular file's reads.
pub(crate) fn open_nonblocking(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
}
