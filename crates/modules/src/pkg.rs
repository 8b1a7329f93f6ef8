//! `pkg.*`: install, remove and list packages through the system's package manager
//! (Salt's `aptpkg.py` on Debian-likes, `yumpkg.py` on RHEL-likes).
//!
//! The backend is chosen once, like Salt's loader picks the `pkg` provider: dpkg + apt-get,
//! else rpm + dnf (or yum). Without either, `pkg.*` is not registered at all.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use futures::future::BoxFuture;
use futures::FutureExt;
use serde_json::{Map, Value};

use crate::{fnmatch, py_str, run_argv, truthy, Args, JobContext, ModuleError, Registry, Returned, Signature};

type Result<T> = std::result::Result<T, ModuleError>;

/// Installed packages: name -> versions (several for multi-arch or multi-version installs).
type PkgList = BTreeMap<String, Vec<String>>;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Backend {
    Apt,
    /// rpm for queries, this tool (`dnf` or `yum`) for changes.
    Rpm(&'static str),
}

fn backend() -> Option<Backend> {
    static BACKEND: OnceLock<Option<Backend>> = OnceLock::new();
    *BACKEND.get_or_init(|| {
        if which("dpkg-query") && which("apt-get") {
            Some(Backend::Apt)
        } else if which("rpm") {
            ["dnf", "yum"].into_iter().find(|t| which(t)).map(Backend::Rpm)
        } else {
            None
        }
    })
}

fn which(program: &str) -> bool {
    std::env::var_os("PATH").map(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file())).unwrap_or(false)
}

pub(crate) fn register(r: &mut Registry) {
    if backend().is_none() {
        return;
    }
    r.register("pkg.install", INSTALL_DOC, install);
    r.register("pkg.remove", REMOVE_DOC, remove);
    r.register("pkg.version", VERSION_DOC, version);
    r.register("pkg.list_pkgs", LIST_PKGS_DOC, list_pkgs);
}

/// What apt and dpkg need to never ask a question.
const DPKG_ENV: [(&str, &str); 3] =
    [("DEBIAN_FRONTEND", "noninteractive"), ("APT_LISTBUGS_FRONTEND", "none"), ("APT_LISTCHANGES_FRONTEND", "none")];

fn dpkg_env() -> Vec<(String, String)> {
    DPKG_ENV.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

async fn run(argv: &[&str]) -> Result<crate::RunOutput> {
    let argv: Vec<String> = argv.iter().map(|s| s.to_string()).collect();
    run_argv(&argv, &dpkg_env()).await
}

async fn installed(backend: Backend, removed: bool) -> Result<PkgList> {
    match backend {
        Backend::Apt => {
            let arch = run(&["dpkg", "--print-architecture"]).await?.stdout;
            let listing =
                query("dpkg-query", &["dpkg-query", "--showformat=${Status} ${Package} ${Version} ${Architecture}\n", "-W"]).await?;
            Ok(parse_dpkg_query(&listing, arch.trim(), removed))
        }
        Backend::Rpm(_) => {
            if removed {
                return Ok(PkgList::new());
            }
            let arch = run(&["uname", "-m"]).await?.stdout;
            let listing =
                query("rpm -qa", &["rpm", "-qa", "--queryformat", "%{NAME}\t%{EPOCH}\t%{VERSION}\t%{RELEASE}\t%{ARCH}\n"]).await?;
            Ok(parse_rpm_qa(&listing, arch.trim()))
        }
    }
}

/// The output of a package database query; a failed query is an error that names it
/// (`what`) and carries its standard error.
async fn query(what: &str, argv: &[&str]) -> Result<String> {
    let out = run(argv).await?;
    if out.retcode != Some(0) {
        return Err(ModuleError::CommandExecution(format!("{what} failed: {}", out.stderr)));
    }
    Ok(out.stdout)
}

/// `dpkg-query -W` lines `<want> <error> <status> <name> <version> <arch>`: installed
/// packages, or with `removed` the ones removed but with config files left. Foreign-arch
/// packages are named `name:arch`, as aptpkg names them.
fn parse_dpkg_query(text: &str, native_arch: &str, removed: bool) -> PkgList {
    let mut pkgs = PkgList::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 6 {
            continue;
        }
        let wanted = if removed { "config-files" } else { "installed" };
        if f[2] != wanted {
            continue;
        }
        let (name, version, arch) = (f[3], f[4], f[5]);
        let name = if arch == native_arch || arch == "all" { name.to_string() } else { format!("{name}:{arch}") };
        pkgs.entry(name).or_default().push(version.to_string());
    }
    pkgs
}

