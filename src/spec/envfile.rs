//! `.env` and `env_file` parsing, in Compose's dotenv dialect: `KEY=VALUE`,
//! optional `export `, `#` comments, single quotes (literal), double quotes
//! (with `\n`, `\t`, `\\`, `\"` escapes), and `${VAR}` interpolation in
//! unquoted and double-quoted values from earlier lines and the environment.
use super::interp::{self, Vars};

/// Parses dotenv text into ordered `(key, value)` pairs. A line with only a
/// key takes the value from `lookup` (and is dropped when unset there).
/// Errors carry the 1-based line number.
pub fn parse(text: &str, lookup: &Vars) -> Result<Vec<(String, String)>, (usize, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").map_or(line, str::trim_start);
        let (key, value) = match line.split_once('=') {
            Some((k, v)) => (k.trim(), Some(v.trim_start())),
            None => (line, None),
        };
        if key.is_empty()
            || !key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
        {
            return Err((line_no, format!("invalid variable name `{key}`")));
        }
        let mut scope = lookup.clone();
        scope.extend(out.iter().cloned());
        let value = match value {
            None => match lookup.get(key) {
                Some(v) => v.clone(),
                None => continue,
            },
            Some(v) => parse_value(v, &scope).map_err(|e| (line_no, e))?,
        };
        out.retain(|(k, _)| k != key);
        out.push((key.to_string(), value));
    }
    Ok(out)
}

fn parse_value(v: &str, scope: &Vars) -> Result<String, String> {
    if let Some(rest) = v.strip_prefix('\'') {
        let end = rest.find('\'').ok_or("unterminated single quote")?;
        return Ok(rest[..end].to_string());
    }
    if let Some(rest) = v.strip_prefix('"') {
        let mut out = String::new();
        let mut chars = rest.chars();
        loop {
            match chars.next() {
                None => return Err("unterminated double quote".into()),
                Some('"') => break,
                Some('\\') => match chars.next() {
                    Some('n') => out.push('\n'),
                    Some('t') => out.push('\t'),
                    Some('r') => out.push('\r'),
                    Some(c) => out.push(c),
                    None => return Err("unterminated double quote".into()),
                },
                Some(c) => out.push(c),
            }
        }
        return interp::interpolate(&out, scope, &mut Vec::new());
    }
    // Unquoted: an inline comment starts at ` #`.
    let v = match v.find(" #") {
        Some(i) => &v[..i],
        None => v,
    };
    interp::interpolate(v.trim_end(), scope, &mut Vec::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotenv_dialect() {
        let env: Vars = [("HOME".to_string(), "/root".to_string())].into();
        let text = "# comment\nA=1\nexport B = two words # note\nC='lit $A'\nD=\"x\\ny $A\"\nE=${A}-${HOME}\nHOME\nMISSING\nF=\n";
        let got = parse(text, &env).expect("valid");
        let want: Vec<(String, String)> = [
            ("A", "1"),
            ("B", "two words"),
            ("C", "lit $A"),
            ("D", "x\ny 1"),
            ("E", "1-/root"),
            ("HOME", "/root"),
            ("F", ""),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn errors_name_the_line() {
        assert_eq!(
            parse("A=1\nB=\"open\n", &Vars::new()).map_err(|e| e.0),
            Err(2)
        );
        assert_eq!(parse("bad key=1\n", &Vars::new()).map_err(|e| e.0), Err(1));
    }
}
