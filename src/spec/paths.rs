//! Lexical path helpers: stack files name paths that need not exist yet.
use std::path::{Component, Path, PathBuf};

/// `base.join(p)`, with `.` and `..` resolved lexically; `~/` expands to
/// `$HOME` as in Compose.
pub fn absolute(base: &Path, p: &str) -> PathBuf {
    let expanded;
    let p = match p.strip_prefix("~/") {
        Some(rest) => match std::env::var_os("HOME") {
            Some(home) => {
                expanded = Path::new(&home).join(rest);
                expanded.as_path()
            }
            None => Path::new(p),
        },
        None => Path::new(p),
    };
    normalize(&base.join(p))
}

pub fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_lexically() {
        assert_eq!(
            absolute(Path::new("/a/b"), "../c/./d"),
            PathBuf::from("/a/c/d")
        );
        assert_eq!(absolute(Path::new("/a/b"), "/x/../y"), PathBuf::from("/y"));
        assert_eq!(absolute(Path::new("/a"), "."), PathBuf::from("/a"));
    }
}
