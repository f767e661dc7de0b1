//! Dropping privileges once the capture handles are open. Opening a capture
//! needs CAP_NET_RAW (and CAP_NET_ADMIN for promiscuous mode); nothing else
//! does. So: switch to an unprivileged user when started as root, clear
//! every capability except those (kept by default so that a capture can be
//! reopened when its interface returns), and forbid regaining privileges
//! (no_new_privs).

use caps::{CapSet, Capability, CapsHashSet};
use std::ffi::CString;

/// Why privileges could not be dropped (the sensor does not start).
#[derive(Debug, thiserror::Error)]
pub enum PrivilegeError {
    #[error("no such user {0:?}")]
    NoUser(String),
    #[error("no such group {0:?}")]
    NoGroup(String),
    #[error("{what}: {source}")]
    Call {
        what: String,
        source: std::io::Error,
    },
    #[error("setting {set} capabilities: {message}")]
    Caps { set: String, message: String },
    #[error("could regain root after dropping privileges")]
    RootRegained,
}

/// The error of the system call just made.
fn os_error(what: impl Into<String>) -> PrivilegeError {
    PrivilegeError::Call {
        what: what.into(),
        source: std::io::Error::last_os_error(),
    }
}

/// What the drop did, for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dropped {
    pub uid: u32,
    pub gid: u32,
    pub switched_user: bool,
    /// Capabilities kept (sorted names), for reopening captures.
    pub kept: Vec<String>,
}

fn lookup_user(name: &str) -> Result<(u32, u32), PrivilegeError> {
    let c = CString::new(name).map_err(|_| PrivilegeError::NoUser(name.to_owned()))?;
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: getpwnam_r writes into `pwd` and `buf`, both valid for the
    // lengths given; `result` is set to `&pwd` or null.
    let rc = unsafe {
        libc::getpwnam_r(
            c.as_ptr(),
            &mut pwd,
            buf.as_mut_ptr(),
            buf.len(),
            &mut result,
        )
    };
    if rc != 0 || result.is_null() {
        return Err(PrivilegeError::NoUser(name.to_owned()));
    }
    Ok((pwd.pw_uid, pwd.pw_gid))
}

fn lookup_group(name: &str) -> Result<u32, PrivilegeError> {
    let c = CString::new(name).map_err(|_| PrivilegeError::NoGroup(name.to_owned()))?;
    let mut grp: libc::group = unsafe { std::mem::zeroed() };
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    let mut result: *mut libc::group = std::ptr::null_mut();
    // SAFETY: as for getpwnam_r.
    let rc = unsafe {
        libc::getgrnam_r(
            c.as_ptr(),
            &mut grp,
            buf.as_mut_ptr(),
            buf.len(),
            &mut result,
        )
    };
    if rc != 0 || result.is_null() {
        return Err(PrivilegeError::NoGroup(name.to_owned()));
    }
    Ok(grp.gr_gid)
}

/// Whether `name` is a user of this host (for `run --check-config`).
pub fn user_exists(name: &str) -> bool {
    lookup_user(name).is_ok()
}

/// The capabilities that opening a capture needs: CAP_NET_RAW, and
/// CAP_NET_ADMIN for promiscuous mode.
pub fn capture_caps(promisc: bool) -> Vec<Capability> {
    let mut v = vec![Capability::CAP_NET_RAW];
    if promisc {
        v.push(Capability::CAP_NET_ADMIN);
    }
    v
}

