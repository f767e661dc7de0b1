//! Dropping privileges once the capture handles are open. Opening a capture
//! needs CAP_NET_RAW (and CAP_NET_ADMIN for promiscuous mode); nothing after
//! that does. So: switch to an unprivileged user when started as root, clear
//! every capability set, and forbid regaining privileges (no_new_privs).

use caps::CapSet;
use std::ffi::CString;

/// What the drop did, for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dropped {
    pub uid: u32,
    pub gid: u32,
    pub switched_user: bool,
}

fn lookup_user(name: &str) -> Result<(u32, u32), String> {
    let c = CString::new(name).map_err(|_| format!("user name {name:?} contains NUL"))?;
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
        return Err(format!("no such user {name:?}"));
    }
    Ok((pwd.pw_uid, pwd.pw_gid))
}

fn lookup_group(name: &str) -> Result<u32, String> {
    let c = CString::new(name).map_err(|_| format!("group name {name:?} contains NUL"))?;
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
        return Err(format!("no such group {name:?}"));
    }
    Ok(grp.gr_gid)
}

/// Switch to `user`/`group` when running as root, then clear capabilities.
/// Without a user, root keeps its uid (logged by the caller) but still loses
/// every capability.
pub fn drop_privileges(user: Option<&str>, group: Option<&str>) -> Result<Dropped, String> {
    // SAFETY: plain libc calls without pointers.
    let euid = unsafe { libc::geteuid() };
    let mut switched = false;
    if euid == 0
        && let Some(user) = user
    {
        let (uid, mut gid) = lookup_user(user)?;
        if let Some(g) = group {
            gid = lookup_group(g)?;
        }
        // Order matters: supplementary groups and gid while still root.
        // SAFETY: setgroups with a zero-length list does not read the pointer.
        if unsafe { libc::setgroups(0, std::ptr::null()) } != 0 {
            return Err(format!("setgroups: {}", std::io::Error::last_os_error()));
        }
        // SAFETY: plain libc calls.
        if unsafe { libc::setresgid(gid, gid, gid) } != 0 {
            return Err(format!(
                "setresgid({gid}): {}",
                std::io::Error::last_os_error()
            ));
        }
        if unsafe { libc::setresuid(uid, uid, uid) } != 0 {
            return Err(format!(
                "setresuid({uid}): {}",
                std::io::Error::last_os_error()
            ));
        }
        // Paranoia: getting root back must now fail.
        if uid != 0 && unsafe { libc::setuid(0) } == 0 {
            return Err("could regain root after dropping privileges".into());
        }
        switched = true;
    }
    for set in [
        CapSet::Effective,
        CapSet::Inheritable,
        CapSet::Ambient,
        CapSet::Permitted,
    ] {
        // Clearing can fail for sets the kernel lacks (old kernels: ambient);
        // effective and permitted must succeed.
        if let Err(e) = caps::clear(None, set)
            && matches!(set, CapSet::Effective | CapSet::Permitted)
        {
            return Err(format!("clearing {set:?} capabilities: {e}"));
        }
    }
    // SAFETY: prctl with integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(format!(
            "PR_SET_NO_NEW_PRIVS: {}",
            std::io::Error::last_os_error()
        ));
    }
    // SAFETY: plain libc calls.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    Ok(Dropped {
        uid,
        gid,
        switched_user: switched,
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
            let d = drop_privileges(user, None).expect("drop");
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
