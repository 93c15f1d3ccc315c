//! Errors about stack files: each one says what is wrong, where
//! (`file:line:col`, with the source line) and, where known, how to fix it.
//! Several are collected and reported together.
use std::fmt;

use annotate_snippets::{AnnotationKind, Group, Level, Renderer, Snippet};
use serde::Serialize;

use super::source::{SourceMap, Span};

/// One problem in a stack file.
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnostic {
    pub span: Span,
    /// What is wrong, e.g. "unknown key `imgae` in service `web`".
    pub message: String,
    /// Short text put under the offending source text, e.g. "expected a duration".
    pub label: Option<String>,
    /// How to fix it, e.g. "did you mean `image`?".
    pub help: Option<String>,
}

impl Diagnostic {
    pub fn new(span: Span, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            span,
            message: message.into(),
            label: None,
            help: None,
        }
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Diagnostic {
        self.help = Some(help.into());
        self
    }

    pub fn with_label(mut self, label: impl Into<String>) -> Diagnostic {
        self.label = Some(label.into());
        self
    }
}

/// A diagnostic resolved against its file, for `--format json` and tests.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Located {
    pub file: Option<String>,
    pub line: usize,
    pub column: usize,
    pub message: String,
    pub help: Option<String>,
}

/// Every problem found in one load, with the sources to render them.
#[derive(Debug, Clone)]
pub struct Diagnostics {
    pub sources: SourceMap,
    pub items: Vec<Diagnostic>,
}

impl Diagnostics {
    /// Each diagnostic with its `file`, `line` and `column` resolved.
    pub fn located(&self) -> Vec<Located> {
        self.items
            .iter()
            .map(|d| {
                let (line, column) = self.sources.line_col(d.span).unwrap_or((0, 0));
                Located {
                    file: self
                        .sources
                        .get(d.span.file)
                        .map(|f| f.display.display().to_string()),
                    line,
                    column,
                    message: d.message.clone(),
                    help: d.help.clone(),
                }
            })
            .collect()
    }

    /// One line per diagnostic: `file:line:col: message`.
    pub fn short(&self) -> String {
        self.items
            .iter()
            .map(|d| format!("{}: {}", self.sources.location(d.span), d.message))
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn render_one(&self, d: &Diagnostic, renderer: &Renderer) -> String {
        let Some(file) = self.sources.get(d.span.file) else {
            let mut groups = vec![Group::with_title(Level::ERROR.primary_title(&d.message))];
            if let Some(help) = &d.help {
                groups.push(Group::with_title(Level::HELP.secondary_title(help)));
            }
            return renderer.render(&groups);
        };
        let start = (d.span.start as usize).min(file.text.len());
        let end = (d.span.end as usize).clamp(start, file.text.len());
        // An empty span still needs something to point at.
        let end = if end == start {
            file.text[start..]
                .chars()
                .next()
                .map_or(start, |c| start + c.len_utf8())
        } else {
            end
        };
        let path = file.display.display().to_string();
        let mut annotation = AnnotationKind::Primary.span(start..end);
        if let Some(label) = &d.label {
            annotation = annotation.label(label);
        }
        let mut groups: Vec<Group<'_>> = vec![
            Level::ERROR.primary_title(&d.message).element(
                Snippet::source(file.text.as_str())
                    .path(path)
                    .annotation(annotation),
            ),
        ];
        if let Some(help) = &d.help {
            groups.push(Group::with_title(Level::HELP.secondary_title(help)));
        }
        renderer.render(&groups)
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let renderer = Renderer::plain();
        for (i, d) in self.items.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            writeln!(f, "{}", self.render_one(d, &renderer))?;
        }
        let n = self.items.len();
        write!(
            f,
            "{n} error{} in stack file",
            if n == 1 { "" } else { "s" }
        )
    }
}

impl std::error::Error for Diagnostics {}

/// Accumulates diagnostics during one load.
#[derive(Debug, Default)]
pub struct Sink {
    pub items: Vec<Diagnostic>,
}

impl Sink {
    pub fn push(&mut self, d: Diagnostic) {
        self.items.push(d);
    }

    pub fn error(&mut self, span: Span, message: impl Into<String>) {
        self.items.push(Diagnostic::new(span, message));
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

/// "did you mean `x`?" for a misspelt name among `candidates`.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(word, c), c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| format!("did you mean `{c}`?"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn renders_location_source_line_and_help() {
        let mut sources = SourceMap::default();
        let f = sources.add(
            Path::new("stack.toml"),
            "[services.web]\nimgae = \"busybox\"\n".into(),
        );
        let diags = Diagnostics {
            sources,
            items: vec![
                Diagnostic::new(Span::new(f, 15, 20), "unknown key `imgae`")
                    .with_help("did you mean `image`?"),
            ],
        };
        let text = diags.to_string();
        assert!(text.contains("stack.toml:2:1"), "{text}");
        assert!(text.contains("imgae = \"busybox\""), "{text}");
        assert!(text.contains("did you mean `image`?"), "{text}");
        assert!(text.ends_with("1 error in stack file"), "{text}");
        assert_eq!(diags.short(), "stack.toml:2:1: unknown key `imgae`");
    }

    #[test]
    fn suggests_close_names_only() {
        let keys = ["image", "command", "entrypoint"];
        assert_eq!(
            did_you_mean("imgae", keys).as_deref(),
            Some("did you mean `image`?")
        );
        assert_eq!(did_you_mean("zzz", keys), None);
    }
}
