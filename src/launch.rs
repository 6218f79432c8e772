//! Launch mode: starting the command to profile.
//!
//! The command joins the in-kernel filter from inside its own process,
//! between fork and exec, so its very first instructions (the dynamic loader,
//! the interpreter's start-up) are sampled. Under sudo it runs as the user
//! who invoked sudo, not as root: profiling a program should not change what
//! it may do or who owns the files it writes.

use std::ffi::CString;
use std::os::fd::RawFd;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};

use crate::error::Coded;

/// The user to run the command as.
#[derive(Clone, Debug)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<libc::gid_t>,
    pub name: String,
    pub home: Option<String>,
}

/// The user who ran `sudo pystrobe ...`: from SUDO_UID and SUDO_GID, when
/// pystrobe runs as root on behalf of someone else.
pub fn invoking_user() -> Option<User> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return None;
    }
    let uid: u32 = std::env::var("SUDO_UID").ok()?.parse().ok()?;
    let gid: u32 = std::env::var("SUDO_GID").ok()?.parse().ok()?;
    if uid == 0 {
        return None;
    }
    let (name, home) =
        passwd_entry(uid).unwrap_or_else(|| (std::env::var("SUDO_USER").unwrap_or_default(), None));
    let groups = group_list(&name, gid);
    Some(User {
        uid,
        gid,
        groups,
        name,
        home,
    })
}

/// Name and home directory of a user from the password database.
fn passwd_entry(uid: u32) -> Option<(String, Option<String>)> {
    let mut buf = vec![0u8; 16384];
    // SAFETY: pwd is plain data filled in by getpwuid_r from buf, which
    // outlives every pointer read below.
    unsafe {
        let mut pwd: libc::passwd = std::mem::zeroed();
        let mut out: *mut libc::passwd = std::ptr::null_mut();
        let rc = libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr().cast(), buf.len(), &mut out);
        if rc != 0 || out.is_null() {
            return None;
        }
        let text = |p: *const libc::c_char| {
            (!p.is_null()).then(|| std::ffi::CStr::from_ptr(p).to_string_lossy().into_owned())
        };
        Some((text(pwd.pw_name).unwrap_or_default(), text(pwd.pw_dir)))
    }
}

/// The user's supplementary groups (at least `gid`).
fn group_list(name: &str, gid: u32) -> Vec<libc::gid_t> {
    let Ok(cname) = CString::new(name) else {
        return vec![gid];
    };
    if name.is_empty() {
        return vec![gid];
    }
    let mut n: libc::c_int = 64;
    loop {
        let mut groups = vec![0 as libc::gid_t; n as usize];
        let asked = n;
        // SAFETY: groups has room for n entries, as we tell getgrouplist.
        let rc = unsafe { libc::getgrouplist(cname.as_ptr(), gid, groups.as_mut_ptr(), &mut n) };
        if rc >= 0 {
            groups.truncate(n as usize);
            return groups;
        }
        if n <= asked || n > 65536 {
            return vec![gid];
        }
    }
}

/// Starts `argv` as `user` (or as pystrobe's own user), adding its PID to
/// the BPF filter map `filter_fd` before it execs. A command that cannot be
/// found exits 127 and one that cannot be run 126, as in a shell.
pub fn spawn(argv: &[String], filter_fd: RawFd, user: Option<&User>) -> Result<Child, Coded> {
    let (program, rest) = argv
        .split_first()
        .ok_or_else(|| Coded::new(2, "no command given".to_string()))?;
    let mut cmd = Command::new(program);
    cmd.args(rest);
    if let Some(u) = user {
        cmd.env("USER", &u.name).env("LOGNAME", &u.name);
        if let Some(home) = &u.home {
            cmd.env("HOME", home);
        }
    }
    let user = user.cloned();
    // SAFETY: the closure runs in the child between fork and exec and makes
    // only system calls (no allocation, no locks).
    unsafe {
        cmd.pre_exec(move || {
            let pid: u32 = libc::getpid() as u32;
            let one: u8 = 1;
            libbpf_rs::libbpf_sys::bpf_map_update_elem(
                filter_fd,
                (&raw const pid).cast(),
                (&raw const one).cast(),
                0,
            );
            if let Some(u) = &user {
                // Groups, then group, then user: after setuid the others
                // could no longer be changed.
                if libc::setgroups(u.groups.len(), u.groups.as_ptr()) != 0
                    || libc::setgid(u.gid) != 0
                    || libc::setuid(u.uid) != 0
                {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    cmd.spawn().map_err(|e| {
        let code = match e.kind() {
            std::io::ErrorKind::NotFound => 127,
            _ => 126,
        };
        Coded::new(code, format!("cannot run `{program}`: {e}"))
    })
}
