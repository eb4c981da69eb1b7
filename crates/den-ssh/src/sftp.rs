//! The `sftp` subsystem: a file server on stdin/stdout, run by the agent as
//! a subprocess of the session's user (so files get that user's owner and
//! permissions, as with OpenSSH's sftp-server).

use std::collections::HashMap;
use std::fs;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use russh_sftp::protocol::{Attrs, Data, File, FileAttributes, Handle, Name, OpenFlags, Status, StatusCode, Version};
use russh_sftp::server::StatusReply;

/// Serves SFTP on this process's stdin/stdout until the client is done.
pub async fn serve_stdio(home: PathBuf) {
    let stream = tokio::io::join(tokio::io::stdin(), tokio::io::stdout());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = FileServer { home, handles: HashMap::new(), next: 0, done: Some(tx) };
    russh_sftp::server::run(stream, server).await;
    // run() serves in a task; the task ends when the stream closes and the
    // handler (with its sender) is dropped.
    let _ = rx.await;
}

enum Open {
    File(fs::File),
    Dir(Option<Vec<File>>),
}

struct FileServer {
    home: PathBuf,
    handles: HashMap<String, Open>,
    next: u64,
    #[allow(dead_code)]
    done: Option<tokio::sync::oneshot::Sender<()>>,
}

fn reply(e: std::io::Error) -> StatusReply {
    let code = match e.kind() {
        std::io::ErrorKind::NotFound => StatusCode::NoSuchFile,
        std::io::ErrorKind::PermissionDenied => StatusCode::PermissionDenied,
        _ => StatusCode::Failure,
    };
    StatusReply::new(code).with_message(e.to_string())
}

fn ok(id: u32) -> Status {
    Status { id, status_code: StatusCode::Ok, error_message: "Ok".into(), language_tag: "en-US".into() }
}

impl FileServer {
    fn path(&self, p: &str) -> PathBuf {
        if p.is_empty() || p == "." {
            self.home.clone()
        } else if Path::new(p).is_absolute() {
            PathBuf::from(p)
        } else {
            self.home.join(p)
        }
    }

    fn add(&mut self, o: Open) -> String {
        self.next += 1;
        let h = self.next.to_string();
        self.handles.insert(h.clone(), o);
        h
    }

    fn apply(&self, path: &Path, attrs: &FileAttributes) -> std::io::Result<()> {
        if let Some(size) = attrs.size {
            fs::OpenOptions::new().write(true).open(path)?.set_len(size)?;
        }
        if let Some(mode) = attrs.permissions {
            fs::set_permissions(path, fs::Permissions::from_mode(mode & 0o7777))?;
        }
        if attrs.uid.is_some() || attrs.gid.is_some() {
            std::os::unix::fs::chown(path, attrs.uid, attrs.gid)?;
        }
        if let (Some(a), Some(m)) = (attrs.atime, attrs.mtime) {
            let times = [
                libc::timespec { tv_sec: a as libc::time_t, tv_nsec: 0 },
                libc::timespec { tv_sec: m as libc::time_t, tv_nsec: 0 },
            ];
            let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).map_err(std::io::Error::other)?;
            // SAFETY: a valid C string and two timespecs.
            if unsafe { libc::utimensat(libc::AT_FDCWD, c.as_ptr(), times.as_ptr(), 0) } != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
        Ok(())
    }
}

fn attrs_of(m: &fs::Metadata) -> FileAttributes {
    let mut a = FileAttributes::from(m);
    a.uid = Some(m.uid());
    a.gid = Some(m.gid());
    a
}

impl russh_sftp::server::Handler for FileServer {
    type Error = StatusReply;

    fn unimplemented(&self) -> Self::Error {
        StatusReply::new(StatusCode::OpUnsupported)
    }

    async fn init(&mut self, _version: u32, _ext: HashMap<String, String>) -> Result<Version, Self::Error> {
        Ok(Version::new())
    }

