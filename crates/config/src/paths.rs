//! Path handling with Salt's semantics: `prepend_root_dir`, `salt.utils.path.join`, include
//! globbing, and the host facts the defaults need (effective user, default id).

use std::path::{Path, PathBuf};

use globset::GlobBuilder;
use serde_json::{Map, Value};

/// `salt.utils.path.join`: later parts lose their leading `/` (so they are appended under the
/// first one, never replace it), and the result is normalised.
pub fn join(root: &str, part: &str) -> String {
    normpath(&format!("{}/{}", root, part.trim_start_matches('/')))
}

/// `os.path.normpath` for POSIX paths (no filesystem access).
pub fn normpath(path: &str) -> String {
    if path.is_empty() {
        return ".".into();
    }
    let absolute = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." if parts.last().is_some_and(|p| *p != "..") => {
                parts.pop();
            }
            ".." if absolute => {}
            _ => parts.push(part),
        }
    }
    let joined = parts.join("/");
    match (absolute, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}

/// `os.path.abspath`.
fn abspath(path: &str) -> String {
    if path.starts_with('/') {
        return normpath(path);
    }
    let cwd = std::env::current_dir().map(|p| p.display().to_string()).unwrap_or_else(|_| "/".into());
    normpath(&format!("{cwd}/{path}"))
}

/// `salt.config.prepend_root_dir` with Salt's default `ROOT_DIR` of `/`: every listed path
/// option is moved under `root_dir`, unless it already lies under it. Relative paths are
/// taken relative to `root_dir`. Non-string values are left alone.
pub fn prepend_root_dir(opts: &mut Map<String, Value>, keys: &[&str]) {
    let root = abspath(opts.get("root_dir").and_then(Value::as_str).unwrap_or("/"));
    for key in keys {
        let Some(path) = opts.get(*key).and_then(Value::as_str) else {
            continue;
        };
        // The part below root_dir when the path already starts with it (Salt keeps only a
        // non-empty remainder, so a path equal to root_dir is prefixed again, as in Salt).
        let under_root = path.strip_prefix(&root).filter(|rest| rest.starts_with('/') && root != "/");
        let new = join(&root, under_root.unwrap_or(path));
        opts.insert((*key).to_owned(), Value::String(new));
    }
}

/// Whether `urllib.parse.urlparse(value).scheme` is non-empty (`udp://...`, `file:///...`).
pub fn has_url_scheme(value: &str) -> bool {
    let Some(colon) = value.find(':') else {
        return false;
    };
    let scheme = &value[..colon];
    scheme.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && scheme.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

/// `os.path.expanduser` for `~` and `~/...`.
pub fn expand_user(path: &str) -> String {
    match (path.strip_prefix('~'), std::env::var("HOME")) {
        (Some(rest), Ok(home)) if rest.is_empty() || rest.starts_with('/') => {
            format!("{home}{rest}")
        }
        _ => path.to_owned(),
    }
}

/// Python's `glob.glob` for one pattern, files only, sorted: `*`, `?` and `[...]` work in any
/// path component and do not match a leading `.` unless the pattern component starts with one.
pub fn glob(pattern: &Path) -> Result<Vec<PathBuf>, String> {
    let mut candidates = vec![PathBuf::new()];
    for component in pattern.components() {
        let text = component.as_os_str().to_string_lossy();
        let magic = text.contains(['*', '?', '[']);
        let mut next = Vec::new();
        for base in &candidates {
            if !magic {
                next.push(base.join(component.as_os_str()));
                continue;
            }
            let matcher = GlobBuilder::new(&text)
                .literal_separator(true)
                .backslash_escape(true)
                .build()
                .map_err(|e| e.to_string())?
                .compile_matcher();
            let dir = if base.as_os_str().is_empty() { Path::new(".") } else { base.as_path() };
            let Ok(entries) = std::fs::read_dir(dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let name = entry.file_name();
                let name_text = name.to_string_lossy();
                if name_text.starts_with('.') && !text.starts_with('.') {
                    continue;
                }
                if matcher.is_match(name_text.as_ref()) {
                    next.push(base.join(&name));
                }
            }
        }
        candidates = next;
    }
    let mut files: Vec<PathBuf> = candidates.into_iter().filter(|p| p.is_file()).collect();
    files.sort_by(|a, b| a.to_string_lossy().cmp(&b.to_string_lossy()));
    Ok(files)
}

/// The id Salt would pick when none is configured: the cached `ROOT_DIR/etc/salt/minion_id`
/// (ignoring `localhost`), else this host's name. (Salt's `generate_minion_id` prefers the
/// FQDN; we use the kernel host name and do not resolve it.) The master adds `_master`.
pub fn guess_id(root_dir: &Path) -> String {
    let cached = root_dir.join("etc/salt/minion_id");
    if let Ok(text) = std::fs::read_to_string(cached) {
        let name = text.lines().next().unwrap_or_default().trim().trim_start_matches('\u{feff}');
        if !name.is_empty() && name != "localhost" {
            return name.to_owned();
        }
    }
    hostname()
}

fn hostname() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .map(|s| s.trim().to_owned())
        .find(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| "localhost".into())
}

