//! Shell completions and manual pages, generated from the command-line
//! definitions (cli.rs) so they cannot drift from them.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use clap::CommandFactory;

use crate::cli::Cli;
use crate::output::file::OutputFile;

pub fn completions(shell: clap_complete::Shell) -> Result<()> {
    let mut cmd = Cli::command();
    // Into a buffer first: the generator panics when its writer fails.
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cmd, "pystrobe", &mut script);
    to_stdout(&script).context("writing the completion script")
}

/// The manual page to stdout, or every page into `dir`.
pub fn man(dir: Option<&Path>) -> Result<()> {
    let cmd = Cli::command().name("pystrobe");
    let Some(dir) = dir else {
        let mut page = Vec::new();
        clap_mangen::Man::new(cmd).render(&mut page)?;
        return to_stdout(&page).context("writing the manual page");
    };
    if !dir.is_dir() {
        anyhow::bail!("{} is not a directory", dir.display());
    }
    let mut pages = vec![("pystrobe".to_string(), cmd.clone())];
    for sub in cmd.get_subcommands() {
        let name = format!("pystrobe-{}", sub.get_name());
        pages.push((name.clone(), sub.clone().name(name)));
    }
    for (name, page) in pages {
        let path = dir.join(format!("{name}.1"));
        OutputFile::create(&path)?.commit(0o644, None, |w| {
            clap_mangen::Man::new(page)
                .render(w)
                .with_context(|| format!("writing {}", path.display()))
        })?;
        eprintln!("pystrobe: wrote {}", path.display());
    }
    Ok(())
}

/// Writes to stdout; a reader that went away (`| head`) is not an error.
fn to_stdout(bytes: &[u8]) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => r,
    }
}