    async fn open(
        &mut self,
        id: u32,
        filename: String,
        pflags: OpenFlags,
        attrs: FileAttributes,
    ) -> Result<Handle, Self::Error> {
        let path = self.path(&filename);
        let mut opts: fs::OpenOptions = pflags.into();
        if let Some(mode) = attrs.permissions {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(mode & 0o7777);
        }
        let f = opts.open(&path).map_err(reply)?;
        Ok(Handle { id, handle: self.add(Open::File(f)) })
    }

    async fn close(&mut self, id: u32, handle: String) -> Result<Status, Self::Error> {
        match self.handles.remove(&handle) {
            Some(_) => Ok(ok(id)),
            None => Err(StatusReply::new(StatusCode::Failure).with_message("no such handle")),
        }
    }

    async fn read(&mut self, id: u32, handle: String, offset: u64, len: u32) -> Result<Data, Self::Error> {
        let Some(Open::File(f)) = self.handles.get_mut(&handle) else {
            return Err(StatusReply::new(StatusCode::Failure).with_message("no such file handle"));
        };
        f.seek(SeekFrom::Start(offset)).map_err(reply)?;
        let mut buf = vec![0u8; len.min(256 * 1024) as usize];
        let mut n = 0;
        while n < buf.len() {
            match f.read(&mut buf[n..]).map_err(reply)? {
                0 => break,
                k => n += k,
            }
        }
        if n == 0 {
            return Err(StatusReply::new(StatusCode::Eof));
        }
        buf.truncate(n);
        Ok(Data { id, data: buf })
    }

    async fn write(&mut self, id: u32, handle: String, offset: u64, data: Vec<u8>) -> Result<Status, Self::Error> {
        let Some(Open::File(f)) = self.handles.get_mut(&handle) else {
            return Err(StatusReply::new(StatusCode::Failure).with_message("no such file handle"));
        };
        f.seek(SeekFrom::Start(offset)).map_err(reply)?;
        f.write_all(&data).map_err(reply)?;
        Ok(ok(id))
    }

    async fn lstat(&mut self, id: u32, path: String) -> Result<Attrs, Self::Error> {
        let m = fs::symlink_metadata(self.path(&path)).map_err(reply)?;
        Ok(Attrs { id, attrs: attrs_of(&m) })
    }

    async fn stat(&mut self, id: u32, path: String) -> Result<Attrs, Self::Error> {
        let m = fs::metadata(self.path(&path)).map_err(reply)?;
        Ok(Attrs { id, attrs: attrs_of(&m) })
    }

    async fn fstat(&mut self, id: u32, handle: String) -> Result<Attrs, Self::Error> {
        let Some(Open::File(f)) = self.handles.get(&handle) else {
            return Err(StatusReply::new(StatusCode::Failure).with_message("no such file handle"));
        };
        let m = f.metadata().map_err(reply)?;
        Ok(Attrs { id, attrs: attrs_of(&m) })
    }

    async fn setstat(&mut self, id: u32, path: String, attrs: FileAttributes) -> Result<Status, Self::Error> {
        self.apply(&self.path(&path), &attrs).map_err(reply)?;
        Ok(ok(id))
    }

    async fn fsetstat(&mut self, id: u32, handle: String, attrs: FileAttributes) -> Result<Status, Self::Error> {
        let Some(Open::File(f)) = self.handles.get(&handle) else {
            return Err(StatusReply::new(StatusCode::Failure).with_message("no such file handle"));
        };
        if let Some(size) = attrs.size {
            f.set_len(size).map_err(reply)?;
        }
        if let Some(mode) = attrs.permissions {
            f.set_permissions(fs::Permissions::from_mode(mode & 0o7777)).map_err(reply)?;
        }
        if let (Some(a), Some(m)) = (attrs.atime, attrs.mtime) {
            use std::os::fd::AsRawFd;
            let times = [
                libc::timespec { tv_sec: a as libc::time_t, tv_nsec: 0 },
                libc::timespec { tv_sec: m as libc::time_t, tv_nsec: 0 },
            ];
            // SAFETY: an open fd and two timespecs.
            if unsafe { libc::futimens(f.as_raw_fd(), times.as_ptr()) } != 0 {
                return Err(reply(std::io::Error::last_os_error()));
            }
        }
        Ok(ok(id))
    }