/// `salt.utils.user.get_user()`: the name of the effective user (the `user` default).
pub fn effective_user() -> String {
    let euid = std::fs::read_to_string("/proc/self/status").ok().and_then(|status| {
        status.lines().find_map(|l| l.strip_prefix("Uid:")).and_then(|ids| ids.split_whitespace().nth(1).map(str::to_owned))
    });
    if let (Some(euid), Ok(passwd)) = (euid, std::fs::read_to_string("/etc/passwd")) {
        for line in passwd.lines() {
            let fields: Vec<&str> = line.split(':').collect();
            if fields.len() > 2 && fields[2] == euid {
                return fields[0].to_owned();
            }
        }
    }
    std::env::var("USER").ok().filter(|u| !u.is_empty()).unwrap_or_else(|| "root".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn join_and_normpath() {
        assert_eq!(join("/tmp/r", "/var/cache/salt"), "/tmp/r/var/cache/salt");
        assert_eq!(join("/", "/var/x"), "/var/x");
        assert_eq!(join("/tmp/r", ""), "/tmp/r");
        assert_eq!(normpath("/a//b/./c/../d/"), "/a/b/d");
        assert_eq!(normpath("/../a"), "/a");
        assert_eq!(normpath("a/../.."), "..");
    }

    #[test]
    fn prepend_root_dir_like_salt() {
        let mut opts = json!({
            "root_dir": "/tmp/r",
            "pki_dir": "/etc/salt/pki/master",
            "cachedir": "/tmp/r/var/cache/salt",
            "sock_dir": "run/salt",
            "pidfile": "/tmp/r",
            "log_file": null,
        })
        .as_object()
        .unwrap()
        .clone();
        prepend_root_dir(&mut opts, &["pki_dir", "cachedir", "sock_dir", "pidfile", "log_file", "missing"]);
        assert_eq!(opts["pki_dir"], "/tmp/r/etc/salt/pki/master");
        // Already under root_dir: unchanged.
        assert_eq!(opts["cachedir"], "/tmp/r/var/cache/salt");
        assert_eq!(opts["sock_dir"], "/tmp/r/run/salt");
        // Salt's quirk: a path equal to root_dir is prefixed again.
        assert_eq!(opts["pidfile"], "/tmp/r/tmp/r");
        assert_eq!(opts["log_file"], Value::Null);
        assert!(!opts.contains_key("missing"));
    }

    #[test]
    fn prepend_with_default_root_keeps_paths() {
        let mut opts = json!({"root_dir": "/", "pki_dir": "/etc/salt/pki/minion"}).as_object().unwrap().clone();
        prepend_root_dir(&mut opts, &["pki_dir"]);
        assert_eq!(opts["pki_dir"], "/etc/salt/pki/minion");
    }

    #[test]
    fn url_schemes() {
        assert!(has_url_scheme("udp://localhost:514"));
        assert!(has_url_scheme("file:///dev/log"));
        assert!(!has_url_scheme("/var/log/salt/master"));
        assert!(!has_url_scheme("logs/a:b"));
    }

    #[test]
    fn glob_sorted_files_without_hidden() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("master.d");
        std::fs::create_dir(&d).unwrap();
        for name in ["b.conf", "a.conf", ".hidden.conf", "c.txt"] {
            std::fs::write(d.join(name), "").unwrap();
        }
        std::fs::create_dir(d.join("dir.conf")).unwrap();
        let found = glob(&d.join("*.conf")).unwrap();
        assert_eq!(found, vec![d.join("a.conf"), d.join("b.conf")]);
        assert_eq!(glob(&dir.path().join("*.d/a.*")).unwrap(), vec![d.join("a.conf")]);
        assert!(glob(&dir.path().join("nothing/*.conf")).unwrap().is_empty());
    }

    #[test]
    fn guess_id_prefers_the_cached_minion_id() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("etc/salt")).unwrap();
        std::fs::write(dir.path().join("etc/salt/minion_id"), "\u{feff}web1\n").unwrap();
        assert_eq!(guess_id(dir.path()), "web1");
        std::fs::write(dir.path().join("etc/salt/minion_id"), "localhost\n").unwrap();
        assert_eq!(guess_id(dir.path()), hostname());
    }
}
