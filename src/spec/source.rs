//! The text of every file read, so that a byte span can be turned into
//! `file:line:col` and a source snippet long after parsing.
use std::path::{Path, PathBuf};

/// Where a value came from: a byte range in one of the loaded files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    /// Index into [`SourceMap`]; `u32::MAX` for values that came from no file.
    pub file: u32,
    pub start: u32,
    pub end: u32,
}

impl Span {
    /// A span for values synthesized by `stack` itself (defaults, command line).
    pub const NONE: Span = Span {
        file: u32::MAX,
        start: 0,
        end: 0,
    };

    pub fn new(file: u32, start: usize, end: usize) -> Span {
        let clamp = |v: usize| u32::try_from(v).unwrap_or(u32::MAX);
        Span {
            file,
            start: clamp(start),
            end: clamp(end.max(start)),
        }
    }

    pub fn is_none(&self) -> bool {
        self.file == u32::MAX
    }
}

/// One loaded file.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// As given on the command line (used in messages).
    pub display: PathBuf,
    pub text: String,
    line_starts: Vec<usize>,
}

/// All files read during one load, indexed by `Span::file`.
#[derive(Debug, Clone, Default)]
pub struct SourceMap {
    files: Vec<SourceFile>,
}

impl SourceMap {
    pub fn add(&mut self, display: &Path, text: String) -> u32 {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        self.files.push(SourceFile {
            display: display.to_path_buf(),
            text,
            line_starts,
        });
        u32::try_from(self.files.len() - 1).unwrap_or(u32::MAX - 1)
    }

    pub fn get(&self, file: u32) -> Option<&SourceFile> {
        self.files.get(file as usize)
    }

    /// 1-based line and column (in characters) of a span's start.
    pub fn line_col(&self, span: Span) -> Option<(usize, usize)> {
        let file = self.get(span.file)?;
        Some(file.line_col(span.start as usize))
    }

    /// `file:line:col`, or `<none>` for synthesized values.
    pub fn location(&self, span: Span) -> String {
        match (self.get(span.file), self.line_col(span)) {
            (Some(f), Some((l, c))) => format!("{}:{l}:{c}", f.display.display()),
            _ => "<command line>".to_string(),
        }
    }
}

impl SourceFile {
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let line = self.line_starts.partition_point(|&s| s <= offset) - 1;
        let start = self.line_starts[line];
        let col = self
            .text
            .get(start..offset)
            .map_or(offset - start, |s| s.chars().count());
        (line + 1, col + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_from_one_and_in_chars() {
        let mut map = SourceMap::default();
        let f = map.add(Path::new("a.toml"), "ab\ncé = 1\n".to_string());
        assert_eq!(map.line_col(Span::new(f, 0, 1)), Some((1, 1)));
        assert_eq!(map.line_col(Span::new(f, 3, 4)), Some((2, 1)));
        // 'é' is two bytes but one column.
        assert_eq!(map.line_col(Span::new(f, 6, 7)), Some((2, 3)));
        assert_eq!(map.location(Span::new(f, 3, 4)), "a.toml:2:1");
        assert_eq!(map.location(Span::NONE), "<command line>");
    }
}