/// `rpm -qa` lines `name\tepoch\tversion\trelease\tarch`; versions are
/// `[epoch:]version-release`, foreign-arch packages `name.arch`.
fn parse_rpm_qa(text: &str, native_arch: &str) -> PkgList {
    let mut pkgs = PkgList::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        if f.len() < 5 || f[0] == "gpg-pubkey" {
            continue;
        }
        let (name, epoch, ver, rel, arch) = (f[0], f[1], f[2], f[3], f[4]);
        let version = match epoch {
            "(none)" | "" | "0" => format!("{ver}-{rel}"),
            e => format!("{e}:{ver}-{rel}"),
        };
        let name = if arch == native_arch || arch == "noarch" { name.to_string() } else { format!("{name}.{arch}") };
        pkgs.entry(name).or_default().push(version);
    }
    pkgs
}

/// Salt's `pkg_resource.stringify`: several versions become one comma-separated string.
fn stringify(versions: &[String]) -> String {
    versions.join(",")
}

/// Salt's `compare_dicts` over stringified versions: new keys `{"old": "", "new"}`, removed
/// keys `{"new": "", "old"}` (Salt builds those two in different orders), changed ones
/// `{"old", "new"}`.
fn compare(old: &PkgList, new: &PkgList) -> Map<String, Value> {
    let mut keys: Vec<&String> = old.keys().chain(new.keys()).collect();
    keys.sort();
    keys.dedup();
    let mut changes = Map::new();
    for key in keys {
        let entry = |a: (&str, String), b: (&str, String)| -> Value {
            let mut m = Map::new();
            m.insert(a.0.into(), a.1.into());
            m.insert(b.0.into(), b.1.into());
            Value::Object(m)
        };
        match (old.get(key), new.get(key)) {
            (None, Some(n)) => {
                changes.insert(key.clone(), entry(("old", String::new()), ("new", stringify(n))));
            }
            (Some(o), None) => {
                changes.insert(key.clone(), entry(("new", String::new()), ("old", stringify(o))));
            }
            (Some(o), Some(n)) if o != n => {
                changes.insert(key.clone(), entry(("old", stringify(o)), ("new", stringify(n))));
            }
            _ => {}
        }
    }
    changes
}

/// A `CommandExecutionError` with `info`, worded as Salt words it: the message, then
/// "Additional info follows:" and the info in the nested outputter's layout.
fn error_with_info(message: &str, errors: Vec<String>, changes: Map<String, Value>) -> ModuleError {
    let mut info = Map::new();
    info.insert("changes".into(), Value::Object(changes));
    info.insert("errors".into(), errors.into_iter().map(Value::String).collect());
    let mut prefix = message.to_string();
    if !prefix.ends_with(['.', '?', '!']) {
        prefix.push('.');
    }
    let mut lines = Vec::new();
    nested(&Value::Object(info), 0, "", &mut lines);
    ModuleError::CommandExecution(format!("{prefix} Additional info follows:\n\n{}", lines.join("\n")))
}

/// Salt's nested outputter without colours (the layout `_nested_output` produces).
fn nested(v: &Value, indent: usize, prefix: &str, out: &mut Vec<String>) {
    let pad = " ".repeat(indent);
    match v {
        Value::Object(map) => {
            if indent > 0 {
                out.push(format!("{pad}{prefix}----------"));
            }
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            for k in keys {
                out.push(format!("{pad}{prefix}{k}:"));
                nested(&map[k], indent + 4, "", out);
            }
        }
        Value::Array(items) => {
            for item in items {
                if matches!(item, Value::Array(_) | Value::Object(_)) {
                    out.push(format!("{pad}|_"));
                    let p = if item.is_object() { "" } else { "- " };
                    nested(item, indent + 2, p, out);
                } else {
                    nested(item, indent, "- ", out);
                }
            }
        }
        Value::String(s) => {
            for (i, line) in s.lines().enumerate() {
                let p = if i == 0 { prefix.to_string() } else { " ".repeat(prefix.len()) };
                out.push(format!("{pad}{p}{line}"));
            }
        }
        other => out.push(format!("{pad}{prefix}{}", crate::py_repr(other))),
    }
}

