//! Splitting a command string into argv the way Compose does (POSIX shell
//! word rules: whitespace separates, quotes group, backslash escapes) —
//! no shell runs, so `&&` or `|` are plain arguments.

pub fn split(text: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => cur.push(c),
                        None => return Err(format!("unterminated single quote in `{text}`")),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '$' | '`')) => cur.push(c),
                            Some(c) => {
                                cur.push('\\');
                                cur.push(c);
                            }
                            None => return Err(format!("unterminated double quote in `{text}`")),
                        },
                        Some(c) => cur.push(c),
                        None => return Err(format!("unterminated double quote in `{text}`")),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(c) = chars.next() {
                    cur.push(c);
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_like_a_shell() {
        let ok = [
            ("echo hi", vec!["echo", "hi"]),
            ("sh -c 'a && b'", vec!["sh", "-c", "a && b"]),
            ("  x   \"y z\"  ", vec!["x", "y z"]),
            (r#"a\ b "q\"q" ''"#, vec!["a b", "q\"q", ""]),
            ("", vec![]),
        ];
        for (text, want) in ok {
            assert_eq!(
                split(text),
                Ok(want.into_iter().map(String::from).collect()),
                "{text}"
            );
        }
        assert!(split("echo 'open").is_err());
        assert!(split("echo \"open").is_err());
    }
}
