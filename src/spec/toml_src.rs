//! TOML text -> [`Node`] tree, keeping the byte span of every key and value.
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::diag::Diagnostic;
use super::node::{Entry, Kind, Node};
use super::source::Span;

/// Parses one TOML document; syntax errors are all reported, with spans.
pub fn parse(text: &str, file: u32) -> Result<Node, Vec<Diagnostic>> {
    let (table, errors) = DeTable::parse_recoverable(text);
    if !errors.is_empty() {
        return Err(errors
            .iter()
            .map(|e| {
                let range = e.span().unwrap_or(0..0);
                Diagnostic::new(
                    Span::new(file, range.start, range.end),
                    format!("invalid TOML: {}", e.message().trim_end()),
                )
            })
            .collect());
    }
    let span = table.span();
    Ok(Node::map(
        Span::new(file, span.start, span.end),
        convert_table(table.get_ref(), file),
    ))
}

fn convert_table(table: &DeTable<'_>, file: u32) -> Vec<Entry> {
    table
        .iter()
        .map(|(k, v)| Entry {
            key: k.get_ref().to_string(),
            key_span: Span::new(file, k.span().start, k.span().end),
            value: convert(v, file),
        })
        .collect()
}

fn convert(value: &Spanned<DeValue<'_>>, file: u32) -> Node {
    let range = value.span();
    let span = Span::new(file, range.start, range.end);
    let kind = match value.get_ref() {
        DeValue::String(s) => Kind::Str(s.to_string()),
        DeValue::Integer(i) => {
            let digits = i.as_str().replace('_', "");
            match i64::from_str_radix(&digits, i.radix()) {
                Ok(n) => Kind::Int(n),
                // Out of range for i64: keep the text so the type check reports it.
                Err(_) => Kind::Str(i.as_str().to_string()),
            }
        }
        DeValue::Float(f) => {
            let text = f.as_str().replace('_', "");
            match text.parse::<f64>() {
                Ok(x) => Kind::Float(x),
                Err(_) => Kind::Str(text),
            }
        }
        DeValue::Boolean(b) => Kind::Bool(*b),
        DeValue::Datetime(d) => Kind::Str(d.to_string()),
        DeValue::Array(items) => Kind::Seq(items.iter().map(|v| convert(v, file)).collect()),
        DeValue::Table(t) => Kind::Map(convert_table(t, file)),
    };
    Node::new(span, kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_types_and_spans() {
        let text = "name = \"x\"\n[services.web]\nreplicas = 1_000\ncpus = 0.5\ninit = true\ncommand = [\"a\"]\n";
        let root = parse(text, 0).expect("valid");
        let web = root
            .get("services")
            .and_then(|s| s.get("web"))
            .expect("web");
        assert_eq!(web.get("replicas").map(|n| &n.kind), Some(&Kind::Int(1000)));
        assert_eq!(web.get("cpus").map(|n| &n.kind), Some(&Kind::Float(0.5)));
        assert_eq!(web.get("init").map(|n| &n.kind), Some(&Kind::Bool(true)));
        let replicas = web.get("replicas").expect("replicas").span;
        assert_eq!(
            &text[replicas.start as usize..replicas.end as usize],
            "1_000"
        );
    }

    #[test]
    fn syntax_errors_carry_spans() {
        let errs = parse("a = 1\nb = \n", 0).expect_err("invalid");
        assert!(!errs.is_empty());
        assert!(errs[0].message.starts_with("invalid TOML"));
        assert!(errs[0].span.start >= 6, "{:?}", errs[0].span);
    }
}
