use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::{create_private_dir, Result, StateError};

/// An exclusive advisory lock on one file (flock). The kernel drops it when
/// the holder's file descriptor closes, so a process that crashes or is
/// killed cannot leave it stuck: the next den simply gets it.
#[derive(Debug)]
pub struct Lock {
    file: File,
    path: PathBuf,
}

/// Told to the caller when the lock is held by someone else, before waiting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockWait {
    /// The pid the holder wrote into the lock file, when readable.
    pub holder: Option<u32>,
}

impl Lock {
    /// Takes the lock, waiting for the current holder if there is one.
    /// `on_wait` is called once, before blocking, so the caller can tell the
    /// user why nothing happens.
    pub fn acquire(path: &Path, on_wait: impl FnOnce(LockWait)) -> Result<Self> {
        if let Some(dir) = path.parent() {
            create_private_dir(dir)?;
        }
        let mut on_wait = Some(on_wait);
        // The holder may remove the file before it lets go (`remove`): a
        // waiter that then gets the lock of a file no longer at `path`
        // tries again on the file that is there now. Bounded: each round
        // needs another holder to remove the file under it.
        for _ in 0..64 {
            let mut file = open(path)?;
            match file.try_lock() {
                Ok(()) => {}
                Err(TryLockError::WouldBlock) => {
                    let mut s = String::new();
                    let _ = file.read_to_string(&mut s);
                    if let Some(f) = on_wait.take() {
                        f(LockWait { holder: s.trim().parse().ok() });
                    }
                    file.lock().map_err(StateError::io("locking", path))?;
                }
                Err(TryLockError::Error(e)) => return Err(StateError::io("locking", path)(e)),
            }
            if !is_current(&file, path) {
                continue;
            }
            // Record who holds it, for the message a waiter prints.
            let _ = file.set_len(0);
            let _ = file.rewind();
            let _ = write!(file, "{}", std::process::id());
            let _ = file.flush();
            return Ok(Lock { file, path: path.to_path_buf() });
        }
        Err(StateError::io("locking", path)(std::io::Error::other("the lock file keeps being replaced")))
    }

    /// Removes the lock file while holding the lock (for a workspace that no
    /// longer exists); a den waiting on it tries again on a new file.
    pub fn remove(self) {
        let _ = std::fs::remove_file(&self.path);
    }

    /// Takes the lock only if it is free right now.
    pub fn try_acquire(path: &Path) -> Result<Option<Self>> {
        if let Some(dir) = path.parent() {
            create_private_dir(dir)?;
        }
        let file = open(path)?;
        match file.try_lock() {
            Ok(()) if is_current(&file, path) => Ok(Some(Lock { file, path: path.to_path_buf() })),
            // Removed under us by the holder: it was busy a moment ago.
            Ok(()) => Ok(None),
            Err(TryLockError::WouldBlock) => Ok(None),
            Err(TryLockError::Error(e)) => Err(StateError::io("locking", path)(e)),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn open(path: &Path) -> Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map_err(StateError::io("opening lock", path))
}

/// True when `file` is still the file at `path` (not removed or replaced).
fn is_current(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        let _ = self.file.set_len(0);
        let _ = self.file.unlock();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    #[test]
    fn a_lock_removed_by_its_holder_is_taken_anew_by_the_waiter() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("locks/ws.lock");
        let first = Lock::acquire(&p, |_| {}).unwrap();
        let (done, finished) = mpsc::channel();
        let p2 = p.clone();
        let waiter = std::thread::spawn(move || {
            let l = Lock::acquire(&p2, |_| {}).unwrap();
            done.send(()).unwrap();
            // Not free for a third taker while this one holds it.
            assert!(Lock::try_acquire(&p2).unwrap().is_none());
            drop(l);
        });
        std::thread::sleep(Duration::from_millis(100));
        first.remove();
        finished.recv_timeout(Duration::from_secs(10)).expect("waiter gets a lock");
        waiter.join().unwrap();
        assert!(p.exists(), "the waiter's lock file is in place");
    }

    #[test]
    fn second_taker_waits_until_the_first_lets_go() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("locks/ws.lock");
        let first = Lock::acquire(&p, |_| panic!("free lock must not wait")).unwrap();
        assert!(Lock::try_acquire(&p).unwrap().is_none());

        let (told, heard) = mpsc::channel();
        let (done, finished) = mpsc::channel();
        let p2 = p.clone();
        let waiter = std::thread::spawn(move || {
            let l = Lock::acquire(&p2, |w| told.send(w).unwrap()).unwrap();
            done.send(()).unwrap();
            drop(l);
        });
        let wait = heard.recv_timeout(Duration::from_secs(10)).expect("waiter is told");
        assert_eq!(wait.holder, Some(std::process::id()));
        assert!(finished.recv_timeout(Duration::from_millis(200)).is_err(), "waiter must block");
        drop(first);
        finished.recv_timeout(Duration::from_secs(10)).expect("waiter gets the lock");
        waiter.join().unwrap();
    }
}

#[cfg(test)]
mod crash_tests {
    use super::*;
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    /// A holder that is killed (no chance to clean up) does not leave the
    /// lock stuck. The holder is a real separate process using flock(1).
    #[test]
    fn killed_holder_releases_the_lock() {
        if Command::new("flock").arg("--version").output().is_err() {
            eprintln!("skipped: flock(1) is not installed");
            return;
        }
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("ws.lock");
        std::fs::write(&p, b"").unwrap();
        // -o: the child `sleep` does not inherit the locked fd; flock(1) holds it.
        let mut holder =
            Command::new("flock").arg("-o").arg(&p).args(["sleep", "30"]).stdout(Stdio::null()).spawn().unwrap();
        // Wait (bounded) until the holder has it.
        let start = Instant::now();
        while Lock::try_acquire(&p).unwrap().is_some() {
            assert!(start.elapsed() < Duration::from_secs(10), "holder never took the lock");
            std::thread::sleep(Duration::from_millis(20));
        }
        holder.kill().unwrap();
        holder.wait().unwrap();
        let got = Lock::acquire(&p, |_| {}).unwrap();
        assert_eq!(got.path(), p);
    }
}
