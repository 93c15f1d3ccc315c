//! Compose variable interpolation: `$VAR`, `${VAR}`, `${VAR:-default}`,
//! `${VAR-default}`, `${VAR:?error}`, `${VAR?error}`, `${VAR:+alt}`,
//! `${VAR+alt}`, and `$$` for a literal `$`. Defaults and alternatives may
//! themselves contain interpolations. Applied to string values only (never
//! to keys), before merging, as Compose does.
use std::collections::BTreeMap;

use super::diag::Diagnostic;
use super::node::{Kind, Node};

/// The variables visible to interpolation.
pub type Vars = BTreeMap<String, String>;

/// Interpolates every string in the tree; returns warnings for variables
/// that were unset and had no default (they become empty, as in Compose).
pub fn interpolate_tree(node: &mut Node, vars: &Vars, errors: &mut Vec<Diagnostic>) -> Vec<String> {
    let mut unset = Vec::new();
    walk(node, vars, errors, &mut unset);
    unset.sort();
    unset.dedup();
    unset
        .into_iter()
        .map(|v| format!("the {v} variable is not set; defaulting to a blank string"))
        .collect()
}

fn walk(node: &mut Node, vars: &Vars, errors: &mut Vec<Diagnostic>, unset: &mut Vec<String>) {
    match &mut node.kind {
        Kind::Str(s) if s.contains('$') => match interpolate(s, vars, unset) {
            Ok(v) => *s = v,
            Err(msg) => errors.push(Diagnostic::new(node.span, msg)),
        },
        Kind::Seq(items) => items.iter_mut().for_each(|n| walk(n, vars, errors, unset)),
        Kind::Map(entries) => entries
            .iter_mut()
            .for_each(|e| walk(&mut e.value, vars, errors, unset)),
        _ => {}
    }
}

/// Interpolates one string. `unset` collects names used without a value.
pub fn interpolate(text: &str, vars: &Vars, unset: &mut Vec<String>) -> Result<String, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut pos = 0;
    let out = expand(&chars, &mut pos, vars, unset, false)?;
    Ok(out)
}

fn is_name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Expands from `pos` to the end, or (when `nested`) to the `}` closing the
/// enclosing `${...}`, which is consumed.
fn expand(
    chars: &[char],
    pos: &mut usize,
    vars: &Vars,
    unset: &mut Vec<String>,
    nested: bool,
) -> Result<String, String> {
    let mut out = String::new();
    while *pos < chars.len() {
        let c = chars[*pos];
        if nested && c == '}' {
            *pos += 1;
            return Ok(out);
        }
        if c != '$' {
            out.push(c);
            *pos += 1;
            continue;
        }
        *pos += 1;
        match chars.get(*pos) {
            Some('$') => {
                out.push('$');
                *pos += 1;
            }
            Some('{') => {
                *pos += 1;
                out.push_str(&braced(chars, pos, vars, unset)?);
            }
            Some(&c) if is_name_start(c) => {
                let start = *pos;
                while *pos < chars.len() && is_name_char(chars[*pos]) {
                    *pos += 1;
                }
                let name: String = chars[start..*pos].iter().collect();
                out.push_str(&lookup(&name, vars, unset));
            }
            _ => {
                return Err(format!(
                    "invalid interpolation in `{}`: `$` must be followed by a name or `{{`; write `$$` for a literal `$`",
                    chars.iter().collect::<String>()
                ));
            }
        }
    }
    if nested {
        return Err(format!(
            "unterminated `${{` in `{}`",
            chars.iter().collect::<String>()
        ));
    }
    Ok(out)
}

fn lookup(name: &str, vars: &Vars, unset: &mut Vec<String>) -> String {
    match vars.get(name) {
        Some(v) => v.clone(),
        None => {
            unset.push(name.to_string());
            String::new()
        }
    }
}

