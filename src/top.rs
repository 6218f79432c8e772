//! `pystrobe top`: the hottest functions, live, in the terminal.
//!
//! The same session as `record` (targets, BPF, stacks); instead of files,
//! every second the samples of that second are turned into a table of
//! functions: own % (samples whose innermost frame is the function) and
//! total % (samples with the function anywhere on the stack) of that second,
//! own and total time since the start. The screen is redrawn in place (one
//! write per refresh, each line overwritten, nothing cleared), on the
//! alternate screen, which is left however top ends (q, Ctrl-C, SIGTERM,
//! the targets exiting, an error).

use std::collections::HashMap;
use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use crossterm::event::{self, Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use crossterm::{cursor, execute, queue, style, terminal};

use crate::cli::TopArgs;
use crate::launch;
use crate::session::{self, Collector, Observer};
use crate::stack::{FrameId, FrameKind, FrameTable};

const REFRESH: Duration = Duration::from_secs(1);

/// The columns, in order; the sort keys are their numbers.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Column {
    OwnPct,
    TotalPct,
    OwnTime,
    TotalTime,
}

const COLUMNS: [(Column, &str); 4] = [
    (Column::OwnPct, "%Own"),
    (Column::TotalPct, "%Total"),
    (Column::OwnTime, "OwnTime"),
    (Column::TotalTime, "TotalTime"),
];

/// Samples of one frame: in the last refresh, and since the start.
#[derive(Clone, Copy, Default)]
struct Counts {
    own: u64,
    total: u64,
    own_all: u64,
    total_all: u64,
}

struct Top {
    title: String,
    period: f64,
    /// Each stack's count at the last refresh.
    seen: Vec<u64>,
    counts: HashMap<FrameId, Counts>,
    window_samples: u64,
    sort: Column,
    lines: bool,
    last: Instant,
    /// A key changed the view: draw again now, with the same counts.
    redraw: bool,
    warnings: Vec<String>,
    quit: bool,
    out: std::io::Stdout,
}

/// Puts the terminal back however top ends.
struct Screen;

impl Screen {
    fn enter() -> Result<Screen> {
        terminal::enable_raw_mode().context("top needs a terminal")?;
        let screen = Screen;
        execute!(
            std::io::stdout(),
            terminal::EnterAlternateScreen,
            cursor::Hide,
            terminal::Clear(terminal::ClearType::All)
        )?;
        Ok(screen)
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        let _ = execute!(
            std::io::stdout(),
            cursor::Show,
            terminal::LeaveAlternateScreen
        );
        let _ = terminal::disable_raw_mode();
    }
}

pub fn run(args: TopArgs) -> Result<()> {
    let selection = session::check_targets(&args.targets)?;
    if !std::io::IsTerminal::is_terminal(&std::io::stdout()) {
        anyhow::bail!("top draws on a terminal; for a file, use pystrobe record");
    }
    let user = launch::invoking_user();
    let title = match (&args.targets.pids[..], &args.targets.command[..]) {
        ([], []) if !selection.by_name() => "all processes".to_string(),
        ([], []) => selection.describe(),
        ([], cmd) => cmd.join(" "),
        (pids, _) => pids
            .iter()
            .map(|p| format!("PID {p}"))
            .collect::<Vec<_>>()
            .join(", "),
    };
    let screen = Screen::enter()?;
    let mut top = Top {
        title: crate::stack::frame::sanitize(&title),
        period: 1.0 / args.sampling.rate as f64,
        seen: Vec::new(),
        counts: HashMap::new(),
        window_samples: 0,
        sort: Column::OwnPct,
        lines: true,
        last: Instant::now(),
        redraw: false,
        warnings: Vec::new(),
        quit: false,
        out: std::io::stdout(),
    };
    let done = session::run(
        &args.targets,
        &args.sampling,
        selection,
        false,
        user.as_ref(),
        &mut top,
    );
    drop(screen);
    let done = done?;
    eprintln!(
        "pystrobe: top: {} samples over {:.1} s",
        done.collector.profile.total,
        done.elapsed.as_secs_f64()
    );
    Ok(())
}

impl Observer for Top {
    fn tick(&mut self, c: &mut Collector, lost: u64, elapsed: Duration) -> bool {
        self.keys();
        if self.quit {
            return false;
        }
        let refresh = self.last.elapsed() >= REFRESH;
        if refresh {
            self.last = Instant::now();
            self.count(c);
        }
        if (refresh || std::mem::take(&mut self.redraw)) && self.draw(c, lost, elapsed).is_err() {
            return false;
        }
        true
    }

    fn warn(&mut self, warning: &str) {
        self.warnings.push(warning.to_string());
    }
}

impl Top {
    /// Handles the keys pressed since the last tick.
    fn keys(&mut self) {
        while event::poll(Duration::ZERO).unwrap_or(false) {
            let Ok(Event::Key(KeyEvent {
                code,
                modifiers,
                kind: KeyEventKind::Press,
                ..
            })) = event::read()
            else {
                continue;
            };
            match code {
                KeyCode::Char('q') | KeyCode::Esc => self.quit = true,
                KeyCode::Char('c') if modifiers.contains(KeyModifiers::CONTROL) => self.quit = true,
                KeyCode::Char('l') | KeyCode::Char('L') => {
                    self.lines = !self.lines;
                    self.redraw = true;
                }
                KeyCode::Char(d @ '1'..='4') => {
                    self.sort = COLUMNS[(d as u8 - b'1') as usize].0;
                    self.redraw = true;
                }
                _ => {}
            }
        }
    }

