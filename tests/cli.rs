//! Shell completions and manual pages, generated from the command line's
//! definitions, checked in the programs that read them: bash completes with
//! the script, man renders the pages. Needs no privileges.

mod common;

use std::process::Command;

use common::*;

#[test]
fn bash_completes_commands_and_options() {
    let script = run(["completions", "bash"]);
    script.success_without_summary();
    let wd = Workdir::new();
    let path = wd.join("pystrobe.bash");
    std::fs::write(&path, &script.stdout).unwrap();
    // Completion functions read COMP_WORDS and COMP_CWORD and answer in COMPREPLY.
    let complete = |words: &str, cword: usize| -> String {
        let out = Command::new("bash")
            .arg("-c")
            .arg(format!(
                "source {}; COMP_WORDS=({words}); COMP_CWORD={cword}; \
                 _pystrobe pystrobe \"${{COMP_WORDS[$COMP_CWORD]}}\" \"${{COMP_WORDS[$COMP_CWORD-1]}}\"; \
                 echo \"${{COMPREPLY[@]}}\"",
                path.display()
            ))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    assert_eq!(complete("pystrobe rec", 1), "record");
    assert_eq!(complete("pystrobe record --sub", 2), "--subprocesses");
    assert_eq!(complete("pystrobe record --full", 2), "--full-filenames");
    let formats = complete("pystrobe record -f ''", 3);
    for f in ["flamegraph", "folded", "speedscope", "chrometrace", "pprof"] {
        assert!(
            formats.split(' ').any(|w| w == f),
            "-f completes to {formats:?}"
        );
    }
    for shell in ["zsh", "fish", "elvish", "powershell"] {
        let r = run(["completions", shell]);
        r.success_without_summary();
        assert!(
            r.stdout.contains("record") && r.stdout.contains("subprocesses"),
            "{shell}"
        );
    }
}

#[test]
fn man_pages_render() {
    let wd = Workdir::new();
    let r = run(["man", "-o", s(wd.path())]);
    r.success_without_summary();
    for (page, expect) in [
        ("pystrobe.1", "record"),
        ("pystrobe-record.1", "--subprocesses"),
        ("pystrobe-diff.1", "BEFORE"),
        ("pystrobe-completions.1", "bash"),
    ] {
        let out = Command::new("man")
            .args(["-l", "-P", "cat"])
            .arg(wd.join(page))
            .env("MANWIDTH", "100")
            .output()
            .expect("man is installed");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{page}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            text.contains(expect),
            "{page} does not mention {expect}:\n{text}"
        );
    }
    // To stdout, for `pystrobe man | man -l -`.
    let r = run(["man"]);
    r.success_without_summary();
    assert!(
        r.stdout.starts_with(".ie") || r.stdout.contains(".TH pystrobe"),
        "{}",
        &r.stdout[..80]
    );
}