/// Switch to `user`/`group` when running as root, then clear every
/// capability except those in `keep` (which stay permitted and effective,
/// and only if the process had them). Without a user, root keeps its uid
/// (logged by the caller) but loses every other capability.
pub fn drop_privileges(
    user: Option<&str>,
    group: Option<&str>,
    keep: &[Capability],
) -> Result<Dropped, PrivilegeError> {
    // SAFETY: plain libc calls without pointers.
    let euid = unsafe { libc::geteuid() };
    // Only what the process holds now can be kept.
    let had = caps::read(None, CapSet::Permitted).unwrap_or_default();
    let keep: CapsHashSet = keep.iter().copied().filter(|c| had.contains(c)).collect();
    let mut switched = false;
    if euid == 0
        && let Some(user) = user
    {
        let (uid, mut gid) = lookup_user(user)?;
        if let Some(g) = group {
            gid = lookup_group(g)?;
        }
        // Without KEEPCAPS, leaving uid 0 empties the permitted set.
        // SAFETY: prctl with integer arguments only.
        if !keep.is_empty() && unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) } != 0 {
            return Err(os_error("PR_SET_KEEPCAPS"));
        }
        // Order matters: supplementary groups and gid while still root.
        // SAFETY: setgroups with a zero-length list does not read the pointer.
        if unsafe { libc::setgroups(0, std::ptr::null()) } != 0 {
            return Err(os_error("setgroups"));
        }
        // SAFETY: plain libc calls.
        if unsafe { libc::setresgid(gid, gid, gid) } != 0 {
            return Err(os_error(format!("setresgid({gid})")));
        }
        if unsafe { libc::setresuid(uid, uid, uid) } != 0 {
            return Err(os_error(format!("setresuid({uid})")));
        }
        // Paranoia: getting root back must now fail.
        if uid != 0 && unsafe { libc::setuid(0) } == 0 {
            return Err(PrivilegeError::RootRegained);
        }
        // SAFETY: prctl with integer arguments only.
        unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 0, 0, 0, 0) };
        switched = true;
    }
    for set in [CapSet::Inheritable, CapSet::Ambient] {
        // Clearing can fail for sets the kernel lacks (old kernels: ambient).
        let _ = caps::clear(None, set);
    }
    // Effective must be a subset of permitted: narrow it first.
    for set in [CapSet::Effective, CapSet::Permitted] {
        caps::set(None, set, &keep).map_err(|e| PrivilegeError::Caps {
            set: format!("{set:?}"),
            message: e.to_string(),
        })?;
    }
    // SAFETY: prctl with integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(os_error("PR_SET_NO_NEW_PRIVS"));
    }
    // SAFETY: plain libc calls.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    let mut kept: Vec<String> = keep.iter().map(ToString::to_string).collect();
    kept.sort();
    Ok(Dropped {
        uid,
        gid,
        switched_user: switched,
        kept,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_user_is_an_error() {
        assert!(lookup_user("no-such-user-shadowmcp-test").is_err());
        assert!(lookup_group("no-such-group-shadowmcp-test").is_err());
        assert!(lookup_user("root").is_ok());
    }

    /// Runs the real drop in a child process (it is irreversible).
    #[test]
    fn drop_in_child_process() {
        if std::env::var_os("SHADOWMCP_DROP_CHILD").is_some() {
            let user = if unsafe { libc::geteuid() } == 0 {
                Some("nobody")
            } else {
                None
            };
            let keep = capture_caps(false);
            let before = caps::read(None, CapSet::Permitted).expect("caps");
            let d = drop_privileges(user, None, &keep).expect("drop");
            let eff = caps::read(None, CapSet::Effective).expect("caps");
            let perm = caps::read(None, CapSet::Permitted).expect("caps");
            // Root (or a process given CAP_NET_RAW) keeps exactly that one,
            // so it can reopen a capture; anyone else ends with nothing.
            let want: CapsHashSet = keep
                .iter()
                .copied()
                .filter(|c| before.contains(c))
                .collect();
            assert_eq!(d.kept.len(), want.len());
            assert_eq!(eff, want);
            assert_eq!(perm, want);
            assert!(
                caps::read(None, CapSet::Inheritable)
                    .expect("caps")
                    .is_empty()
            );
            // A packet socket opens with the kept capability.
            if want.contains(&Capability::CAP_NET_RAW) {
                // SAFETY: plain socket call; the descriptor is closed below.
                let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, 0) };
                assert!(fd >= 0, "{}", std::io::Error::last_os_error());
                unsafe { libc::close(fd) };
            }
            // And nothing is kept when nothing is asked for.
            let d2 = drop_privileges(None, None, &[]).expect("drop all");
            assert!(d2.kept.is_empty());
            assert!(
                caps::read(None, CapSet::Effective)
                    .expect("caps")
                    .is_empty()
            );
            assert!(
                caps::read(None, CapSet::Permitted)
                    .expect("caps")
                    .is_empty()
            );
            if user.is_some() {
                assert!(d.switched_user && d.uid != 0);
                assert_ne!(unsafe { libc::setuid(0) }, 0, "root must not come back");
            }
            return;
        }
        let exe = std::env::current_exe().expect("test binary");
        let status = std::process::Command::new(exe)
            .args([
                "--exact",
                "privileges::tests::drop_in_child_process",
                "--nocapture",
            ])
            .env("SHADOWMCP_DROP_CHILD", "1")
            .status()
            .expect("spawn");
        assert!(status.success());
    }
}
