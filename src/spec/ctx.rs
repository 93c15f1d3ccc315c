//! What a conversion step needs: the node being converted (for spans), the
//! project's directory and variables, and where to put errors and warnings.
use std::path::Path;
use std::time::Duration;

use super::diag::Diagnostic;
use super::interp::Vars;
use super::node::Node;
use super::shapes::Scalar;
use super::units;

pub struct Ctx<'a> {
    /// The table being converted (a service, network, volume ...).
    pub node: &'a Node,
    /// e.g. "service `web`".
    pub what: String,
    pub project: &'a str,
    pub base: &'a Path,
    pub vars: &'a Vars,
    pub errors: &'a mut Vec<Diagnostic>,
    pub warnings: &'a mut Vec<String>,
    /// Files read (or looked for) whose content the model depends on.
    pub inputs: &'a mut Vec<std::path::PathBuf>,
}

impl Ctx<'_> {
    /// Reports `msg` at the node found by `path` below this table.
    pub fn err(&mut self, path: &[&str], msg: impl Into<String>) {
        let span = self.node.span_at(path);
        self.errors.push(Diagnostic::new(
            span,
            format!("{}: {}", self.what, msg.into()),
        ));
    }

    /// Reports `msg` at the key that ends `path` (an unknown name).
    pub fn err_key(&mut self, path: &[&str], msg: impl Into<String>) {
        let span = self.node.key_span_at(path);
        self.errors.push(Diagnostic::new(
            span,
            format!("{}: {}", self.what, msg.into()),
        ));
    }

    pub fn err_help(&mut self, path: &[&str], msg: impl Into<String>, help: impl Into<String>) {
        let span = self.node.span_at(path);
        self.errors
            .push(Diagnostic::new(span, format!("{}: {}", self.what, msg.into())).with_help(help));
    }

    pub fn warn(&mut self, msg: impl Into<String>) {
        let msg = format!("{}: {}", self.what, msg.into());
        self.warnings.push(msg);
    }

    pub fn duration(&mut self, path: &[&str], v: &Option<Scalar>) -> Option<Duration> {
        let v = v.as_ref()?;
        match units::parse_duration(&v.0) {
            Ok(d) => Some(d),
            Err(e) => {
                self.err(path, e);
                None
            }
        }
    }

    pub fn size(&mut self, path: &[&str], v: &Option<Scalar>) -> Option<u64> {
        let v = v.as_ref()?;
        match units::parse_size(&v.0) {
            Ok(d) => Some(d),
            Err(e) => {
                self.err(path, e);
                None
            }
        }
    }

    /// A file mode: a number as written (YAML `0440` and `0o440`, TOML
    /// `0o440`), or text read as octal (`"0440"`, `"1777"`).
    pub fn octal_mode(&mut self, path: &[&str], v: &Option<Scalar>) -> Option<u32> {
        let v = v.as_ref()?;
        let text = v.0.trim();
        let digits = text.strip_prefix("0o").unwrap_or(text);
        let parsed = if v.1 {
            digits.parse::<u32>()
        } else {
            u32::from_str_radix(digits, 8)
        };
        match parsed {
            Ok(m) if m <= 0o7777 => Some(m),
            _ => {
                self.err(
                    path,
                    format!("invalid file mode `{text}`: expected octal like 0440"),
                );
                None
            }
        }
    }

    pub fn parse<T: std::str::FromStr>(
        &mut self,
        path: &[&str],
        text: &str,
        expected: &str,
    ) -> Option<T> {
        match text.trim().parse::<T>() {
            Ok(v) => Some(v),
            Err(_) => {
                self.err(path, format!("invalid value `{text}`: expected {expected}"));
                None
            }
        }
    }
}
