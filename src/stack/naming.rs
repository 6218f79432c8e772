//! How Python frames are named in the output: `qualname (file:line)`, with
//! the line left out (--nolineno) or made the function's first line
//! (-F/--function, so every line of a function is one frame), and the file
//! shortened to what a developer would type (--full-filenames keeps it).

use super::frame::Source;

/// Which line a Python frame shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Lines {
    /// The line being run.
    #[default]
    Current,
    /// The function's first line: one frame per function.
    Function,
    /// None: one frame per function, without a line.
    None,
}

#[derive(Clone, Copy, Debug, Default)]
pub struct Naming {
    pub lines: Lines,
    pub full_filenames: bool,
}

impl Naming {
    /// The frame's display name and the source it stands for (the line
    /// as shown). `cwd` is the process's working directory as the process
    /// sees it, for paths under it.
    pub fn python(&self, src: &Source, cwd: Option<&str>) -> (String, Source) {
        let file = if self.full_filenames {
            src.file.as_str()
        } else {
            short_path(&src.file, cwd)
        };
        let line = match self.lines {
            Lines::Current => src.line,
            Lines::Function => src.first_line,
            Lines::None => 0,
        };
        let name = match (self.lines, line) {
            (Lines::None, _) | (_, 0) => format!("{} ({file})", src.function),
            _ => format!("{} ({file}:{line})", src.function),
        };
        (
            name,
            Source {
                line,
                ..src.clone()
            },
        )
    }
}

/// A module path the way Python's own tracebacks would be read: the part
/// after site-packages (or dist-packages) for installed packages, after
/// `lib/pythonX.Y/` for the standard library, relative to the working
/// directory for the application's own files, else the path unchanged.
pub fn short_path<'a>(file: &'a str, cwd: Option<&str>) -> &'a str {
    for marker in ["/site-packages/", "/dist-packages/"] {
        if let Some(at) = file.rfind(marker) {
            return &file[at + marker.len()..];
        }
    }
    if let Some(at) = file.find("/lib/python") {
        let rest = &file[at + "/lib/python".len()..];
        // `3.11/` (also `3.13t/`, free-threaded), then the module path.
        if let Some((version, module)) = rest.split_once('/') {
            if version.starts_with(|c: char| c.is_ascii_digit()) && !module.is_empty() {
                return module;
            }
        }
    }
    if let Some(cwd) = cwd.filter(|c| c.len() > 1) {
        if let Some(rest) = file.strip_prefix(cwd) {
            if let Some(rel) = rest.strip_prefix('/') {
                if !rel.is_empty() {
                    return rel;
                }
            }
        }
    }
    file
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_paths() {
        let cwd = Some("/srv/app");
        assert_eq!(
            short_path(
                "/usr/lib/python3/dist-packages/django/db/models/query.py",
                cwd
            ),
            "django/db/models/query.py"
        );
        assert_eq!(
            short_path("/venv/lib/python3.11/site-packages/flask/app.py", cwd),
            "flask/app.py"
        );
        assert_eq!(
            short_path("/usr/lib/python3.11/threading.py", cwd),
            "threading.py"
        );
        assert_eq!(
            short_path("/usr/lib/python3.13t/json/decoder.py", cwd),
            "json/decoder.py"
        );
        assert_eq!(
            short_path("/srv/app/core/recipes/views.py", cwd),
            "core/recipes/views.py"
        );
        // Only whole path components, and never the root as a prefix.
        assert_eq!(
            short_path("/srv/application/x.py", cwd),
            "/srv/application/x.py"
        );
        assert_eq!(short_path("/tmp/x.py", Some("/")), "/tmp/x.py");
        assert_eq!(
            short_path("<frozen importlib._bootstrap>", cwd),
            "<frozen importlib._bootstrap>"
        );
        assert_eq!(
            short_path("/opt/lib/pythonista/x.py", None),
            "/opt/lib/pythonista/x.py"
        );
    }

    #[test]
    fn line_modes() {
        let src = Source {
            function: "View.get".into(),
            file: "/srv/app/views.py".into(),
            line: 236,
            first_line: 230,
        };
        let cwd = Some("/srv/app");
        let name = |lines, full_filenames| {
            Naming {
                lines,
                full_filenames,
            }
            .python(&src, cwd)
            .0
        };
        assert_eq!(name(Lines::Current, false), "View.get (views.py:236)");
        assert_eq!(name(Lines::Function, false), "View.get (views.py:230)");
        assert_eq!(name(Lines::None, false), "View.get (views.py)");
        assert_eq!(
            name(Lines::Current, true),
            "View.get (/srv/app/views.py:236)"
        );
    }
}
