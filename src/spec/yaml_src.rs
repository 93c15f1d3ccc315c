//! YAML text -> [`Node`] tree, from the parser's events, so that we control
//! exactly what Compose needs: spans on every key and value, anchors and
//! aliases, `<<` merge keys, and the `!reset` / `!override` merge tags.
use std::collections::HashMap;

use serde_saphyr::granit_parser::{Event, Parser, ScalarStyle, Span as YSpan, Tag};

use super::diag::Diagnostic;
use super::node::{Entry, Kind, MergeTag, Node};
use super::source::Span;

/// Aliases are expanded by copying; this bounds the copies so that a
/// "billion laughs" document is an error instead of exhausting memory.
const ALIAS_NODE_BUDGET: usize = 1_000_000;

/// Parses one YAML document (an empty file is an empty mapping).
pub fn parse(text: &str, file: u32) -> Result<Node, Vec<Diagnostic>> {
    let mut builder = Builder {
        file,
        stack: Vec::new(),
        anchors: HashMap::new(),
        root: None,
        budget: ALIAS_NODE_BUDGET,
        errors: Vec::new(),
        documents: 0,
    };
    for event in Parser::new_from_str(text) {
        match event {
            Ok((event, span)) => builder.event(event, span),
            Err(e) => {
                let at = e.marker().byte_offset().unwrap_or(0);
                builder.errors.push(Diagnostic::new(
                    Span::new(file, at, at),
                    format!("invalid YAML: {}", e.info()),
                ));
                break;
            }
        }
        if builder.budget == 0 {
            break;
        }
    }
    if !builder.errors.is_empty() {
        return Err(builder.errors);
    }
    Ok(builder
        .root
        .unwrap_or_else(|| Node::map(Span::new(file, 0, 0), Vec::new())))
}

enum Frame {
    Seq {
        start: usize,
        anchor: usize,
        tag: Option<MergeTag>,
        items: Vec<Node>,
    },
    Map {
        start: usize,
        anchor: usize,
        tag: Option<MergeTag>,
        entries: Vec<Entry>,
        key: Option<(String, Span, bool)>,
        merges: Vec<Node>,
    },
}

struct Builder {
    file: u32,
    stack: Vec<Frame>,
    anchors: HashMap<usize, (Node, usize)>,
    root: Option<Node>,
    budget: usize,
    errors: Vec<Diagnostic>,
    documents: usize,
}

impl Builder {
    fn span(&self, span: &YSpan) -> Span {
        let range = span.byte_range().unwrap_or(0..0);
        Span::new(self.file, range.start, range.end)
    }

    fn event(&mut self, event: Event<'_>, ys: YSpan) {
        let span = self.span(&ys);
        match event {
            Event::DocumentStart(..) => {
                self.documents += 1;
                if self.documents > 1 {
                    self.errors.push(Diagnostic::new(
                        span,
                        "a stack file holds one YAML document; found a second one",
                    ));
                }
            }
            Event::Scalar(value, style, anchor, tag) => {
                let (kind, merge_tag) = match resolve_scalar(&value, style, tag.as_deref()) {
                    Ok(k) => k,
                    Err(msg) => {
                        self.errors.push(Diagnostic::new(span, msg));
                        (Kind::Null, None)
                    }
                };
                let quoted = style != ScalarStyle::Plain;
                let mut node = Node::new(span, kind);
                node.tag = merge_tag;
                self.remember(anchor, &node);
                self.finish(node, quoted);
            }
            Event::SequenceStart(_, anchor, tag) => {
                let tag = self.collection_tag(tag.as_deref(), span, "seq");
                self.stack.push(Frame::Seq {
                    start: span.start as usize,
                    anchor,
                    tag,
                    items: Vec::new(),
                });
            }
            Event::MappingStart(_, anchor, tag) => {
                let tag = self.collection_tag(tag.as_deref(), span, "map");
                self.stack.push(Frame::Map {
                    start: span.start as usize,
                    anchor,
                    tag,
                    entries: Vec::new(),
                    key: None,
                    merges: Vec::new(),
                });
            }
            Event::SequenceEnd => {
                if let Some(Frame::Seq {
                    start,
                    anchor,
                    tag,
                    items,
                }) = self.stack.pop()
                {
                    let mut node = Node::new(
                        Span::new(self.file, start, span.end as usize),
                        Kind::Seq(items),
                    );
                    node.tag = tag;
                    self.remember(anchor, &node);
                    self.finish(node, false);
                }
            }
            Event::MappingEnd => {
                if let Some(Frame::Map {
                    start,
                    anchor,
                    tag,
                    mut entries,
                    merges,
                    ..
                }) = self.stack.pop()
                {
                    self.apply_merges(&mut entries, merges);
                    let mut node =
                        Node::map(Span::new(self.file, start, span.end as usize), entries);
                    node.tag = tag;
                    self.remember(anchor, &node);
                    self.finish(node, false);
                }
            }
            Event::Alias(id) => match self.anchors.get(&id) {
                Some((node, size)) if *size <= self.budget => {
                    self.budget -= size;
                    let node = node.clone();
                    self.finish(node, false);
                }
                Some(_) => {
                    self.budget = 0;
                    self.errors.push(Diagnostic::new(
                        span,
                        "YAML aliases expand to too many values (more than 1000000)",
                    ));
                }
                None => self
                    .errors
                    .push(Diagnostic::new(span, "alias refers to an unknown anchor")),
            },
            _ => {}
        }
    }

