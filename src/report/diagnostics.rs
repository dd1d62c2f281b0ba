//! Renders configuration and input errors for people: `file:line:col`, the offending line with
//! a marker, and the hint.

use miette::{GraphicalReportHandler, GraphicalTheme, LabeledSpan, NamedSource};

use super::Style;
use crate::config::ConfigError;

#[derive(Debug)]
struct Rendered<'a> {
    err: &'a ConfigError,
    src: Option<NamedSource<String>>,
}

impl std::fmt::Display for Rendered<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.err.origin, self.err.message)
    }
}

impl std::error::Error for Rendered<'_> {}

impl miette::Diagnostic for Rendered<'_> {
    fn help<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
        self.err
            .help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn std::fmt::Display>)
    }
    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        self.src.as_ref().map(|s| s as &dyn miette::SourceCode)
    }
    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let (_, span) = self.err.snippet.as_ref()?;
        let len = span.end.saturating_sub(span.start).max(1);
        Some(Box::new(std::iter::once(LabeledSpan::new(
            Some("here".into()),
            span.start,
            len,
        ))))
    }
}

/// Renders one error as text.
pub fn render(err: &ConfigError, style: Style) -> String {
    let src = err.snippet.as_ref().map(|(file, _)| {
        NamedSource::new(file.display.display().to_string(), file.text.to_string())
    });
    let theme = if style.color {
        GraphicalTheme::unicode()
    } else {
        GraphicalTheme::unicode_nocolor()
    };
    let handler = GraphicalReportHandler::new_themed(theme).with_wrap_lines(false);
    let mut out = String::new();
    if handler
        .render_report(&mut out, &Rendered { err, src })
        .is_err()
    {
        out = format!("error: {err}\n");
    }
    out
}

/// Renders every error, then a count.
pub fn render_all(errors: &[ConfigError], style: Style) -> String {
    let mut out = String::new();
    for e in errors {
        out.push_str(&render(e, style));
        out.push('\n');
    }
    let n = errors.len();
    out.push_str(&format!(
        "error: {n} problem{} found\n",
        if n == 1 { "" } else { "s" }
    ));
    out
}
