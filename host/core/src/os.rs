//! Small operating-system helpers that several layers need: whether a process is alive (the journal,
//! the local daemon's handle) and writing a file so a crash never leaves half of it (the component
//! cache, the simulator's kept fleet, the daemon's address file).

use std::io;
use std::path::Path;

/// Whether process `pid` exists. Signal 0 checks without sending anything; EPERM still means it exists.
pub fn process_alive(pid: u32) -> bool {
    if pid == std::process::id() {
        return true;
    }
    let r = unsafe { libc::kill(pid as libc::pid_t, 0) };
    r == 0 || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Write `bytes` to `path` via a temporary file beside it and a rename, creating the directory if
/// needed: readers see the old file or the new one, never a partial one.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name().unwrap_or_default().to_string_lossy(),
        std::process::id()
    ));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}