    fn collection_tag(&mut self, tag: Option<&Tag>, span: Span, core: &str) -> Option<MergeTag> {
        let tag = tag?;
        if tag.is_yaml_core_schema_tag(core) {
            return None;
        }
        match merge_tag(tag) {
            Some(t) => Some(t),
            None => {
                self.errors.push(
                    Diagnostic::new(span, format!("unsupported YAML tag `{tag}`")).with_help(
                        "only `!reset` and `!override` (Compose merge tags) are understood",
                    ),
                );
                None
            }
        }
    }

    fn remember(&mut self, anchor: usize, node: &Node) {
        if anchor != 0 {
            self.anchors
                .insert(anchor, (node.clone(), count_nodes(node)));
        }
    }

    /// Places a finished node into its parent: as a list item, a mapping key,
    /// or a mapping value.
    fn finish(&mut self, node: Node, quoted: bool) {
        match self.stack.last_mut() {
            None => self.root = Some(node),
            Some(Frame::Seq { items, .. }) => items.push(node),
            Some(Frame::Map {
                entries,
                key,
                merges,
                ..
            }) => match key.take() {
                None => match scalar_key(&node) {
                    Some(k) => *key = Some((k, node.span, quoted)),
                    None => {
                        // Keep the parser state consistent: a placeholder key.
                        *key = Some((String::new(), node.span, true));
                        self.errors.push(Diagnostic::new(
                            node.span,
                            "mapping keys must be strings or numbers",
                        ));
                    }
                },
                Some((k, key_span, key_quoted)) => {
                    if k == "<<" && !key_quoted {
                        merges.push(node);
                    } else if entries.iter().any(|e| e.key == k) {
                        self.errors.push(Diagnostic::new(
                            key_span,
                            format!("duplicate key `{k}` in this mapping"),
                        ));
                    } else {
                        entries.push(Entry {
                            key: k,
                            key_span,
                            value: node,
                        });
                    }
                }
            },
        }
    }

    /// YAML merge keys: `<<: *a` or `<<: [*a, *b]`; explicit keys win, and
    /// earlier sources win over later ones (YAML 1.1 merge key spec).
    fn apply_merges(&mut self, entries: &mut Vec<Entry>, merges: Vec<Node>) {
        let mut sources = Vec::new();
        for m in merges {
            match m.kind {
                Kind::Map(e) => sources.push(e),
                Kind::Seq(items) => {
                    for item in items {
                        match item.kind {
                            Kind::Map(e) => sources.push(e),
                            _ => self
                                .errors
                                .push(Diagnostic::new(item.span, "`<<` merges mappings only")),
                        }
                    }
                }
                _ => self
                    .errors
                    .push(Diagnostic::new(m.span, "`<<` merges mappings only")),
            }
        }
        for source in sources {
            for e in source {
                if !entries.iter().any(|x| x.key == e.key) {
                    entries.push(e);
                }
            }
        }
    }
}

fn count_nodes(node: &Node) -> usize {
    1 + match &node.kind {
        Kind::Seq(items) => items.iter().map(count_nodes).sum(),
        Kind::Map(entries) => entries.iter().map(|e| count_nodes(&e.value)).sum(),
        _ => 0,
    }
}

fn scalar_key(node: &Node) -> Option<String> {
    match &node.kind {
        Kind::Str(s) => Some(s.clone()),
        Kind::Int(i) => Some(i.to_string()),
        Kind::Float(f) => Some(f.to_string()),
        Kind::Bool(b) => Some(b.to_string()),
        Kind::Null => Some(String::new()),
        _ => None,
    }
}

fn merge_tag(tag: &Tag) -> Option<MergeTag> {
    if tag.handle() != "!" {
        return None;
    }
    match tag.suffix() {
        "reset" => Some(MergeTag::Reset),
        "override" => Some(MergeTag::Override),
        _ => None,
    }
}

type Resolved = (Kind, Option<MergeTag>);

/// The YAML 1.2 core schema, which is what Compose's parser uses for plain
/// scalars; quoted scalars are always strings.
fn resolve_scalar(value: &str, style: ScalarStyle, tag: Option<&Tag>) -> Result<Resolved, String> {
    if let Some(tag) = tag {
        if let Some(t) = merge_tag(tag) {
            return Ok((plain_kind(value, style), Some(t)));
        }
        for core in ["str", "int", "float", "bool", "null"] {
            if tag.is_yaml_core_schema_tag(core) {
                let kind = match core {
                    "str" => Kind::Str(value.to_string()),
                    _ => match plain_kind(value, ScalarStyle::Plain) {
                        k @ (Kind::Int(_) | Kind::Float(_) | Kind::Bool(_) | Kind::Null) => k,
                        _ => return Err(format!("`{value}` is not a valid !!{core}")),
                    },
                };
                return Ok((kind, None));
            }
        }
        return Err(format!("unsupported YAML tag `{tag}`"));
    }
    Ok((plain_kind(value, style), None))
}

