//! Who may publish through the local socket: root, the master's own user, and the users named
//! in `publisher_acl` for the functions (and minions) listed there.
//!
//! ```yaml
//! publisher_acl:
//!   fred:
//!     - test.*            # any minion
//!     - 'web*':           # only minions matching web*
//!         - cmd.run
//! ```

use salt_config::Config;
use serde_json::Value;

/// The local user on the other end of the socket, from the kernel's peer credentials.
#[derive(Debug, Clone)]
pub struct Caller {
    pub uid: u32,
    pub name: String,
}

impl Caller {
    pub fn from_uid(uid: u32) -> Caller {
        Caller { uid, name: user_name(uid).unwrap_or_else(|| uid.to_string()) }
    }
}

impl Caller {
    /// Root and the master's own user may do anything through the socket.
    pub fn is_privileged(&self) -> bool {
        // SAFETY: geteuid has no preconditions.
        self.uid == 0 || self.uid == unsafe { libc::geteuid() }
    }
}

/// The `publisher_acl` entries for `caller`, if any names it.
fn entries_for<'a>(config: &'a Config, caller: &Caller) -> Option<&'a Vec<Value>> {
    let Some(Value::Object(acl)) = config.get("publisher_acl") else { return None };
    match acl.iter().find(|(user, _)| glob(user, &caller.name)).map(|(_, v)| v) {
        Some(Value::Array(entries)) => Some(entries),
        _ => None,
    }
}

/// Whether `caller` may publish anything at all: root, the master's user, or a user that
/// `publisher_acl` names. Decides how much the control socket will read from the caller.
pub fn may_publish_something(config: &Config, caller: &Caller) -> bool {
    caller.is_privileged() || entries_for(config, caller).is_some()
}

/// Runners and the event stream read every job: only root and the master's own user.
pub fn may_run_runners(caller: &Caller) -> Result<(), String> {
    if caller.is_privileged() {
        Ok(())
    } else {
        Err(format!(
            "Authorization error occurred. User {} may not run runners or read the event bus; only root and the master's user may",
            caller.name
        ))
    }
}

fn refusal(caller: &Caller, fun: &str) -> String {
    format!("Authorization error occurred. User {} is not allowed to run {fun} (publisher_acl)", caller.name)
}

/// Checked before the target is resolved, so that a refused caller learns nothing about which
/// minions exist: Ok when some entry could allow `fun` on some minions.
pub fn may_publish_fun(config: &Config, caller: &Caller, fun: &str) -> Result<(), String> {
    if caller.is_privileged() {
        return Ok(());
    }
    let entries = entries_for(config, caller).ok_or_else(|| refusal(caller, fun))?;
    let allowed = entries.iter().any(|entry| match entry {
        Value::String(fun_glob) => glob(fun_glob, fun),
        Value::Object(by_target) => by_target.values().any(|funs| names_fun(funs, fun)),
        _ => false,
    });
    if allowed {
        Ok(())
    } else {
        Err(refusal(caller, fun))
    }
}

/// Ok, or the refusal text the CLI prints: `fun` on every one of `minions`.
pub fn may_publish(config: &Config, caller: &Caller, fun: &str, minions: &[String]) -> Result<(), String> {
    if caller.is_privileged() {
        return Ok(());
    }
    let entries = entries_for(config, caller).ok_or_else(|| refusal(caller, fun))?;
    let allowed = entries.iter().any(|entry| match entry {
        Value::String(fun_glob) => glob(fun_glob, fun),
        Value::Object(by_target) => {
            by_target.iter().any(|(minion_glob, funs)| minions.iter().all(|m| glob(minion_glob, m)) && names_fun(funs, fun))
        }
        _ => false,
    });
    if allowed {
        Ok(())
    } else {
        Err(refusal(caller, fun))
    }
}

/// Choosing a returner and its options (`--return`, `--return_config`, `--return_kwargs`) makes
/// the root minion open files and connect to hosts of the caller's choosing, so it is a privilege
/// of its own: root and the master's user, or a user that `publisher_returner_acl` grants the
/// returners named.
///
/// ```yaml
/// publisher_returner_acl:
///   fred:
///     - mysql        # fred may add --return mysql (with --return_config/--return_kwargs)
/// ```
pub fn may_choose_returners(config: &Config, caller: &Caller, returners: &[&str], with_options: bool) -> Result<(), String> {
    if caller.is_privileged() || (returners.is_empty() && !with_options) {
        return Ok(());
    }
    if returners.is_empty() {
        return Err(format!(
            "Authorization error occurred. User {} may not set returner options (--return_config, --return_kwargs) without --return",
            caller.name
        ));
    }
    let granted: Vec<&str> = match config.get("publisher_returner_acl") {
        Some(Value::Object(acl)) => acl
            .iter()
            .filter(|(user, _)| glob(user, &caller.name))
            .filter_map(|(_, v)| v.as_array())
            .flatten()
            .filter_map(Value::as_str)
            .collect(),
        _ => Vec::new(),
    };
    match returners.iter().find(|r| !granted.iter().any(|g| glob(g, r))) {
        None => Ok(()),
        Some(r) => Err(format!(
            "Authorization error occurred. User {} may not choose the returner {r} or its options (publisher_returner_acl)",
            caller.name
        )),
    }
}

fn names_fun(funs: &Value, fun: &str) -> bool {
    funs.as_array().is_some_and(|fs| fs.iter().filter_map(Value::as_str).any(|f| glob(f, fun)))
}

fn glob(pattern: &str, text: &str) -> bool {
    salt_targeting::fnmatch::fnmatch(text, pattern)
}

fn user_name(uid: u32) -> Option<String> {
    let mut buf = vec![0 as libc::c_char; 16384];
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: all pointers are valid for the call; getpwuid_r writes into pwd and buf only.
    let rc = unsafe { libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr(), buf.len(), &mut result) };
    if rc != 0 || result.is_null() {
        return None;
    }
    // SAFETY: on success pw_name points at a NUL-terminated string inside buf.
    let name = unsafe { std::ffi::CStr::from_ptr(pwd.pw_name) };
    Some(name.to_string_lossy().into_owned())
}
