//! Computing the core grains from the running system: `/etc/os-release`, `uname(2)`,
//! `/proc`, the interface list and name resolution, named and shaped as Salt's
//! `salt/grains/core.py` names and shapes them.

use std::collections::BTreeMap;
use std::ffi::{CStr, CString};
use std::net::{Ipv4Addr, Ipv6Addr};

use serde_json::{Map, Value};

/// The grains of this machine for minion `minion_id`. Values under the minion config's
/// `grains:` mapping (`configured`) override computed ones. Keys come out sorted.
pub fn collect(minion_id: &str, configured: &Map<String, Value>) -> Map<String, Value> {
    let mut g: BTreeMap<String, Value> = BTreeMap::new();
    let mut set = |k: &str, v: Value| {
        g.insert(k.to_string(), v);
    };

    set("id", minion_id.into());
    set("saltversion", crate::SALT_VERSION.into());
    set("saltversioninfo", Value::Array(crate::SALT_VERSION.split('.').filter_map(|p| p.parse::<i64>().ok()).map(Value::from).collect()));
    set("path", std::env::var("PATH").unwrap_or_default().into());
    set("shell", crate::cmd::default_shell().into());
    set("num_cpus", num_cpus().into());
    if let Some(mib) = mem_total_mib() {
        set("mem_total", mib.into());
    }
    if let Some(model) = cpu_model() {
        set("cpu_model", model.into());
    }
    if let Ok(id) = std::fs::read_to_string("/etc/machine-id") {
        set("machine_id", id.trim().into());
    }

    let uts = uname();
    set("kernel", uts.sysname.clone().into());
    set("kernelrelease", uts.release.into());
    set("kernelversion", uts.version.into());
    set("cpuarch", uts.machine.clone().into());
    set("nodename", uts.nodename.into());

    let localhost = hostname();
    let fqdn = fqdn(&localhost);
    let (host, domain) = match fqdn.split_once('.') {
        Some((h, d)) => (h.to_string(), d.to_string()),
        None => (fqdn.clone(), String::new()),
    };
    set("localhost", localhost.into());
    set("fqdn", fqdn.into());
    set("host", host.into());
    set("domain", domain.into());

    let os = os_grains(&read_os_release(), &uts.sysname, &uts.machine);
    g.extend(os);

    let ifaces = interfaces();
    let mut ipv4: Vec<String> = ifaces.values().flat_map(|i| i.v4.iter().map(|a| a.to_string())).collect();
    let mut ipv6: Vec<String> = ifaces.values().flat_map(|i| i.v6.iter().map(|a| a.to_string())).collect();
    ipv4.sort();
    ipv4.dedup();
    ipv6.sort();
    ipv6.dedup();
    let per_iface = |f: &dyn Fn(&Iface) -> Vec<String>| -> Value {
        Value::Object(ifaces.iter().map(|(n, i)| (n.clone(), Value::from(f(i)))).collect())
    };
    g.insert("ip4_interfaces".into(), per_iface(&|i| i.v4.iter().map(|a| a.to_string()).collect()));
    g.insert("ip6_interfaces".into(), per_iface(&|i| i.v6.iter().map(|a| a.to_string()).collect()));
    g.insert("ipv4".into(), ipv4.into());
    g.insert("ipv6".into(), ipv6.into());

    for (k, v) in configured {
        g.insert(k.clone(), v.clone());
    }
    g.into_iter().collect()
}

struct Uname {
    sysname: String,
    nodename: String,
    release: String,
    version: String,
    machine: String,
}

fn uname() -> Uname {
    // SAFETY: utsname is plain old data; uname fills it with NUL-terminated strings.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    let ok = unsafe { libc::uname(&mut u) } == 0;
    let field = |f: &[libc::c_char]| -> String {
        if !ok {
            return String::new();
        }
        // SAFETY: uname NUL-terminates every field within its array.
        unsafe { CStr::from_ptr(f.as_ptr()) }.to_string_lossy().into_owned()
    };
    Uname {
        sysname: field(&u.sysname),
        nodename: field(&u.nodename),
        release: field(&u.release),
        version: field(&u.version),
        machine: field(&u.machine),
    }
}

fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates on success
    // when the name fits, and the last byte stays 0 otherwise.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len() - 1) };
    if rc != 0 {
        return "localhost".into();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// The canonical name of `host` from the resolver (Salt's `get_fqhostname`), or `host`.
fn fqdn(host: &str) -> String {
    let Ok(c_host) = CString::new(host) else {
        return host.to_string();
    };
    // SAFETY: zeroed addrinfo is a valid "no hints" value; we set only flags/family.
    let mut hints: libc::addrinfo = unsafe { std::mem::zeroed() };
    hints.ai_flags = libc::AI_CANONNAME;
    hints.ai_family = libc::AF_UNSPEC;
    let mut res: *mut libc::addrinfo = std::ptr::null_mut();
    // SAFETY: valid C strings and out-pointer; the list is freed below.
    let rc = unsafe { libc::getaddrinfo(c_host.as_ptr(), std::ptr::null(), &hints, &mut res) };
    if rc != 0 || res.is_null() {
        return host.to_string();
    }
    let mut best = None;
    let mut cur = res;
    while !cur.is_null() {
        // SAFETY: cur walks the list getaddrinfo returned.
        let ai = unsafe { &*cur };
        if !ai.ai_canonname.is_null() {
            let name = unsafe { CStr::from_ptr(ai.ai_canonname) }.to_string_lossy().into_owned();
            if best.is_none() || (name.contains('.') && !best.as_deref().unwrap_or("").contains('.')) {
                best = Some(name);
            }
        }
        cur = ai.ai_next;
    }
    // SAFETY: res came from getaddrinfo.
    unsafe { libc::freeaddrinfo(res) };
    best.filter(|n| !n.is_empty()).unwrap_or_else(|| host.to_string())
}

fn num_cpus() -> i64 {
    // SAFETY: sysconf has no memory-safety preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    if n > 0 {
        n as i64
    } else {
        1
    }
}

/// `MemTotal` from /proc/meminfo in MiB, as Salt reports `mem_total`.
fn mem_total_mib() -> Option<i64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    parse_meminfo(&text)
}

fn parse_meminfo(text: &str) -> Option<i64> {
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: i64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024)
}

fn cpu_model() -> Option<String> {
    let text = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    text.lines().find(|l| l.starts_with("model name")).and_then(|l| l.split_once(':')).map(|(_, v)| v.trim().to_string())
}

fn read_os_release() -> BTreeMap<String, String> {
    ["/etc/os-release", "/usr/lib/os-release"]
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok())
        .map(|t| parse_os_release(&t))
        .unwrap_or_default()
}

/// `KEY=value` lines; values may be single- or double-quoted (with backslash escapes).
fn parse_os_release(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') {
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let v = v.trim();
        let v = if v.len() >= 2 && (v.starts_with('"') && v.ends_with('"') || v.starts_with('\'') && v.ends_with('\'')) {
            let inner = &v[1..v.len() - 1];
            let mut s = String::new();
            let mut chars = inner.chars();
            while let Some(c) = chars.next() {
                if c == '\\' {
                    if let Some(n) = chars.next() {
                        s.push(n);
                    }
                } else {
                    s.push(c);
                }
            }
            s
        } else {
            v.to_string()
        };
        out.insert(k.trim().to_string(), v);
    }
    out
}

