//! Container output as JSON lines, Docker's json-file shape:
//! `{"log":"text\n","stream":"stdout","time":"2026-11-23T11:00:00.123456789Z"}`.
//!
//! The writer lives in the per-container monitor and writes each line with one
//! `write(2)` on an `O_APPEND` file, so a killed monitor loses at most the line it
//! was holding. Files rotate at `max_size` keeping `max_files` in all
//! (`container.log`, `container.log.1`, ...); the default cap bounds a chatty
//! service to [`LogLimits::default`].
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Longest line stored as one record; longer output is split, as Docker does.
const MAX_RECORD: usize = 16 * 1024;

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

/// Appends records to a container's log, rotating by size.
pub struct LogWriter {
    path: PathBuf,
    limits: LogLimits,
    file: Option<File>,
    size: u64,
    /// Unterminated output per stream, waiting for its newline.
    pending: [Vec<u8>; 2],
}

impl LogWriter {
    /// Open (append to) `path`. `max_size == 0` means logging is off (`driver: none`).
    pub fn open(path: &Path, limits: LogLimits) -> io::Result<Self> {
        let mut w = LogWriter {
            path: path.to_path_buf(),
            limits,
            file: None,
            size: 0,
            pending: Default::default(),
        };
        if limits.max_size > 0 {
            w.reopen()?;
        }
        Ok(w)
    }

    fn reopen(&mut self) -> io::Result<()> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        self.size = file.metadata()?.len();
        self.file = Some(file);
        Ok(())
    }

    /// Feed raw bytes read from a stream; complete lines are stored.
    pub fn feed(&mut self, stream: Stream, data: &[u8]) -> io::Result<()> {
        let idx = stream as usize;
        let mut buf = std::mem::take(&mut self.pending[idx]);
        buf.extend_from_slice(data);
        let mut start = 0;
        while let Some(pos) = buf[start..].iter().position(|&b| b == b'\n') {
            let end = start + pos + 1;
            self.write_chunked(stream, &buf[start..end])?;
            start = end;
        }
        // Without a newline in sight, store whole records and keep the tail.
        let whole = (buf.len() - start) / MAX_RECORD * MAX_RECORD;
        if whole > 0 {
            self.write_chunked(stream, &buf[start..start + whole])?;
            start += whole;
        }
        self.pending[idx] = buf.split_off(start);
        Ok(())
    }

    /// Store whatever is pending without a newline (the stream ended).
    pub fn flush_partial(&mut self) -> io::Result<()> {
        for stream in [Stream::Stdout, Stream::Stderr] {
            let rest = std::mem::take(&mut self.pending[stream as usize]);
            if !rest.is_empty() {
                self.write_chunked(stream, &rest)?;
            }
        }
        Ok(())
    }

    fn write_chunked(&mut self, stream: Stream, line: &[u8]) -> io::Result<()> {
        for chunk in line.chunks(MAX_RECORD) {
            let record = Record {
                log: String::from_utf8_lossy(chunk).into_owned(),
                stream,
                time: SystemTime::now(),
            };
            let mut json = serde_json::to_vec(&record).map_err(io::Error::other)?;
            json.push(b'\n');
            self.write_record(&json)?;
        }
        Ok(())
    }

    fn write_record(&mut self, json: &[u8]) -> io::Result<()> {
        if self.limits.max_size == 0 {
            return Ok(());
        }
        if self.size > 0 && self.size + json.len() as u64 > self.limits.max_size {
            self.rotate()?;
        }
        if let Some(f) = self.file.as_mut() {
            f.write_all(json)?;
            self.size += json.len() as u64;
        }
        Ok(())
    }

    fn rotate(&mut self) -> io::Result<()> {
        self.file = None;
        let keep = self.limits.max_files.max(1);
        if keep == 1 {
            fs::remove_file(&self.path).or_else(ignore_missing)?;
        } else {
            fs::remove_file(rotated(&self.path, keep - 1)).or_else(ignore_missing)?;
            for n in (1..keep - 1).rev() {
                fs::rename(rotated(&self.path, n), rotated(&self.path, n + 1))
                    .or_else(ignore_missing)?;
            }
            fs::rename(&self.path, rotated(&self.path, 1)).or_else(ignore_missing)?;
        }
        self.reopen()
    }
}

fn ignore_missing(e: io::Error) -> io::Result<()> {
    if e.kind() == io::ErrorKind::NotFound {
        Ok(())
    } else {
        Err(e)
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(path: &Path) -> Vec<String> {
        read_all(path).unwrap().into_iter().map(|r| r.log).collect()
    }

    #[test]
    fn lines_split_across_reads_are_joined_and_streams_kept_apart() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.log");
        let mut w = LogWriter::open(&p, LogLimits::default()).unwrap();
        w.feed(Stream::Stdout, b"hel").unwrap();
        w.feed(Stream::Stderr, b"oops\n").unwrap();
        w.feed(Stream::Stdout, b"lo\nwor").unwrap();
        w.flush_partial().unwrap();
        let recs = read_all(&p).unwrap();
        let got: Vec<(Stream, &str)> = recs.iter().map(|r| (r.stream, r.log.as_str())).collect();
        assert_eq!(
            got,
            [
                (Stream::Stderr, "oops\n"),
                (Stream::Stdout, "hello\n"),
                (Stream::Stdout, "wor")
            ]
        );
    }

    #[test]
    fn rotation_keeps_max_files_and_drops_the_oldest() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.log");
        let mut w = LogWriter::open(
            &p,
            LogLimits {
                max_size: 300,
                max_files: 3,
            },
        )
        .unwrap();
        for i in 0..40 {
            w.feed(Stream::Stdout, format!("line {i}\n").as_bytes())
                .unwrap();
        }
        assert_eq!(files_oldest_first(&p).len(), 3);
        let got = texts(&p);
        assert_eq!(got.last().unwrap(), "line 39\n");
        let first: usize = got[0].trim().trim_start_matches("line ").parse().unwrap();
        assert!(first > 0, "the oldest lines were dropped");
        let want: Vec<String> = (first..40).map(|i| format!("line {i}\n")).collect();
        assert_eq!(got, want, "what is kept is complete and in order");
        for f in files_oldest_first(&p) {
            assert!(fs::metadata(f).unwrap().len() <= 300);
        }
    }

    #[test]
    fn long_lines_are_split_into_records() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.log");
        let mut w = LogWriter::open(&p, LogLimits::default()).unwrap();
        let long = vec![b'x'; MAX_RECORD * 2 + 10];
        w.feed(Stream::Stdout, &long).unwrap();
        w.feed(Stream::Stdout, b"\n").unwrap();
        let got = texts(&p);
        assert_eq!(got.len(), 3);
        assert_eq!(got.concat().len(), MAX_RECORD * 2 + 11);
    }

    #[test]
    fn driver_none_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.log");
        let mut w = LogWriter::open(
            &p,
            LogLimits {
                max_size: 0,
                max_files: 1,
            },
        )
        .unwrap();
        w.feed(Stream::Stdout, b"x\n").unwrap();
        assert!(!p.exists());
    }
}