/// Install targets after Salt's `pkg_resource.parse_targets`.
enum Targets {
    /// Package name -> requested version.
    Repo(Vec<(String, Option<String>)>),
    /// Package name -> local package file.
    Files(Vec<(String, String)>),
}

fn parse_targets(name: Option<String>, pkgs: &Value, sources: &Value, version: Option<String>) -> Result<Targets> {
    if let Value::Array(items) = sources {
        let mut files = Vec::new();
        for item in items {
            let Some(map) = item.as_object() else {
                return Err(ModuleError::Invocation("Invalid 'sources' list: each item must be a single-key dict of name: path".into()));
            };
            for (pkg, src) in map {
                let path = py_str(src);
                let path = path.strip_prefix("file://").unwrap_or(&path).to_string();
                if !path.starts_with('/') {
                    return Err(ModuleError::Invocation(format!("Source for package '{pkg}' must be a local absolute path, got '{path}'")));
                }
                if !std::path::Path::new(&path).is_file() {
                    return Err(ModuleError::CommandExecution(format!("Unable to cache {path}")));
                }
                files.push((pkg.clone(), path));
            }
        }
        return Ok(Targets::Files(files));
    }
    if let Value::Array(items) = pkgs {
        let mut repo = Vec::new();
        for item in items {
            match item {
                Value::Object(map) => repo.extend(map.iter().map(|(k, v)| (k.clone(), (!v.is_null()).then(|| py_str(v))))),
                other => repo.push((py_str(other), None)),
            }
        }
        return Ok(Targets::Repo(repo));
    }
    match name {
        Some(name) => {
            let names: Vec<&str> = name.split(',').map(str::trim).filter(|n| !n.is_empty()).collect();
            let version = if names.len() == 1 { version } else { None };
            Ok(Targets::Repo(names.into_iter().map(|n| (n.to_string(), version.clone())).collect()))
        }
        None => Ok(Targets::Repo(Vec::new())),
    }
}

const INSTALL_DOC: &str = "Install the passed package(s) and return a dict of what changed:
{<package>: {'old': '<old-version>', 'new': '<new-version>'}}.

    name      the package to install (comma-separated for several)
    version   install this version of ``name``
    pkgs      a list of names, or of {name: version} dicts
    sources   a list of {name: /path/to/package-file} dicts, installed from local files
    refresh   update the package database first
    reinstall reinstall even if the version is already installed

CLI Example:

    salt '*' pkg.install vim
    salt '*' pkg.install vim version=2:9.0.1378-2
    salt '*' pkg.install pkgs='[\"foo\", {\"bar\": \"1.2.3-4\"}]'
    salt '*' pkg.install sources='[{\"foo\": \"/tmp/foo.deb\"}]'";