    async fn opendir(&mut self, id: u32, path: String) -> Result<Handle, Self::Error> {
        let dir = self.path(&path);
        let mut files = vec![];
        for name in [".", ".."] {
            if let Ok(m) = fs::metadata(dir.join(name)) {
                files.push(File::new(name, attrs_of(&m)));
            }
        }
        for e in fs::read_dir(&dir).map_err(reply)?.flatten() {
            if let Ok(m) = e.path().symlink_metadata() {
                files.push(File::new(e.file_name().to_string_lossy(), attrs_of(&m)));
            }
        }
        Ok(Handle { id, handle: self.add(Open::Dir(Some(files))) })
    }

    async fn readdir(&mut self, id: u32, handle: String) -> Result<Name, Self::Error> {
        match self.handles.get_mut(&handle) {
            Some(Open::Dir(files)) => match files.take() {
                Some(files) if !files.is_empty() => Ok(Name { id, files }),
                _ => Err(StatusReply::new(StatusCode::Eof)),
            },
            _ => Err(StatusReply::new(StatusCode::Failure).with_message("no such directory handle")),
        }
    }

    async fn remove(&mut self, id: u32, filename: String) -> Result<Status, Self::Error> {
        fs::remove_file(self.path(&filename)).map_err(reply)?;
        Ok(ok(id))
    }

    async fn mkdir(&mut self, id: u32, path: String, attrs: FileAttributes) -> Result<Status, Self::Error> {
        let p = self.path(&path);
        fs::create_dir(&p).map_err(reply)?;
        if let Some(mode) = attrs.permissions {
            let _ = fs::set_permissions(&p, fs::Permissions::from_mode(mode & 0o7777));
        }
        Ok(ok(id))
    }

    async fn rmdir(&mut self, id: u32, path: String) -> Result<Status, Self::Error> {
        fs::remove_dir(self.path(&path)).map_err(reply)?;
        Ok(ok(id))
    }

    async fn realpath(&mut self, id: u32, path: String) -> Result<Name, Self::Error> {
        let p = self.path(&path);
        // Like OpenSSH: canonical when it exists, else normalised as given.
        let real = fs::canonicalize(&p).unwrap_or_else(|_| normalize(&p));
        Ok(Name { id, files: vec![File::dummy(real.to_string_lossy())] })
    }

    async fn rename(&mut self, id: u32, oldpath: String, newpath: String) -> Result<Status, Self::Error> {
        let (from, to) = (self.path(&oldpath), self.path(&newpath));
        if to.exists() {
            // SFTP v3 rename does not overwrite.
            return Err(StatusReply::new(StatusCode::Failure).with_message("target exists"));
        }
        fs::rename(from, to).map_err(reply)?;
        Ok(ok(id))
    }

    async fn readlink(&mut self, id: u32, path: String) -> Result<Name, Self::Error> {
        let t = fs::read_link(self.path(&path)).map_err(reply)?;
        Ok(Name { id, files: vec![File::dummy(t.to_string_lossy())] })
    }

    async fn symlink(&mut self, id: u32, linkpath: String, targetpath: String) -> Result<Status, Self::Error> {
        std::os::unix::fs::symlink(&targetpath, self.path(&linkpath)).map_err(reply)?;
        Ok(ok(id))
    }

    async fn extended(
        &mut self,
        id: u32,
        request: String,
        data: Vec<u8>,
    ) -> Result<russh_sftp::protocol::Packet, Self::Error> {
        let _ = (id, request, data);
        Err(StatusReply::new(StatusCode::OpUnsupported))
    }
}

fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in p.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::Normal(n) => out.push(n),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes() {
        assert_eq!(normalize(Path::new("/a/b/../c/./d")), PathBuf::from("/a/c/d"));
        assert_eq!(normalize(Path::new("/..")), PathBuf::from("/"));
    }
}
