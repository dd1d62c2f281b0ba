//! Configuration errors as data: what is wrong, where (file and byte span), and a hint.
//! Rendering for people happens once, in `report::diagnostics`.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A source file kept in memory so that errors can point into it.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// Path as shown to the user (relative to the project root when possible).
    pub display: PathBuf,
    /// Full text of the file.
    pub text: Arc<str>,
}

impl SourceFile {
    /// Wraps a file's text with the path to show for it.
    pub fn new(display: impl Into<PathBuf>, text: impl Into<Arc<str>>) -> Self {
        SourceFile {
            display: display.into(),
            text: text.into(),
        }
    }

    /// 1-based line and column of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        line_col(&self.text, offset)
    }
}

/// 1-based line and column (in characters) of a byte offset in `text`.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..floor_char_boundary(text, offset)];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

/// Reads a text file. On failure: the 1-based line and column of the first byte that is not
/// UTF-8 (when that is the problem), and what is wrong.
pub fn read_text(path: &std::path::Path) -> Result<String, (Option<(usize, usize)>, String)> {
    let bytes = std::fs::read(path).map_err(|e| (None, format!("cannot read: {e}")))?;
    String::from_utf8(bytes).map_err(|e| {
        let valid = e.utf8_error().valid_up_to();
        let bytes = e.as_bytes();
        let before = std::str::from_utf8(&bytes[..valid]).unwrap_or_default();
        let bad = bytes.get(valid).copied().unwrap_or_default();
        (
            Some(line_col(before, before.len())),
            format!("invalid UTF-8 (byte 0x{bad:02x}): the file must be UTF-8 text"),
        )
    })
}

/// [`read_text`], its failure pushed to `errors` as an error of file `shown` (the path as people
/// see it), at the first byte that is not UTF-8 when that is the problem.
pub fn read_text_reporting(
    path: &Path,
    shown: &Path,
    errors: &mut Vec<ConfigError>,
) -> Option<String> {
    match read_text(path) {
        Ok(text) => Some(text),
        Err((line_col, message)) => {
            errors.push(ConfigError::at_origin(
                Origin {
                    file: shown.to_path_buf(),
                    line_col,
                },
                message,
            ));
            None
        }
    }
}

fn floor_char_boundary(text: &str, mut offset: usize) -> usize {
    while offset > 0 && !text.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

/// A location a later stage can cite: a file and, when known, a line and column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// Path as shown to the user.
    pub file: PathBuf,
    /// 1-based line and column, when the problem has a position.
    pub line_col: Option<(usize, usize)>,
}

impl Origin {
    /// An origin for a whole file.
    pub fn file(file: impl Into<PathBuf>) -> Self {
        Origin {
            file: file.into(),
            line_col: None,
        }
    }

    /// The place of byte `offset` of `text`, where `text` is what this origin points at: a file
    /// of its own (lines count from 1), or a string starting at this line and column of a file
    /// (inline SQL in pipeline.toml).
    pub fn within(&self, text: &str, offset: usize) -> Self {
        let (line, col) = line_col(text, offset);
        Origin {
            file: self.file.clone(),
            line_col: Some(match self.line_col {
                Some((l, c)) if line == 1 => (l, c + col - 1),
                Some((l, _)) => (l + line - 1, col),
                None => (line, col),
            }),
        }
    }

    /// An origin for a span of a source file.
    pub fn at(source: &SourceFile, span: &Range<usize>) -> Self {
        Origin {
            file: source.display.clone(),
            line_col: Some(source.line_col(span.start)),
        }
    }
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line_col {
            Some((line, col)) => write!(f, "{}:{line}:{col}", self.file.display()),
            None => write!(f, "{}", self.file.display()),
        }
    }
}

