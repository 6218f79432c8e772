use clap::Parser;

use pystrobe::cli::{Cli, Command};

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Record(args) => pystrobe::record::run(args),
        Command::Diff(args) => pystrobe::diff::run(args),
        Command::Dump(args) => pystrobe::dump::run(args),
        Command::Top(args) => pystrobe::top::run(args),
        Command::Completions { shell } => pystrobe::docs::completions(shell),
        Command::Man { output } => pystrobe::docs::man(output.as_deref()),
    };
    if let Err(err) = result {
        // One line: the chain of contexts, joined.
        eprintln!("pystrobe: error: {err:#}");
        std::process::exit(pystrobe::error::exit_code(&err));
    }
}
