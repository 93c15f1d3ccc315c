//! Container output as JSON lines, Docker's json-file shape:
//! `{"log":"text\n","stream":"stdout","time":"2026-11-23T11:00:00.123456789Z"}`.
//!
//! The writer is stack-monitor (src/init/stack-monitor.rs), beside each
//! container: each record with one `write(2)` on an `O_APPEND` file, lines
//! longer than 16 KiB split into several records. Files rotate at `max_size`
//! keeping `max_files` in all (`container.log`, `container.log.1`, ...); the
//! default cap bounds a chatty service to [`LogLimits::default`]. This module
//! reads them, and follows any JSON-lines file across rotation.
use std::fs::File;
use std::io::{self, BufRead, BufReader, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogLimits {
    pub max_size: u64,
    pub max_files: u32,
}

impl Default for LogLimits {
    /// 10 MiB × 3 files: 30 MiB at most per container unless the file says otherwise.
    fn default() -> Self {
        LogLimits {
            max_size: 10 * 1024 * 1024,
            max_files: 3,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    Stdout,
    Stderr,
}

/// One stored line.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Record {
    pub log: String,
    pub stream: Stream,
    #[serde(with = "crate::state::rfc3339")]
    pub time: SystemTime,
}

fn rotated(path: &Path, n: u32) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

/// All files of a log, oldest first.
pub fn files_oldest_first(path: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = (1..1000)
        .map(|n| rotated(path, n))
        .take_while(|p| p.exists())
        .collect();
    files.reverse();
    if path.exists() {
        files.push(path.to_path_buf());
    }
    files
}

/// Read every record of a log (all rotated files, oldest first). Lines that do not
/// parse (a torn last line after a crash) are skipped.
pub fn read_all(path: &Path) -> io::Result<Vec<Record>> {
    let mut out = Vec::new();
    for file in files_oldest_first(path) {
        let f = match File::open(&file) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        for line in BufReader::new(f).lines() {
            if let Ok(rec) = serde_json::from_str::<Record>(&line?) {
                out.push(rec);
            }
        }
    }
    Ok(out)
}

/// Where a followed JSON-lines file was read up to.
#[derive(Debug, Clone, Copy, Default)]
pub struct Cursor {
    ino: u64,
    offset: u64,
}

impl Cursor {
    /// At the current end of `path` (only what is appended later is read).
    pub fn at_end(path: &Path) -> Cursor {
        std::fs::metadata(path)
            .map(|m| Cursor {
                ino: m.ino(),
                offset: m.len(),
            })
            .unwrap_or_default()
    }

    /// Records appended since the cursor; a rotated file is finished from its
    /// new name (`.1`) before the new file is read from its start.
    pub fn read_new<T: serde::de::DeserializeOwned>(&mut self, path: &Path) -> io::Result<Vec<T>> {
        let Ok(meta) = std::fs::metadata(path) else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        if meta.ino() != self.ino {
            let rotated = rotated(path, 1);
            if self.ino != 0 && std::fs::metadata(&rotated).is_ok_and(|m| m.ino() == self.ino) {
                read_from(&rotated, self.offset, &mut out)?;
            }
            *self = Cursor {
                ino: meta.ino(),
                offset: 0,
            };
        }
        self.offset = read_from(path, self.offset, &mut out)?;
        Ok(out)
    }
}

/// Parse complete lines from `offset`; returns the offset after the last one
/// (a line still being written is left for the next read).
fn read_from<T: serde::de::DeserializeOwned>(
    path: &Path,
    offset: u64,
    out: &mut Vec<T>,
) -> io::Result<u64> {
    let mut f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(offset),
        Err(e) => return Err(e),
    };
    f.seek(SeekFrom::Start(offset))?;
    let mut reader = BufReader::new(f);
    let mut pos = offset;
    let mut line = String::new();
    loop {
        line.clear();
        let n = reader.read_line(&mut line)?;
        if n == 0 || !line.ends_with('\n') {
            return Ok(pos);
        }
        pos += n as u64;
        if let Ok(rec) = serde_json::from_str(&line) {
            out.push(rec);
        }
    }
}
