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

/// Runners and the event stream read every job: only root and the master's own user.
pub fn may_run_runners(caller: &Caller) -> Result<(), String> {
    // SAFETY: geteuid has no preconditions.
    if caller.uid == 0 || caller.uid == unsafe { libc::geteuid() } {
        Ok(())
    } else {
        Err(format!("Authorization error occurred. User {} may not run runners or read the event bus; only root and the master's user may", caller.name))
    }
}

/// Ok, or the refusal text the CLI prints.
pub fn may_publish(config: &Config, caller: &Caller, fun: &str, minions: &[String]) -> Result<(), String> {
    // SAFETY: geteuid has no preconditions.
    if caller.uid == 0 || caller.uid == unsafe { libc::geteuid() } {
        return Ok(());
    }
    let refusal = || format!("Authorization error occurred. User {} is not allowed to run {fun} (publisher_acl)", caller.name);
    let Some(Value::Object(acl)) = config.get("publisher_acl") else { return Err(refusal()) };
    let Some(Value::Array(entries)) = acl.iter().find(|(user, _)| glob(user, &caller.name)).map(|(_, v)| v) else {
        return Err(refusal());
    };
    let allowed = entries.iter().any(|entry| match entry {
        Value::String(fun_glob) => glob(fun_glob, fun),
        Value::Object(by_target) => by_target.iter().any(|(minion_glob, funs)| {
            minions.iter().all(|m| glob(minion_glob, m))
                && funs.as_array().is_some_and(|fs| fs.iter().filter_map(Value::as_str).any(|f| glob(f, fun)))
        }),
        _ => false,
    });
    if allowed {
        Ok(())
    } else {
        Err(refusal())
    }
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