/// One problem in the user's configuration or input data.
#[derive(Debug, Clone)]
pub struct ConfigError {
    /// What is wrong, in one sentence.
    pub message: String,
    /// Where it is.
    pub origin: Origin,
    /// The file's text and the byte span of the offending token, for showing the line.
    pub snippet: Option<(SourceFile, Range<usize>)>,
    /// How to fix it, when there is something useful to say.
    pub help: Option<String>,
    /// True when what is wrong is a missing prerequisite of this machine (Airflow not
    /// installed) rather than the user's files: the command exits 3, not 2.
    pub missing_prerequisite: bool,
}

impl ConfigError {
    /// An error about a whole file (it is missing, unreadable, ...).
    pub fn in_file(file: &Path, message: impl Into<String>) -> Self {
        ConfigError::at_origin(Origin::file(file), message)
    }

    /// An error pointing at a span of a source file.
    pub fn at(source: &SourceFile, span: Range<usize>, message: impl Into<String>) -> Self {
        ConfigError {
            message: message.into(),
            origin: Origin::at(source, &span),
            snippet: Some((source.clone(), span)),
            help: None,
            missing_prerequisite: false,
        }
    }

    /// An error at a known place of a file whose text is not at hand (input data).
    pub fn at_origin(origin: Origin, message: impl Into<String>) -> Self {
        ConfigError {
            message: message.into(),
            origin,
            snippet: None,
            help: None,
            missing_prerequisite: false,
        }
    }

    /// Marks the error as a missing prerequisite of the machine (exit 3).
    pub fn prerequisite(mut self) -> Self {
        self.missing_prerequisite = true;
        self
    }

    /// Adds a hint.
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.origin, self.message)
    }
}

impl std::error::Error for ConfigError {}

/// Every problem found while loading, in the order found.
#[derive(Debug, Clone, Default)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl std::fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for e in &self.0 {
            writeln!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Turns a TOML parse or shape error into a located error.
pub fn from_toml(source: &SourceFile, err: &toml::de::Error) -> ConfigError {
    let message = err.message().trim().to_string();
    let help = toml_help(&message);
    let mut e = match err.span() {
        Some(span) => ConfigError::at(source, span, message),
        None => ConfigError::in_file(&source.display, message),
    };
    e.help = help;
    e
}

fn toml_help(message: &str) -> Option<String> {
    if let Some(rest) = message.strip_prefix("unknown field `") {
        let field = rest.split('`').next().unwrap_or_default();
        if let Some(expected) = message.split("expected ").nth(1) {
            let options: Vec<&str> = expected
                .split('`')
                .filter(|s| !s.is_empty() && !s.contains(',') && !s.contains(' '))
                .collect();
            if let Some(best) = did_you_mean(field, options.iter().copied()) {
                return Some(format!("did you mean `{best}`?"));
            }
            return Some(format!("the allowed keys here are {expected}"));
        }
    }
    None
}

/// The closest candidate to `word`, when one is close enough to be a likely typo.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(word, c), c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_place_in_sql_counts_from_where_the_sql_starts() {
        let text = "SELECT 1;\nSELEC 2";
        let inline = Origin {
            file: "p/pipeline.toml".into(),
            line_col: Some((10, 8)),
        };
        // Line 1 of the text continues the line of pipeline.toml it starts on.
        assert_eq!(inline.within(text, 7).line_col, Some((10, 15)));
        assert_eq!(inline.within(text, 10).line_col, Some((11, 1)));
        assert_eq!(
            Origin::file("a.sql").within(text, 10).line_col,
            Some((2, 1))
        );
    }

    #[test]
    fn line_col_counts_from_one_in_characters() {
        let text = "a = 1\nbé = 2\n";
        assert_eq!(line_col(text, 0), (1, 1));
        assert_eq!(line_col(text, 6), (2, 1));
        assert_eq!(line_col(text, 9), (2, 3));
    }

    #[test]
    fn suggests_close_names_only() {
        assert_eq!(
            did_you_mean("depend_on", ["depends_on", "timeout"]),
            Some("depends_on")
        );
        assert_eq!(did_you_mean("zzz", ["depends_on", "timeout"]), None);
    }
}