fn plain_kind(value: &str, style: ScalarStyle) -> Kind {
    if style != ScalarStyle::Plain {
        return Kind::Str(value.to_string());
    }
    match value {
        "" | "~" | "null" | "Null" | "NULL" => return Kind::Null,
        "true" | "True" | "TRUE" => return Kind::Bool(true),
        "false" | "False" | "FALSE" => return Kind::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Kind::Float(f64::INFINITY);
        }
        "-.inf" | "-.Inf" | "-.INF" => return Kind::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Kind::Float(f64::NAN),
        _ => {}
    }
    if let Some(n) = parse_int(value) {
        return Kind::Int(n);
    }
    let looks_numeric = value
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-'))
        && value.chars().any(|c| c.is_ascii_digit());
    if looks_numeric && let Ok(f) = value.parse::<f64>() {
        return Kind::Float(f);
    }
    Kind::Str(value.to_string())
}

fn parse_int(value: &str) -> Option<i64> {
    let (neg, digits) = match value.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, value.strip_prefix('+').unwrap_or(value)),
    };
    let parsed = if let Some(hex) = digits.strip_prefix("0x") {
        i64::from_str_radix(hex, 16).ok()
    } else if let Some(oct) = digits.strip_prefix("0o") {
        i64::from_str_radix(oct, 8).ok()
    } else if digits.len() > 1
        && digits.starts_with('0')
        && digits.chars().all(|c| c.is_ascii_digit())
    {
        // YAML 1.1 octal (`mode: 0440`), which Compose's parser still reads.
        i64::from_str_radix(&digits[1..], 8).ok()
    } else if !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit()) {
        digits.parse::<i64>().ok()
    } else {
        None
    }?;
    Some(if neg { -parsed } else { parsed })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(root: &Node, path: &[&str]) -> Kind {
        let mut n = root;
        for p in path {
            n = n.get(p).unwrap_or_else(|| panic!("missing {p}"));
        }
        n.kind.clone()
    }

    #[test]
    fn resolves_core_schema_scalars() {
        let root = parse(
            "a: 1\nb: '1'\nc: true\nd: ~\ne: 1.5\nf: 0x10\ng: 1.2.3\n",
            0,
        )
        .expect("ok");
        assert_eq!(kind(&root, &["a"]), Kind::Int(1));
        assert_eq!(kind(&root, &["b"]), Kind::Str("1".into()));
        assert_eq!(kind(&root, &["c"]), Kind::Bool(true));
        assert_eq!(kind(&root, &["d"]), Kind::Null);
        assert_eq!(kind(&root, &["e"]), Kind::Float(1.5));
        assert_eq!(kind(&root, &["f"]), Kind::Int(16));
        assert_eq!(kind(&root, &["g"]), Kind::Str("1.2.3".into()));
    }

    #[test]
    fn anchors_aliases_and_merge_keys() {
        let text = "x-base: &base\n  image: busybox\n  init: true\nservices:\n  a:\n    <<: *base\n    init: false\n  b: *base\n";
        let root = parse(text, 0).expect("ok");
        assert_eq!(
            kind(&root, &["services", "a", "image"]),
            Kind::Str("busybox".into())
        );
        assert_eq!(kind(&root, &["services", "a", "init"]), Kind::Bool(false));
        assert_eq!(kind(&root, &["services", "b", "init"]), Kind::Bool(true));
    }

    #[test]
    fn merge_tags_are_kept() {
        let root = parse("ports: !reset []\nenv: !override {A: 1}\n", 0).expect("ok");
        assert_eq!(root.get("ports").and_then(|n| n.tag), Some(MergeTag::Reset));
        assert_eq!(
            root.get("env").and_then(|n| n.tag),
            Some(MergeTag::Override)
        );
    }

    #[test]
    fn duplicate_keys_and_bad_tags_are_errors_with_spans() {
        let text = "a: 1\na: 2\nb: !custom x\n";
        let errs = parse(text, 0).expect_err("invalid");
        assert_eq!(errs.len(), 2);
        assert_eq!(errs[0].span.start, 5);
        assert!(errs[0].message.contains("duplicate key `a`"));
        assert!(errs[1].message.contains("!custom"));
    }

    #[test]
    fn billion_laughs_is_bounded() {
        let mut text = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        let mut prev = 'a';
        for c in 'b'..='k' {
            text.push_str(&format!(
                "{c}: &{c} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"
            ));
            prev = c;
        }
        let errs = parse(&text, 0).expect_err("bounded");
        assert!(errs[0].message.contains("too many"));
    }

    #[test]
    fn syntax_error_has_position() {
        let errs = parse("a: [1, 2\nb: 3\n", 0).expect_err("invalid");
        assert!(errs[0].message.starts_with("invalid YAML"));
    }
}
