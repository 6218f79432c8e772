//! Stopping a process for a consistent snapshot of its threads (`pystrobe
//! dump`): every thread is seized and interrupted with ptrace, so their
//! registers can be read and their stacks do not move while they are read,
//! then let go on drop. The target is paused for as long as the snapshot
//! takes (milliseconds); `dump --nonblocking` does without.

use std::collections::BTreeMap;
use std::io;

/// The user registers that stack walking needs.
#[derive(Clone, Copy, Debug, Default)]
pub struct Regs {
    pub ip: u64,
    pub sp: u64,
    pub bp: u64,
    /// pthread_self() of the thread on x86_64.
    pub fs_base: u64,
}

/// Threads of a process, stopped until this is dropped.
pub struct Stopped {
    regs: BTreeMap<u32, Regs>,
}

impl Stopped {
    /// Seizes and interrupts every thread of `pid`, including threads that
    /// start meanwhile (the task list is read until it stops growing).
    pub fn stop(pid: u32) -> io::Result<Stopped> {
        let mut s = Stopped {
            regs: BTreeMap::new(),
        };
        for _ in 0..16 {
            let mut added = false;
            for tid in tasks(pid)? {
                if s.regs.contains_key(&tid) {
                    continue;
                }
                match seize(tid) {
                    Ok(regs) => {
                        s.regs.insert(tid, regs);
                        added = true;
                    }
                    // Exited meanwhile.
                    Err(e) if e.raw_os_error() == Some(libc::ESRCH) => {}
                    Err(e) => return Err(e),
                }
            }
            if !added {
                break;
            }
        }
        Ok(s)
    }

    pub fn regs(&self, tid: u32) -> Option<Regs> {
        self.regs.get(&tid).copied()
    }
}

impl Drop for Stopped {
    fn drop(&mut self) {
        for &tid in self.regs.keys() {
            // SAFETY: plain ptrace call on a thread we seized.
            unsafe { libc::ptrace(libc::PTRACE_DETACH, tid as libc::pid_t, 0, 0) };
        }
    }
}

/// The thread IDs of a process.
pub fn tasks(pid: u32) -> io::Result<Vec<u32>> {
    let mut tids: Vec<u32> = std::fs::read_dir(format!("/proc/{pid}/task"))?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    tids.sort_unstable();
    Ok(tids)
}

fn seize(tid: u32) -> io::Result<Regs> {
    let t = tid as libc::pid_t;
    // SAFETY: ptrace and waitpid are plain system calls; regs is a zeroed
    // user_regs_struct that PTRACE_GETREGS fills.
    unsafe {
        if libc::ptrace(libc::PTRACE_SEIZE, t, 0, 0) != 0 {
            return Err(io::Error::last_os_error());
        }
        if libc::ptrace(libc::PTRACE_INTERRUPT, t, 0, 0) != 0 {
            let e = io::Error::last_os_error();
            libc::ptrace(libc::PTRACE_DETACH, t, 0, 0);
            return Err(e);
        }
        let mut status = 0;
        if libc::waitpid(t, &mut status, libc::__WALL) != t {
            let e = io::Error::last_os_error();
            libc::ptrace(libc::PTRACE_DETACH, t, 0, 0);
            return Err(e);
        }
        let mut regs: libc::user_regs_struct = std::mem::zeroed();
        if libc::ptrace(libc::PTRACE_GETREGS, t, 0, &mut regs as *mut _) != 0 {
            let e = io::Error::last_os_error();
            libc::ptrace(libc::PTRACE_DETACH, t, 0, 0);
            return Err(e);
        }
        Ok(Regs {
            ip: regs.rip,
            sp: regs.rsp,
            bp: regs.rbp,
            fs_base: regs.fs_base,
        })
    }
}