fn install(_: Arc<JobContext>, args: Args) -> BoxFuture<'static, Result<Returned>> {
    async move {
        let b = Signature::parse("install(name=None, refresh=False, fromrepo=None, skip_verify=False, debconf=None, pkgs=None, sources=None, reinstall=False, downloadonly=False, ignore_epoch=False, **kwargs)").bind(&args)?;
        let backend = backend().ok_or_else(|| ModuleError::CommandExecution("no package manager".into()))?;
        let version = b.extra("version").filter(|v| !v.is_null()).map(py_str);
        let targets = parse_targets(b.opt_str("name"), b.get("pkgs"), b.get("sources"), version)?;
        let reinstall = b.flag("reinstall");
        let mut errors = Vec::new();
        if b.flag("refresh") {
            let refresh: &[&str] = match backend {
                Backend::Apt => &["apt-get", "-q", "update"],
                Backend::Rpm(tool) => &[tool, "-y", "makecache"],
            };
            let out = run(refresh).await?;
            if out.retcode != Some(0) {
                errors.push(failure_text(&out));
            }
        }
        let old = installed(backend, false).await?;
        let mut argv: Vec<String> = Vec::new();
        match (&targets, backend) {
            (Targets::Files(files), _) if files.is_empty() => return Ok(Returned::value(Map::new())),
            (Targets::Files(files), Backend::Apt) => {
                argv.extend(["dpkg", "-i", "--force-confold", "--force-confdef"].map(String::from));
                argv.extend(files.iter().map(|(_, p)| p.clone()));
            }
            (Targets::Files(files), Backend::Rpm(tool)) => {
                argv.extend([tool, "-y", "install"].map(String::from));
                argv.extend(files.iter().map(|(_, p)| p.clone()));
            }
            (Targets::Repo(pkgs), _) => {
                // Skip what is already there at the asked version, as aptpkg does.
                let wanted: Vec<String> = pkgs
                    .iter()
                    .filter(|(name, ver)| {
                        reinstall
                            || match (old.get(name), ver) {
                                (None, _) => true,
                                (Some(_), None) => false,
                                (Some(have), Some(v)) => !have.contains(v),
                            }
                    })
                    .map(|(name, ver)| match (ver, backend) {
                        (Some(v), Backend::Apt) => format!("{name}={v}"),
                        (Some(v), Backend::Rpm(_)) => format!("{name}-{v}"),
                        (None, _) => name.clone(),
                    })
                    .collect();
                if wanted.is_empty() {
                    return Ok(Returned::value(Map::new()));
                }
                match backend {
                    Backend::Apt => {
                        argv.extend(
                            ["apt-get", "-q", "-y", "-o", "DPkg::Options::=--force-confold", "-o", "DPkg::Options::=--force-confdef"]
                                .map(String::from),
                        );
                        if let Some(repo) = b.opt_str("fromrepo") {
                            argv.extend(["-t".to_string(), repo]);
                        }
                        if b.flag("downloadonly") {
                            argv.push("--download-only".into());
                        }
                        if reinstall {
                            argv.push("--reinstall".into());
                        }
                        argv.push("install".into());
                    }
                    Backend::Rpm(tool) => {
                        argv.extend([tool, "-y"].map(String::from));
                        if let Some(repo) = b.opt_str("fromrepo") {
                            argv.push(format!("--repo={repo}"));
                        }
                        if b.flag("downloadonly") {
                            argv.push("--downloadonly".into());
                        }
                        argv.push(if reinstall { "reinstall" } else { "install" }.into());
                    }
                }
                argv.extend(wanted);
            }
        }
        let out = run_argv(&argv, &dpkg_env()).await?;
        if out.retcode != Some(0) {
            errors.push(failure_text(&out));
        }
        let new = installed(backend, false).await?;
        let changes = compare(&old, &new);
        if !errors.is_empty() {
            let message = match backend {
                Backend::Apt => "Problem encountered installing package(s)",
                Backend::Rpm(_) => "Error occurred installing package(s)",
            };
            return Err(error_with_info(message, errors, changes));
        }
        Ok(Returned::value(changes))
    }
    .boxed()
}

/// What a failed package command said: its stderr, or its stdout when stderr is empty.
fn failure_text(out: &crate::RunOutput) -> String {
    if out.stderr.is_empty() {
        out.stdout.clone()
    } else {
        out.stderr.clone()
    }
}

const REMOVE_DOC: &str = "Remove the passed package(s) and return a dict of what changed:
{<package>: {'new': '', 'old': '<old-version>'}}. Packages that are not installed are
ignored.

CLI Example:

    salt '*' pkg.remove vim
    salt '*' pkg.remove pkgs='[\"foo\", \"bar\"]'";

