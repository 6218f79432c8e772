//! `pystrobe diff BEFORE AFTER`: a differential flamegraph of two folded
//! recordings, drawn by inferno. The shape is AFTER's; a frame is red where
//! it has more samples than in BEFORE and blue where it has fewer.
//!
//! Two recordings of one program have different PIDs and thread IDs, so
//! process and thread frames (`name (1234)`, `name (1234 #2, ns 7)`) lose
//! their IDs first: otherwise nothing would line up.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result, bail};
use inferno::differential;
use inferno::flamegraph::{self, Options};

use crate::cli::DiffArgs;
use crate::error::Coded;
use crate::output::file::OutputFile;

/// Largest input read: folded files are text, one line per distinct stack.
const MAX_INPUT_BYTES: u64 = 1 << 30;

pub fn run(args: DiffArgs) -> Result<()> {
    let before = read_folded(&args.before, args.keep_ids)?;
    let after = read_folded(&args.after, args.keep_ids)?;
    let output = OutputFile::create(&args.output)?;

    let mut lines = Vec::new();
    differential::from_readers(
        differential::Options {
            normalize: !args.absolute,
            strip_hex: false,
        },
        before.as_bytes(),
        after.as_bytes(),
        &mut lines,
    )
    .context("comparing the profiles")?;

    let mut opts = Options::default();
    opts.title = crate::stack::frame::sanitize(&format!(
        "pystrobe diff: {} → {}",
        args.before.display(),
        args.after.display()
    ));
    opts.subtitle = Some(format!(
        "red: more samples in AFTER, blue: fewer{}",
        if args.absolute {
            ""
        } else {
            " (BEFORE scaled to AFTER's total)"
        }
    ));
    opts.count_name = "samples".to_string();
    opts.name_type = "Function:".to_string();
    let owner = crate::launch::invoking_user().map(|u| (u.uid, u.gid));
    output.commit(0o644, owner, |w: &mut dyn Write| {
        flamegraph::from_reader(&mut opts, lines.as_slice(), w).context("drawing the flamegraph")
    })?;
    eprintln!(
        "pystrobe: wrote a differential flamegraph to {}",
        args.output.display()
    );
    Ok(())
}

/// A folded file, checked line by line, with process and thread IDs taken
/// out of its frames and the stacks that become equal merged.
fn read_folded(path: &Path, keep_ids: bool) -> Result<String> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut text = String::new();
    std::io::Read::read_to_string(&mut std::io::Read::take(file, MAX_INPUT_BYTES), &mut text)
        .with_context(|| format!("cannot read {} as text", path.display()))?;
    let mut stacks: BTreeMap<String, u64> = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let parsed = line
            .rsplit_once(' ')
            .and_then(|(stack, count)| Some((stack, count.parse::<u64>().ok()?)));
        let Some((stack, count)) = parsed else {
            return Err(Coded::new(
                1,
                format!(
                    "{} line {} is not a folded stack (`frame;frame;frame COUNT`): is it a pystrobe \
                     -f folded file?",
                    path.display(),
                    n + 1
                ),
            )
            .into());
        };
        let stack = if keep_ids {
            stack.to_string()
        } else {
            stack
                .split(';')
                .map(without_id)
                .collect::<Vec<_>>()
                .join(";")
        };
        *stacks.entry(stack).or_default() += count;
    }
    if stacks.is_empty() {
        bail!("{} has no stacks", path.display());
    }
    Ok(stacks
        .into_iter()
        .map(|(s, c)| format!("{s} {c}\n"))
        .collect())
}

/// `python3 (1234)` → `python3`; also `(1234 #2)`, `(1234, ns 7)`. Other
/// frames (`f (app.py:12)`, `main`) are left alone.
fn without_id(frame: &str) -> &str {
    let Some((name, rest)) = frame.rsplit_once(" (") else {
        return frame;
    };
    let Some(inner) = rest.strip_suffix(')') else {
        return frame;
    };
    let ids = inner.split_once(", ns ").map_or(inner, |(ids, ns)| {
        if ns.chars().all(|c| c.is_ascii_digit()) && !ns.is_empty() {
            ids
        } else {
            "x"
        }
    });
    let pid = ids.split_once(" #").map_or(ids, |(pid, _)| pid);
    if !pid.is_empty() && pid.chars().all(|c| c.is_ascii_digit()) {
        name
    } else {
        frame
    }
}

#[cfg(test)]
mod tests {
    use super::without_id;

    #[test]
    fn ids_out_of_process_and_thread_frames() {
        assert_eq!(without_id("python3 (1234)"), "python3");
        assert_eq!(without_id("python3 (1234 #2)"), "python3");
        assert_eq!(without_id("python3.13 (4321, ns 1)"), "python3.13");
        assert_eq!(without_id("worker-1 (77)"), "worker-1");
        assert_eq!(without_id("get (views.py:236)"), "get (views.py:236)");
        assert_eq!(without_id("get (views.py)"), "get (views.py)");
        assert_eq!(without_id("main"), "main");
        assert_eq!(without_id("f (12, ns x)"), "f (12, ns x)");
    }
}