/// The `os*` grains from os-release data, with Salt's names for the distributions.
fn os_grains(rel: &BTreeMap<String, String>, kernel: &str, machine: &str) -> BTreeMap<String, Value> {
    let mut g: BTreeMap<String, Value> = BTreeMap::new();
    let id = rel.get("ID").map(|s| s.to_lowercase()).unwrap_or_default();
    let like = rel.get("ID_LIKE").map(|s| s.to_lowercase()).unwrap_or_default();
    let os = match id.as_str() {
        "debian" => "Debian",
        "ubuntu" => "Ubuntu",
        "raspbian" => "Raspbian",
        "linuxmint" => "Mint",
        "rhel" => "RedHat",
        "centos" => "CentOS",
        "fedora" => "Fedora",
        "rocky" => "Rocky",
        "almalinux" => "AlmaLinux",
        "ol" => "OEL",
        "amzn" => "Amazon",
        "opensuse-leap" | "opensuse-tumbleweed" | "opensuse" => "openSUSE",
        "sles" => "SUSE",
        "arch" => "Arch",
        "alpine" => "Alpine",
        "gentoo" => "Gentoo",
        "" => kernel,
        other => rel.get("NAME").map(String::as_str).unwrap_or(other),
    }
    .to_string();
    let family_of = |s: &str| -> Option<&'static str> {
        match s {
            "debian" | "ubuntu" | "raspbian" | "linuxmint" => Some("Debian"),
            "rhel" | "centos" | "fedora" | "rocky" | "almalinux" | "ol" | "amzn" => Some("RedHat"),
            "suse" | "sles" | "opensuse" | "opensuse-leap" | "opensuse-tumbleweed" => Some("Suse"),
            "arch" => Some("Arch"),
            "alpine" => Some("Alpine"),
            "gentoo" => Some("Gentoo"),
            _ => None,
        }
    };
    let family = family_of(&id).or_else(|| like.split_whitespace().find_map(family_of)).map(str::to_string).unwrap_or_else(|| os.clone());
    let osrelease = rel.get("VERSION_ID").cloned().unwrap_or_default();
    let info: Vec<i64> = osrelease.split('.').map_while(|p| p.parse().ok()).collect();
    let fullname = rel.get("NAME").cloned().unwrap_or_else(|| os.clone());
    let codename = rel.get("VERSION_CODENAME").cloned().unwrap_or_default();

    if !osrelease.is_empty() {
        // Salt fingerprints a few OSes by `os`, the rest by `osfullname`; Ubuntu keeps the
        // full release, the rest only the major.
        let name =
            if ["Debian", "Raspbian", "FreeBSD", "OpenBSD", "NetBSD"].contains(&os.as_str()) { os.clone() } else { fullname.clone() };
        let rel_part =
            if name == "Ubuntu" { osrelease.clone() } else { info.first().map(|m| m.to_string()).unwrap_or_else(|| osrelease.clone()) };
        g.insert("osfinger".into(), format!("{name}-{rel_part}").into());
    }
    if let Some(major) = info.first() {
        g.insert("osmajorrelease".into(), (*major).into());
    }
    g.insert("osrelease_info".into(), info.into());
    g.insert("osrelease".into(), osrelease.into());
    g.insert("oscodename".into(), codename.clone().into());
    g.insert("osfullname".into(), fullname.clone().into());
    g.insert("lsb_distrib_id".into(), fullname.into());
    g.insert("lsb_distrib_release".into(), g["osrelease"].clone());
    g.insert("lsb_distrib_codename".into(), codename.into());
    let osarch = if family == "Debian" {
        match machine {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "i686" | "i586" | "i386" => "i386",
            "armv7l" => "armhf",
            other => other,
        }
        .to_string()
    } else {
        machine.to_string()
    };
    g.insert("osarch".into(), osarch.into());
    g.insert("os".into(), os.into());
    g.insert("os_family".into(), family.into());
    g
}

#[derive(Default)]
struct Iface {
    v4: Vec<Ipv4Addr>,
    v6: Vec<Ipv6Addr>,
}