    /// Adds the samples since the last refresh to the counts.
    fn count(&mut self, c: &Collector) {
        for v in self.counts.values_mut() {
            v.own = 0;
            v.total = 0;
        }
        self.window_samples = 0;
        self.seen.resize(c.profile.len(), 0);
        for (i, (stack, count)) in c.profile.iter().enumerate() {
            let new = count - self.seen[i];
            if new == 0 {
                continue;
            }
            self.seen[i] = count;
            self.window_samples += new;
            // The process (and thread) frames are not functions.
            let frames: Vec<FrameId> = stack
                .iter()
                .copied()
                .filter(|&f| {
                    !matches!(
                        c.builder.frames.get(f).kind,
                        FrameKind::Process | FrameKind::Thread
                    )
                })
                .collect();
            if let Some(&leaf) = frames.last() {
                let e = self.counts.entry(leaf).or_default();
                e.own += new;
                e.own_all += new;
            }
            let mut once = frames.clone();
            once.sort_unstable();
            once.dedup();
            for f in once {
                let e = self.counts.entry(f).or_default();
                e.total += new;
                e.total_all += new;
            }
        }
    }

    /// The rows: counts merged by displayed name (without line numbers,
    /// every line of a function is one row), sorted.
    fn rows(&self, frames: &FrameTable) -> Vec<(String, Counts)> {
        let mut by_name: HashMap<String, Counts> = HashMap::new();
        for (&f, &n) in &self.counts {
            let frame = frames.get(f);
            let name = if self.lines || frame.kind != FrameKind::Python {
                frame.name.clone()
            } else {
                without_line(&frame.name)
            };
            let e = by_name.entry(name).or_default();
            e.own += n.own;
            e.total += n.total;
            e.own_all += n.own_all;
            e.total_all += n.total_all;
        }
        let mut rows: Vec<(String, Counts)> = by_name
            .into_iter()
            .filter(|(_, n)| n.total_all > 0)
            .collect();
        let key = |n: &Counts| match self.sort {
            Column::OwnPct => (n.own, n.own_all),
            Column::TotalPct => (n.total, n.total_all),
            Column::OwnTime => (n.own_all, n.own),
            Column::TotalTime => (n.total_all, n.total),
        };
        rows.sort_by(|a, b| key(&b.1).cmp(&key(&a.1)).then_with(|| a.0.cmp(&b.0)));
        rows
    }

    fn draw(&mut self, c: &Collector, lost: u64, elapsed: Duration) -> std::io::Result<()> {
        let (width, height) = terminal::size().unwrap_or((100, 30));
        let (width, height) = (width as usize, height as usize);
        let rows = self.rows(&c.builder.frames);
        let mut screen: Vec<String> = Vec::with_capacity(height);
        screen.push(format!(
            "pystrobe top: {} — {:.0} s, {} samples in the last second, {} lost, {} process{}",
            self.title,
            elapsed.as_secs_f64(),
            self.window_samples,
            lost,
            c.builder.processes.seen,
            if c.builder.processes.seen == 1 {
                ""
            } else {
                "es"
            }
        ));
        screen.push(format!(
            "keys: 1-4 sort by column ({}), L line numbers ({}), q quit",
            COLUMNS
                .iter()
                .find(|(col, _)| *col == self.sort)
                .map_or("", |(_, n)| n),
            if self.lines { "on" } else { "off" }
        ));
        if let Some(w) = self.warnings.last() {
            screen.push(format!("warning: {w}"));
        }
        screen.push(String::new());
        let header: Vec<String> = COLUMNS
            .iter()
            .enumerate()
            .map(|(i, (col, name))| {
                let mark = if *col == self.sort { "▼" } else { " " };
                format!("{:>10}", format!("{mark}{}:{name}", i + 1))
            })
            .collect();
        screen.push(format!("{}  Function", header.join(" ")));
        let pct = |n: u64| 100.0 * n as f64 / self.window_samples.max(1) as f64;
        for (name, n) in rows.iter().take(height.saturating_sub(screen.len())) {
            screen.push(format!(
                "{:>9.1}% {:>9.1}% {:>9.2}s {:>9.2}s  {name}",
                pct(n.own),
                pct(n.total),
                n.own_all as f64 * self.period,
                n.total_all as f64 * self.period,
            ));
        }
        // Overwrite every line in place, clear what is below: no flicker.
        queue!(self.out, cursor::MoveTo(0, 0))?;
        for (i, line) in screen.iter().enumerate() {
            let line: String = line.chars().take(width).collect();
            queue!(
                self.out,
                cursor::MoveTo(0, i as u16),
                style::Print(line),
                terminal::Clear(terminal::ClearType::UntilNewLine)
            )?;
        }
        queue!(
            self.out,
            cursor::MoveTo(0, screen.len() as u16),
            terminal::Clear(terminal::ClearType::FromCursorDown)
        )?;
        self.out.flush()
    }
}

/// `f (app.py:12)` → `f (app.py)`.
fn without_line(name: &str) -> String {
    if let Some((head, tail)) = name.rsplit_once(':') {
        if let Some(digits) = tail.strip_suffix(')') {
            if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
                return format!("{head})");
            }
        }
    }
    name.to_string()
}

#[cfg(test)]
mod tests {
    use super::without_line;

    #[test]
    fn lines_out_of_python_frames() {
        assert_eq!(without_line("f (app.py:12)"), "f (app.py)");
        assert_eq!(without_line("f (app.py)"), "f (app.py)");
        assert_eq!(without_line("std::f (a:b)"), "std::f (a:b)");
    }
}