fn remove(_: Arc<JobContext>, args: Args) -> BoxFuture<'static, Result<Returned>> {
    async move {
        let b = Signature::parse("remove(name=None, pkgs=None, **kwargs)").bind(&args)?;
        let backend = backend().ok_or_else(|| ModuleError::CommandExecution("no package manager".into()))?;
        let Targets::Repo(pkgs) = parse_targets(b.opt_str("name"), b.get("pkgs"), &Value::Null, None)? else {
            unreachable!("no sources given")
        };
        let old = installed(backend, false).await?;
        let targets: Vec<String> = pkgs.into_iter().map(|(n, _)| n).filter(|n| old.contains_key(n)).collect();
        if targets.is_empty() {
            return Ok(Returned::value(Map::new()));
        }
        let mut argv: Vec<String> = match backend {
            Backend::Apt => ["apt-get", "-q", "-y", "remove"].map(String::from).to_vec(),
            Backend::Rpm(tool) => [tool, "-y", "remove"].map(String::from).to_vec(),
        };
        argv.extend(targets);
        let out = run_argv(&argv, &dpkg_env()).await?;
        let new = installed(backend, false).await?;
        let changes = compare(&old, &new);
        if out.retcode != Some(0) {
            let message = match backend {
                Backend::Apt => "Problem encountered removing package(s)",
                Backend::Rpm(_) => "Error occurred removing package(s)",
            };
            return Err(error_with_info(message, vec![failure_text(&out)], changes));
        }
        Ok(Returned::value(changes))
    }
    .boxed()
}

const VERSION_DOC: &str = "Return the version of the named package(s) installed: a string for
one package ('' when it is not installed), a dict of name: version for several or for a
glob.

CLI Example:

    salt '*' pkg.version vim
    salt '*' pkg.version vim curl
    salt '*' pkg.version 'lib*'";

fn version(_: Arc<JobContext>, args: Args) -> BoxFuture<'static, Result<Returned>> {
    async move {
        let b = Signature::parse("version(*names, **kwargs)").bind(&args)?;
        let backend = backend().ok_or_else(|| ModuleError::CommandExecution("no package manager".into()))?;
        let as_list = b.extra("versions_as_list").is_some_and(truthy);
        let names: Vec<String> = b.varargs.iter().map(py_str).collect();
        let mut ret = Map::new();
        let mut globbed = false;
        if !names.is_empty() {
            let pkgs = installed(backend, false).await?;
            let shape = |v: Option<&Vec<String>>| -> Value {
                let v = v.cloned().unwrap_or_default();
                if as_list {
                    v.into()
                } else {
                    stringify(&v).into()
                }
            };
            for name in &names {
                if name.contains('*') {
                    globbed = true;
                    for (pkg, v) in pkgs.iter().filter(|(p, _)| fnmatch(p, name)) {
                        ret.insert(pkg.clone(), shape(Some(v)));
                    }
                } else {
                    ret.insert(name.clone(), shape(pkgs.get(name)));
                }
            }
        }
        // One plain name: just its version.
        if ret.len() == 1 && !globbed {
            return Ok(Returned::value(ret.into_iter().next().map(|(_, v)| v).unwrap_or_default()));
        }
        Ok(Returned::value(ret))
    }
    .boxed()
}

const LIST_PKGS_DOC: &str = "List the packages currently installed as a dict of
{<package>: <version>}. versions_as_list=True gives lists of versions; removed=True lists
packages removed with their configuration files left (dpkg only).

CLI Example:

    salt '*' pkg.list_pkgs
    salt '*' pkg.list_pkgs versions_as_list=True";

