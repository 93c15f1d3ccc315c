//! The span-carrying document tree that TOML and YAML are both read into.
//! Interpolation, merging and profile filtering work on this tree; typed
//! deserialization happens last (see `de.rs`), so every error, including
//! semantic ones found after deserialization, can point at its source.
use super::source::Span;

/// A Compose merge tag on a YAML node (`!reset` / `!override`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MergeTag {
    /// `!reset`: drop the value inherited from earlier files.
    Reset,
    /// `!override`: replace the earlier value instead of merging into it.
    Override,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub span: Span,
    pub tag: Option<MergeTag>,
    pub kind: Kind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<Entry>),
}

/// One `key: value` of a mapping; keys keep their own span.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub key: String,
    pub key_span: Span,
    pub value: Node,
}

impl Node {
    pub fn new(span: Span, kind: Kind) -> Node {
        Node {
            span,
            tag: None,
            kind,
        }
    }

    pub fn str(span: Span, s: impl Into<String>) -> Node {
        Node::new(span, Kind::Str(s.into()))
    }

    pub fn map(span: Span, entries: Vec<Entry>) -> Node {
        Node::new(span, Kind::Map(entries))
    }

    /// What a user would call this kind of value, for "expected X, found Y".
    pub fn type_name(&self) -> &'static str {
        match self.kind {
            Kind::Null => "null",
            Kind::Bool(_) => "a boolean",
            Kind::Int(_) => "an integer",
            Kind::Float(_) => "a float",
            Kind::Str(_) => "a string",
            Kind::Seq(_) => "a list",
            Kind::Map(_) => "a table",
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            Kind::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn entries(&self) -> Option<&[Entry]> {
        match &self.kind {
            Kind::Map(e) => Some(e),
            _ => None,
        }
    }

    pub fn entries_mut(&mut self) -> Option<&mut Vec<Entry>> {
        match &mut self.kind {
            Kind::Map(e) => Some(e),
            _ => None,
        }
    }

    pub fn get(&self, key: &str) -> Option<&Node> {
        self.entries()?
            .iter()
            .find(|e| e.key == key)
            .map(|e| &e.value)
    }

    pub fn get_entry(&self, key: &str) -> Option<&Entry> {
        self.entries()?.iter().find(|e| e.key == key)
    }

    pub fn get_mut(&mut self, key: &str) -> Option<&mut Node> {
        self.entries_mut()?
            .iter_mut()
            .find(|e| e.key == key)
            .map(|e| &mut e.value)
    }

    /// Follows `path` through mappings (by key) and lists (by index or by an
    /// element whose string value equals the segment); returns the deepest
    /// span reached, so an error lands as close to its cause as possible.
    pub fn span_at(&self, path: &[&str]) -> Span {
        let mut node = self;
        let mut span = self.span;
        for seg in path {
            match &node.kind {
                Kind::Map(entries) => match entries.iter().find(|e| e.key == *seg) {
                    Some(e) => {
                        // A key points better at a table than the table's body does.
                        let container = matches!(e.value.kind, Kind::Map(_) | Kind::Seq(_));
                        span = if container { e.key_span } else { e.value.span };
                        node = &e.value;
                    }
                    None => break,
                },
                Kind::Seq(items) => {
                    let found = seg
                        .parse::<usize>()
                        .ok()
                        .and_then(|i| items.get(i))
                        .or_else(|| items.iter().find(|n| n.as_str() == Some(seg)));
                    match found {
                        Some(n) => {
                            span = n.span;
                            node = n;
                        }
                        None => break,
                    }
                }
                _ => break,
            }
        }
        span
    }

    /// Like [`Node::span_at`], but when the path ends on a mapping key, the
    /// key's span (for "unknown name" errors about the key itself).
    pub fn key_span_at(&self, path: &[&str]) -> Span {
        let Some((last, parent)) = path.split_last() else {
            return self.span;
        };
        let mut node = self;
        for seg in parent {
            match node.get(seg) {
                Some(n) => node = n,
                None => return self.span_at(path),
            }
        }
        node.get_entry(last)
            .map_or_else(|| self.span_at(path), |e| e.key_span)
    }

    /// Removes keys starting with `x-` (Compose extensions) from this mapping.
    pub fn strip_extensions(&mut self) {
        if let Some(entries) = self.entries_mut() {
            entries.retain(|e| !e.key.starts_with("x-"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sp(a: usize) -> Span {
        Span::new(0, a, a + 1)
    }

    #[test]
    fn span_at_follows_maps_and_lists() {
        let list = Node::new(
            sp(10),
            Kind::Seq(vec![Node::str(sp(11), "front"), Node::str(sp(12), "back")]),
        );
        let root = Node::map(
            sp(0),
            vec![Entry {
                key: "networks".into(),
                key_span: sp(5),
                value: list,
            }],
        );
        assert_eq!(root.span_at(&["networks", "back"]), sp(12));
        assert_eq!(root.span_at(&["networks", "1"]), sp(12));
        assert_eq!(root.span_at(&["networks", "nope"]), sp(5));
        assert_eq!(root.span_at(&["missing"]), sp(0));
    }
}