/// Addresses per interface from `getifaddrs(3)`.
fn interfaces() -> BTreeMap<String, Iface> {
    let mut out: BTreeMap<String, Iface> = BTreeMap::new();
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: out-pointer; the list is freed below.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return out;
    }
    let mut cur = head;
    while !cur.is_null() {
        // SAFETY: cur walks the list getifaddrs returned.
        let ifa = unsafe { &*cur };
        cur = ifa.ifa_next;
        if ifa.ifa_name.is_null() {
            continue;
        }
        let name = unsafe { CStr::from_ptr(ifa.ifa_name) }.to_string_lossy().into_owned();
        let entry = out.entry(name).or_default();
        if ifa.ifa_addr.is_null() {
            continue;
        }
        // SAFETY: ifa_addr points to a sockaddr whose family says which struct it is.
        match unsafe { (*ifa.ifa_addr).sa_family } as i32 {
            libc::AF_INET => {
                let sin = unsafe { &*(ifa.ifa_addr as *const libc::sockaddr_in) };
                entry.v4.push(Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)));
            }
            libc::AF_INET6 => {
                let sin6 = unsafe { &*(ifa.ifa_addr as *const libc::sockaddr_in6) };
                entry.v6.push(Ipv6Addr::from(sin6.sin6_addr.s6_addr));
            }
            _ => {}
        }
    }
    // SAFETY: head came from getifaddrs.
    unsafe { libc::freeifaddrs(head) };
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const DEBIAN12: &str = r#"PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
"#;

    #[test]
    fn debian_os_grains_match_salt() {
        let g = os_grains(&parse_os_release(DEBIAN12), "Linux", "x86_64");
        assert_eq!(g["os"], json!("Debian"));
        assert_eq!(g["os_family"], json!("Debian"));
        assert_eq!(g["osfullname"], json!("Debian GNU/Linux"));
        assert_eq!(g["osrelease"], json!("12"));
        assert_eq!(g["osrelease_info"], json!([12]));
        assert_eq!(g["osmajorrelease"], json!(12));
        assert_eq!(g["oscodename"], json!("bookworm"));
        assert_eq!(g["osfinger"], json!("Debian-12"));
        assert_eq!(g["osarch"], json!("amd64"));
    }

    #[test]
    fn rhel_like_and_ubuntu() {
        let rocky = "NAME=\"Rocky Linux\"\nVERSION_ID=\"9.3\"\nID=\"rocky\"\nID_LIKE=\"rhel centos fedora\"\n";
        let g = os_grains(&parse_os_release(rocky), "Linux", "x86_64");
        assert_eq!((g["os"].clone(), g["os_family"].clone()), (json!("Rocky"), json!("RedHat")));
        assert_eq!(g["osfinger"], json!("Rocky Linux-9"));
        assert_eq!(g["osrelease_info"], json!([9, 3]));
        assert_eq!(g["osarch"], json!("x86_64"));
        let ubuntu = "NAME=\"Ubuntu\"\nVERSION_ID=\"22.04\"\nVERSION_CODENAME=jammy\nID=ubuntu\n";
        let g = os_grains(&parse_os_release(ubuntu), "Linux", "x86_64");
        assert_eq!(g["osfinger"], json!("Ubuntu-22.04"));
        assert_eq!(g["os_family"], json!("Debian"));
    }

    #[test]
    fn meminfo_in_mib() {
        assert_eq!(parse_meminfo("MemTotal:        8048576 kB\nMemFree: 1 kB\n"), Some(7859));
    }

    #[test]
    fn collect_on_this_machine() {
        let mut configured = Map::new();
        configured.insert("roles".into(), json!(["web"]));
        configured.insert("os".into(), json!("Overridden"));
        let g = collect("m1", &configured);
        assert_eq!(g["id"], json!("m1"));
        assert_eq!(g["saltversion"], json!("3008.4"));
        assert_eq!(g["saltversioninfo"], json!([3008, 4]));
        assert_eq!(g["kernel"], json!("Linux"));
        assert_eq!(g["roles"], json!(["web"]));
        assert_eq!(g["os"], json!("Overridden"));
        assert!(g["num_cpus"].as_i64().unwrap() >= 1);
        assert!(g["mem_total"].as_i64().unwrap() > 0);
        assert!(g["ipv4"].as_array().unwrap().contains(&json!("127.0.0.1")));
        assert_eq!(g["ip4_interfaces"]["lo"], json!(["127.0.0.1"]));
        for k in ["host", "fqdn", "localhost", "nodename", "kernelrelease", "cpuarch", "osrelease", "path"] {
            assert!(g[k].as_str().is_some_and(|s| !s.is_empty()), "{k} empty");
        }
        let keys: Vec<&String> = g.keys().collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
    }
}
