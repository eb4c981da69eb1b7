//! /etc/passwd and /etc/group, read and written without NSS.

use std::path::Path;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: String,
    pub shell: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub name: String,
    pub gid: u32,
    pub members: Vec<String>,
}

/// A passwd file: the lines as they are, so a rewrite changes only what it must.
#[derive(Debug, Clone, Default)]
pub struct PasswdFile {
    pub lines: Vec<String>,
}

#[derive(Debug, Clone, Default)]
pub struct GroupFile {
    pub lines: Vec<String>,
}

impl PasswdFile {
    pub fn read(path: &Path) -> std::io::Result<Self> {
        match std::fs::read_to_string(path) {
            Ok(t) => Ok(Self::parse(&t)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(e),
        }
    }

    pub fn parse(text: &str) -> Self {
        PasswdFile { lines: text.lines().map(str::to_string).collect() }
    }

    pub fn users(&self) -> impl Iterator<Item = User> + '_ {
        self.lines.iter().filter_map(|l| parse_user(l))
    }

    pub fn by_name(&self, name: &str) -> Option<User> {
        self.users().find(|u| u.name == name)
    }

    pub fn by_uid(&self, uid: u32) -> Option<User> {
        self.users().find(|u| u.uid == uid)
    }

    /// Sets a user's uid and gid; `false` if there is no such user.
    pub fn set_ids(&mut self, name: &str, uid: u32, gid: u32) -> bool {
        for line in &mut self.lines {
            let mut f: Vec<&str> = line.split(':').collect();
            if f.len() >= 7 && f[0] == name {
                let (u, g) = (uid.to_string(), gid.to_string());
                f[2] = &u;
                f[3] = &g;
                *line = f.join(":");
                return true;
            }
        }
        false
    }

    pub fn text(&self) -> String {
        let mut s = self.lines.join("\n");
        s.push('\n');
        s
    }
}

fn parse_user(line: &str) -> Option<User> {
    let f: Vec<&str> = line.split(':').collect();
    if f.len() < 7 || line.starts_with('#') {
        return None;
    }
    Some(User {
        name: f[0].to_string(),
        uid: f[2].parse().ok()?,
        gid: f[3].parse().ok()?,
        home: f[5].to_string(),
        shell: f[6].to_string(),
    })
}

impl GroupFile {
    pub fn read(path: &Path) -> std::io::Result<Self> {
        match std::fs::read_to_string(path) {
            Ok(t) => Ok(GroupFile { lines: t.lines().map(str::to_string).collect() }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(e),
        }
    }

    pub fn groups(&self) -> impl Iterator<Item = Group> + '_ {
        self.lines.iter().filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() < 4 || l.starts_with('#') {
                return None;
            }
            Some(Group {
                name: f[0].to_string(),
                gid: f[2].parse().ok()?,
                members: f[3].split(',').filter(|m| !m.is_empty()).map(str::to_string).collect(),
            })
        })
    }

    pub fn by_gid(&self, gid: u32) -> Option<Group> {
        self.groups().find(|g| g.gid == gid)
    }

    /// The supplementary groups of `user` (groups that list it as member).
    pub fn supplementary(&self, user: &str) -> Vec<u32> {
        self.groups().filter(|g| g.members.iter().any(|m| m == user)).map(|g| g.gid).collect()
    }

    /// Changes the gid of the group that has `old`; `false` if none has.
    pub fn set_gid(&mut self, old: u32, new: u32) -> bool {
        for line in &mut self.lines {
            let mut f: Vec<&str> = line.split(':').collect();
            if f.len() >= 4 && f[2].parse() == Ok(old) {
                let n = new.to_string();
                f[2] = &n;
                *line = f.join(":");
                return true;
            }
        }
        false
    }

    pub fn text(&self) -> String {
        let mut s = self.lines.join("\n");
        s.push('\n');
        s
    }
}

/// Resolves `spec` (`name`, `uid`, `name:group` or `uid:gid`) to a user.
/// A numeric uid that has no entry still works (home `/`, shell `/bin/sh`).
pub fn resolve_user(passwd: &PasswdFile, spec: &str) -> Option<User> {
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let mut found = match user.parse::<u32>() {
        Ok(uid) => passwd.by_uid(uid).or(Some(User {
            name: uid.to_string(),
            uid,
            gid: uid,
            home: "/".into(),
            shell: "/bin/sh".into(),
        })),
        Err(_) => passwd.by_name(user),
    }?;
    if let Some(gid) = group.and_then(|g| g.parse::<u32>().ok()) {
        found.gid = gid;
    }
    Some(found)
}

/// Writes a system file in place of the old one, atomically (temp + rename),
/// keeping its mode.
pub fn replace_file(path: &Path, text: &str) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).map(|m| m.permissions().mode()).unwrap_or(0o644);
    let tmp = path.with_extension(format!("den-tmp.{}", std::process::id()));
    std::fs::write(&tmp, text)?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode))?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str =
        "root:x:0:0:root:/root:/bin/bash\n# comment\nvscode:x:1000:1000::/home/vscode:/bin/zsh\nbroken line\n";
    const GROUP: &str = "root:x:0:\nvscode:x:1000:\ndocker:x:998:vscode,other\n";

    #[test]
    fn reads_users() {
        let p = PasswdFile::parse(PASSWD);
        assert_eq!(p.users().count(), 2);
        let u = p.by_name("vscode").unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_str(), u.shell.as_str()), (1000, 1000, "/home/vscode", "/bin/zsh"));
        assert_eq!(p.by_uid(0).unwrap().name, "root");
    }

    #[test]
    fn resolves_user_specs() {
        let p = PasswdFile::parse(PASSWD);
        assert_eq!(resolve_user(&p, "vscode").unwrap().uid, 1000);
        assert_eq!(resolve_user(&p, "1000").unwrap().name, "vscode");
        let anon = resolve_user(&p, "4242:4343").unwrap();
        assert_eq!((anon.uid, anon.gid, anon.home.as_str()), (4242, 4343, "/"));
        assert!(resolve_user(&p, "nobody-here").is_none());
    }

    #[test]
    fn rewrites_only_the_changed_fields() {
        let mut p = PasswdFile::parse(PASSWD);
        assert!(p.set_ids("vscode", 1234, 1235));
        assert_eq!(p.text(), PASSWD.replace("vscode:x:1000:1000:", "vscode:x:1234:1235:"));
        assert!(!p.set_ids("ghost", 1, 1));
    }

    #[test]
    fn groups() {
        let mut g = GroupFile { lines: GROUP.lines().map(str::to_string).collect() };
        assert_eq!(g.supplementary("vscode"), vec![998]);
        assert!(g.set_gid(1000, 1235));
        assert_eq!(g.by_gid(1235).unwrap().name, "vscode");
    }
}
