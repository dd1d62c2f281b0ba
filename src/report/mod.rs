//! Consumers of a run: the live terminal display (`terminal`), the final human summary
//! (`summary`), JSON events (`json`), JUnit XML (`junit`), the HTML page (`html`), and rendering
//! of configuration errors (`diagnostics`).

pub mod diagnostics;

pub use crate::outcome::count;

pub mod github;
pub mod html;
pub mod json;
pub mod junit;
pub mod record;
pub mod summary;
pub mod terminal;

/// Whether to colour output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Style {
    /// Colour on.
    pub color: bool,
    /// Writing to a terminal (progress bar on).
    pub tty: bool,
}

impl Style {
    /// Colour when stderr is a terminal and `NO_COLOR` is not set, unless overridden.
    pub fn detect(color: Option<bool>) -> Self {
        let tty = console::Term::stderr().is_term();
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Style {
            color: color.unwrap_or(tty && !no_color),
            tty,
        }
    }

    /// Applies a console style when colour is on.
    pub fn paint(&self, text: &str, style: console::Style) -> String {
        if self.color {
            style.force_styling(true).apply_to(text).to_string()
        } else {
            text.to_string()
        }
    }
}

/// The end of `text`: how many lines were left out, and the last `n` lines.
pub fn last_lines(text: &str, n: usize) -> (usize, &str) {
    let total = text.lines().count();
    if total <= n {
        return (0, text);
    }
    let left_out = total - n;
    let start = text
        .match_indices('\n')
        .nth(left_out - 1)
        .map_or(0, |(at, _)| at + 1);
    (left_out, &text[start..])
}