fn list_pkgs(_: Arc<JobContext>, args: Args) -> BoxFuture<'static, Result<Returned>> {
    async move {
        let b = Signature::parse("list_pkgs(versions_as_list=False, removed=False, purge_desired=False, **kwargs)").bind(&args)?;
        let backend = backend().ok_or_else(|| ModuleError::CommandExecution("no package manager".into()))?;
        let pkgs = installed(backend, b.flag("removed")).await?;
        let as_list = b.flag("versions_as_list");
        let ret: Map<String, Value> = pkgs.into_iter().map(|(k, v)| (k, if as_list { v.into() } else { stringify(&v).into() })).collect();
        Ok(Returned::value(ret))
    }
    .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::tests::run as job;
    use serde_json::json;

    #[test]
    fn dpkg_query_parsing() {
        let text = "install ok installed bash 5.2.15-2+b7 amd64\n\
                    install ok installed libc6 2.36-9 amd64\n\
                    install ok installed libc6 2.36-9 i386\n\
                    install ok installed tzdata 2024a-0 all\n\
                    deinstall ok config-files oldpkg 1.0 amd64\n\
                    unknown ok not-installed ghost  amd64\n";
        let p = parse_dpkg_query(text, "amd64", false);
        assert_eq!(
            p,
            PkgList::from([
                ("bash".into(), vec!["5.2.15-2+b7".into()]),
                ("libc6".into(), vec!["2.36-9".into()]),
                ("libc6:i386".into(), vec!["2.36-9".into()]),
                ("tzdata".into(), vec!["2024a-0".into()]),
            ])
        );
        let removed = parse_dpkg_query(text, "amd64", true);
        assert_eq!(removed, PkgList::from([("oldpkg".into(), vec!["1.0".into()])]));
    }

    #[test]
    fn rpm_qa_parsing() {
        let text = "bash\t(none)\t5.1.8\t9.el9\tx86_64\nperl-libs\t4\t5.32.1\t480.el9\tx86_64\n\
                    glibc\t(none)\t2.34\t100.el9\ti686\ngpg-pubkey\t(none)\tabc\tdef\t(none)\ntzdata\t(none)\t2024a\t1.el9\tnoarch\n";
        let p = parse_rpm_qa(text, "x86_64");
        assert_eq!(p["bash"], vec!["5.1.8-9.el9".to_string()]);
        assert_eq!(p["perl-libs"], vec!["4:5.32.1-480.el9".to_string()]);
        assert_eq!(p["glibc.i686"], vec!["2.34-100.el9".to_string()]);
        assert_eq!(p["tzdata"], vec!["2024a-1.el9".to_string()]);
        assert!(!p.contains_key("gpg-pubkey"));
    }

    #[test]
    fn compare_like_salt() {
        let old = PkgList::from([("a".into(), vec!["1".into()]), ("b".into(), vec!["1".into()]), ("c".into(), vec!["1".into()])]);
        let new =
            PkgList::from([("b".into(), vec!["2".into()]), ("c".into(), vec!["1".into()]), ("d".into(), vec!["1".into(), "2".into()])]);
        let c = compare(&old, &new);
        assert_eq!(
            serde_json::to_string(&c).unwrap(),
            r#"{"a":{"new":"","old":"1"},"b":{"old":"1","new":"2"},"d":{"old":"","new":"1,2"}}"#
        );
    }

    #[test]
    fn error_info_text() {
        let mut changes = Map::new();
        changes.insert("p".into(), json!({"old": "", "new": "1.0"}));
        let e = error_with_info("Problem encountered installing package(s)", vec!["E: one\nE: two".into()], changes);
        assert_eq!(
            e,
            ModuleError::CommandExecution(
                "Problem encountered installing package(s). Additional info follows:\n\n\
                 changes:\n    ----------\n    p:\n        ----------\n        new:\n            1.0\n        old:\n\
                 errors:\n    - E: one\n      E: two"
                    .into()
            )
        );
    }

    #[test]
    fn targets() {
        let Targets::Repo(t) = parse_targets(Some("a, b".into()), &Value::Null, &Value::Null, Some("1".into())).unwrap() else { panic!() };
        assert_eq!(t, vec![("a".into(), None), ("b".into(), None)]);
        let Targets::Repo(t) = parse_targets(Some("a".into()), &Value::Null, &Value::Null, Some("1".into())).unwrap() else { panic!() };
        assert_eq!(t, vec![("a".into(), Some("1".into()))]);
        let Targets::Repo(t) = parse_targets(None, &json!(["x", {"y": "2"}]), &Value::Null, None).unwrap() else { panic!() };
        assert_eq!(t, vec![("x".into(), None), ("y".into(), Some("2".into()))]);
        assert!(matches!(parse_targets(None, &Value::Null, &json!([{"x": "salt://x.deb"}]), None), Err(ModuleError::Invocation(_))));
        assert_eq!(
            parse_targets(None, &Value::Null, &json!([{"x": "/no/such.deb"}]), None).err(),
            Some(ModuleError::CommandExecution("Unable to cache /no/such.deb".into()))
        );
    }

    /// Build `<dir>/<name>_<version>_all.deb` with dpkg-deb.
    fn build_deb(dir: &std::path::Path, name: &str, version: &str) -> String {
        let root = dir.join(format!("{name}-{version}"));
        std::fs::create_dir_all(root.join("DEBIAN")).unwrap();
        std::fs::create_dir_all(root.join("usr/share/doc").join(name)).unwrap();
        std::fs::write(root.join("usr/share/doc").join(name).join("README"), "salt-rs pkg test\n").unwrap();
        std::fs::write(
            root.join("DEBIAN/control"),
            format!(
                "Package: {name}\nVersion: {version}\nArchitecture: all\nMaintainer: salt-rs tests <tests@example.invalid>\nDescription: throwaway package for the salt-modules pkg tests\n"
            ),
        )
        .unwrap();
        let deb = dir.join(format!("{name}_{version}_all.deb"));
        let status = std::process::Command::new("dpkg-deb")
            .args(["--root-owner-group", "--build"])
            .arg(&root)
            .arg(&deb)
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "dpkg-deb failed");
        deb.to_string_lossy().into_owned()
    }

    /// Installs a package this test builds, from a local path, then removes it: the real
    /// dpkg, as root. One test, because dpkg and apt share a lock.
    #[tokio::test]
    async fn install_version_list_remove_for_real() {
        // SAFETY: getuid has no preconditions.
        let root = unsafe { libc::getuid() } == 0;
        if !which("dpkg-deb") || backend() != Some(Backend::Apt) || !root {
            saltrs_testkit::skip("the real pkg test needs root, dpkg-deb and apt-get; run as root on Debian");
            return;
        }
        let name = "salt-rs-modules-testpkg";
        let _ = std::process::Command::new("dpkg").args(["--purge", name]).output();
        let dir = std::env::temp_dir().join(format!("salt-modules-pkg-{}", std::process::id()));
        let deb = build_deb(&dir, name, "1.0");

        let out = job("pkg.version", json!([name])).await;
        assert_eq!(out.ret, json!(""));

        let out = job("pkg.install", json!([{"__kwarg__": true, "sources": [{name: deb}]}])).await;
        assert_eq!(out.ret, json!({name: {"old": "", "new": "1.0"}}), "{:?}", out.ret);
        assert_eq!((out.retcode, out.success), (0, true));

        let out = job("pkg.version", json!([name])).await;
        assert_eq!(out.ret, json!("1.0"));
        let out = job("pkg.version", json!([name, "no-such-pkg-xyz"])).await;
        assert_eq!(out.ret, json!({name: "1.0", "no-such-pkg-xyz": ""}));
        let out = job("pkg.version", json!(["salt-rs-modules-test*"])).await;
        assert_eq!(out.ret, json!({name: "1.0"}));
        let out = job("pkg.list_pkgs", json!([])).await;
        assert_eq!(out.ret[name], json!("1.0"));
        let out = job("pkg.list_pkgs", json!([{"__kwarg__": true, "versions_as_list": true}])).await;
        assert_eq!(out.ret[name], json!(["1.0"]));

        // Already installed at that version: nothing to do.
        let out = job("pkg.install", json!([name])).await;
        assert_eq!(out.ret, json!({}));

        let out = job("pkg.remove", json!([name])).await;
        assert_eq!(serde_json::to_string(&out.ret).unwrap(), format!(r#"{{"{name}":{{"new":"","old":"1.0"}}}}"#));
        let out = job("pkg.remove", json!([name])).await;
        assert_eq!(out.ret, json!({}));
        let out = job("pkg.version", json!([name])).await;
        assert_eq!(out.ret, json!(""));

        // A name apt cannot find (no network needed to fail).
        let out = job("pkg.install", json!(["salt-rs-no-such-package-xyz"])).await;
        let text = out.ret.as_str().unwrap();
        assert!(
            text.starts_with(
                "ERROR: Problem encountered installing package(s). Additional info follows:\n\nchanges:\n    ----------\nerrors:\n    - "
            ),
            "{text}"
        );
        assert!(text.contains("Unable to locate package salt-rs-no-such-package-xyz"), "{text}");
        assert_eq!((out.retcode, out.success, out.out.as_deref()), (1, false, Some("nested")));

        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::process::Command::new("dpkg").args(["--purge", name]).output();
    }
}