/// The inside of `${...}`, after the `{`.
fn braced(
    chars: &[char],
    pos: &mut usize,
    vars: &Vars,
    unset: &mut Vec<String>,
) -> Result<String, String> {
    let whole = || chars.iter().collect::<String>();
    let start = *pos;
    while *pos < chars.len() && is_name_char(chars[*pos]) {
        *pos += 1;
    }
    let name: String = chars[start..*pos].iter().collect();
    if name.is_empty() || !name.starts_with(is_name_start) {
        return Err(format!("invalid variable name in `{}`", whole()));
    }
    let value = vars.get(&name);
    let Some(&next) = chars.get(*pos) else {
        return Err(format!("unterminated `${{` in `{}`", whole()));
    };
    if next == '}' {
        *pos += 1;
        return Ok(lookup(&name, vars, unset));
    }
    // `:` makes the operator treat an empty value like an unset one.
    let colon = next == ':';
    if colon {
        *pos += 1;
    }
    let op = chars.get(*pos).copied();
    if !matches!(op, Some('-' | '?' | '+')) {
        return Err(format!(
            "invalid interpolation `${{{name}{}...` in `{}`: expected one of :- - :? ? :+ +",
            if colon { ":" } else { "" },
            whole()
        ));
    }
    *pos += 1;
    // The word is expanded lazily in Compose; expanding it eagerly only
    // differs in which unset-variable warnings are printed, so track them
    // separately and keep them only when the word is used.
    let mut word_unset = Vec::new();
    let word = expand(chars, pos, vars, &mut word_unset, true)?;
    let present = match value {
        Some(v) => !(colon && v.is_empty()),
        None => false,
    };
    match op {
        Some('-') if present => Ok(value.cloned().unwrap_or_default()),
        Some('-') => {
            unset.extend(word_unset);
            Ok(word)
        }
        Some('?') if present => Ok(value.cloned().unwrap_or_default()),
        Some('?') => Err(if word.is_empty() {
            format!("required variable {name} is missing a value")
        } else {
            format!("required variable {name} is missing a value: {word}")
        }),
        Some('+') if present => {
            unset.extend(word_unset);
            Ok(word)
        }
        _ => Ok(String::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> Vars {
        [("SET", "v"), ("EMPTY", ""), ("PORT", "8080")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn run(text: &str) -> Result<String, String> {
        interpolate(text, &vars(), &mut Vec::new())
    }

    #[test]
    fn every_form() {
        let cases = [
            ("$SET", "v"),
            ("${SET}", "v"),
            ("a${SET}b$SET.c", "avbv.c"),
            ("${UNSET:-d}", "d"),
            ("${EMPTY:-d}", "d"),
            ("${EMPTY-d}", ""),
            ("${UNSET-d}", "d"),
            ("${SET:-d}", "v"),
            ("${SET:+x}", "x"),
            ("${EMPTY:+x}", ""),
            ("${EMPTY+x}", "x"),
            ("${UNSET+x}", ""),
            ("${UNSET:-${PORT}}", "8080"),
            ("${UNSET:-a-${UNSET2:-b}}", "a-b"),
            ("$$SET", "$SET"),
            ("cost: $$5", "cost: $5"),
            ("${SET?boom}", "v"),
            ("${EMPTY?boom}", ""),
            ("127.0.0.1:${PORT}:80", "127.0.0.1:8080:80"),
        ];
        for (text, want) in cases {
            assert_eq!(run(text).as_deref(), Ok(want), "{text}");
        }
    }

    #[test]
    fn errors() {
        assert_eq!(
            run("${UNSET:?set it please}"),
            Err("required variable UNSET is missing a value: set it please".into())
        );
        assert_eq!(
            run("${EMPTY:?}"),
            Err("required variable EMPTY is missing a value".into())
        );
        assert!(run("${UNSET?x}").is_err());
        assert!(run("${SET").unwrap_err().contains("unterminated"));
        assert!(run("${SET:x}").is_err());
        assert!(run("$ 5").unwrap_err().contains("$$"));
        assert!(run("${}").is_err());
    }

    #[test]
    fn unset_without_default_is_empty_and_reported() {
        let mut unset = Vec::new();
        assert_eq!(
            interpolate("a${NOPE}b", &vars(), &mut unset),
            Ok("ab".into())
        );
        assert_eq!(unset, vec!["NOPE".to_string()]);
        let mut unset = Vec::new();
        assert_eq!(
            interpolate("${NOPE:-x}", &vars(), &mut unset),
            Ok("x".into())
        );
        assert!(unset.is_empty());
    }
}
