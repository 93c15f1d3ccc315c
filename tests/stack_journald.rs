//! `logging.driver: journald`: stack-monitor sends each output line to the
//! journal's native socket with Docker's journald fields. The test binds a
//! datagram socket of its own and points the monitor at it through the
//! `STACK_TEST_JOURNAL_SOCKET` test hook (inherited from the CLI by the daemon
//! it starts, and from the daemon by the monitor). Needs root.
mod common;

use std::collections::BTreeMap;
use std::io::{IoSliceMut, Read};
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use common::stack::TestStack;
use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};

const LONG: usize = 100_000;
/// stack-monitor's record size: longer lines come in pieces of this.
const RECORD: usize = 16 * 1024;

fn app() -> String {
    format!(
        r#"
[services.app]
image = "{{IMAGE}}"
command = ["sh", "-c", "echo out-line; echo err-line >&2; head -c {LONG} /dev/zero | tr '\\0' x; echo; exec sleep 3600"]
init = true
logging = {{ driver = "journald" }}
"#
    )
}

/// `stack ARGS` on `t` with the journal socket hook set to `socket`.
fn run_with_journal(t: &TestStack, socket: &Path, args: &[&str]) -> Output {
    let out = t
        .command()
        .args(args)
        .env("STACK_TEST_JOURNAL_SOCKET", socket)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "stack {args:?}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

type Entry = BTreeMap<String, Vec<u8>>;

/// The fields of one native-protocol entry: `KEY=value\n`, or `KEY\n` with a
/// little-endian u64 length, the value and `\n`.
fn parse(mut data: &[u8]) -> Entry {
    let mut fields = Entry::new();
    while !data.is_empty() {
        let end = data.iter().position(|&c| c == b'\n' || c == b'=').unwrap();
        let key = String::from_utf8(data[..end].to_vec()).unwrap();
        if data[end] == b'=' {
            let rest = &data[end + 1..];
            let nl = rest.iter().position(|&c| c == b'\n').expect("field ends");
            fields.insert(key, rest[..nl].to_vec());
            data = &rest[nl + 1..];
        } else {
            let len = u64::from_le_bytes(data[end + 1..end + 9].try_into().unwrap()) as usize;
            let value = &data[end + 9..end + 9 + len];
            assert_eq!(data[end + 9 + len], b'\n', "binary field {key} ends");
            fields.insert(key, value.to_vec());
            data = &data[end + 10 + len..];
        }
    }
    fields
}

/// Receive one entry: a datagram, or a memfd passed in place of one.
fn receive(sock: &UnixDatagram) -> Option<Entry> {
    use std::os::fd::AsRawFd;
    let mut buf = vec![0u8; 512 * 1024];
    let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let (n, fd) = {
        let mut iov = [IoSliceMut::new(&mut buf)];
        let msg = recvmsg::<()>(
            sock.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::empty(),
        )
        .ok()?;
        let fd = msg.cmsgs().ok()?.find_map(|c| match c {
            ControlMessageOwned::ScmRights(fds) => fds.first().copied(),
            _ => None,
        });
        (msg.bytes, fd)
    };
    match fd {
        Some(fd) => {
            // SAFETY: the descriptor just arrived with the message; we own it.
            let mut f = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
            let mut data = Vec::new();
            f.read_to_end(&mut data).unwrap();
            Some(parse(&data))
        }
        None => Some(parse(&buf[..n])),
    }
}

/// Entries until `enough` holds of them, for at most 30 s.
fn collect(sock: &UnixDatagram, enough: impl Fn(&[Entry]) -> bool) -> Vec<Entry> {
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let until = Instant::now() + Duration::from_secs(30);
    let mut got = Vec::new();
    while !enough(&got) {
        assert!(
            Instant::now() < until,
            "timed out; entries so far: {got:#?}"
        );
        got.extend(receive(sock));
    }
    got
}

fn text(e: &Entry, key: &str) -> String {
    String::from_utf8_lossy(e.get(key).unwrap_or_else(|| panic!("no {key} in {e:?}"))).into()
}

fn pieces_of_the_long_line(entries: &[Entry]) -> Vec<&Entry> {
    entries
        .iter()
        .filter(|e| e.get("MESSAGE").is_some_and(|m| m.first() == Some(&b'x')))
        .collect()
}

fn complete(entries: &[Entry]) -> bool {
    let has = |m: &str| entries.iter().any(|e| e["MESSAGE"] == m.as_bytes());
    let long_done = pieces_of_the_long_line(entries).iter().any(|e| {
        e.get("CONTAINER_PARTIAL_LAST")
            .is_some_and(|v| v == b"true")
    });
    has("out-line") && has("err-line") && long_done
}

#[test]
fn output_goes_to_the_journal_with_dockers_fields() {
    let t = TestStack::new(&app());
    let socket = t.dir.path().join("journal.sock");
    let sock = UnixDatagram::bind(&socket).unwrap();
    run_with_journal(&t, &socket, &["up", "-d"]);
    let entries = collect(&sock, complete);
    let name = t.container("app", 1);
    let inspect: serde_json::Value = serde_json::from_str(&t.ok(&["inspect", "app"])).unwrap();
    let id = inspect[0]["id"].as_str().unwrap().to_string();
    assert_eq!(id.len(), 64, "{id}");

    for e in &entries {
        assert_eq!(text(e, "CONTAINER_NAME"), name);
        assert_eq!(text(e, "CONTAINER_ID_FULL"), id);
        assert_eq!(text(e, "CONTAINER_ID"), id[..12]);
        assert_eq!(text(e, "CONTAINER_TAG"), id[..12], "Docker's default tag");
        assert_eq!(text(e, "SYSLOG_IDENTIFIER"), id[..12]);
        assert!(text(e, "IMAGE_NAME").starts_with("oci:"), "{e:?}");
        assert!(text(e, "SYSLOG_TIMESTAMP").ends_with('Z'), "{e:?}");
    }
    let line = |m: &str| {
        entries
            .iter()
            .find(|e| e["MESSAGE"] == m.as_bytes())
            .unwrap()
    };
    assert_eq!(text(line("out-line"), "PRIORITY"), "6", "stdout is info");
    assert_eq!(text(line("err-line"), "PRIORITY"), "3", "stderr is err");
    assert!(!line("out-line").contains_key("CONTAINER_PARTIAL_MESSAGE"));

    // the 100 kB line: pieces of one record each, as Docker sends them
    let pieces = pieces_of_the_long_line(&entries);
    assert_eq!(
        pieces.len(),
        LONG.div_ceil(RECORD),
        "{} pieces",
        pieces.len()
    );
    let whole: Vec<u8> = pieces.iter().flat_map(|e| e["MESSAGE"].clone()).collect();
    assert_eq!(whole, vec![b'x'; LONG], "the pieces make the line");
    let partial_id = text(pieces[0], "CONTAINER_PARTIAL_ID");
    assert_eq!(partial_id.len(), 64);
    for (i, e) in pieces.iter().enumerate() {
        let last = i + 1 == pieces.len();
        assert_eq!(text(e, "PRIORITY"), "6");
        assert_eq!(text(e, "CONTAINER_PARTIAL_ID"), partial_id);
        assert_eq!(text(e, "CONTAINER_PARTIAL_ORDINAL"), (i + 1).to_string());
        assert_eq!(text(e, "CONTAINER_PARTIAL_LAST"), last.to_string());
        assert_eq!(
            e.get("CONTAINER_PARTIAL_MESSAGE").map(|v| v.as_slice()),
            (!last).then_some(&b"true"[..]),
            "piece {i}"
        );
    }

    // `logs` says where the output is; the json-file log stayed empty
    let logs = run_with_journal(&t, &socket, &["logs", "--no-color"]);
    let note = String::from_utf8_lossy(&logs.stderr);
    assert!(
        note.contains(&format!("journalctl CONTAINER_NAME={name}")),
        "{note}"
    );
    assert_eq!(String::from_utf8_lossy(&logs.stdout), "");
    t.down_and_check();
}

#[test]
fn without_a_journal_the_output_goes_to_the_json_file_log_with_a_warning() {
    let t = TestStack::new(&app());
    let missing = t.dir.path().join("no-journal.sock");
    run_with_journal(&t, &missing, &["up", "-d"]);
    let events = std::fs::read_to_string(t.root().join("lib/events.jsonl")).unwrap();
    let warning = events
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|e| e["action"] == "warning")
        .unwrap_or_else(|| panic!("no warning event in {events}"));
    assert_eq!(warning["container"], t.container("app", 1));
    let detail = warning["detail"].as_str().unwrap();
    assert!(detail.contains("no journal socket"), "{detail}");
    t.wait_for(20, "the lines in the json-file log", || {
        let out = t.ok(&["logs", "--no-color", "--no-log-prefix"]);
        out.contains("out-line\n") && out.contains("err-line\n")
    });
    let logs = t.run(&["logs", "--no-color"]);
    assert!(
        !String::from_utf8_lossy(&logs.stderr).contains("journalctl"),
        "no journal note when the run logs to the file"
    );
    t.down_and_check();
}

/// A service that says one line and waits, its log `tag` set to `tag`.
fn tagged(driver: &str, tag: &str) -> String {
    format!(
        r#"
[services.app]
image = "{{IMAGE}}"
command = ["sh", "-c", "echo tagged-line; exec sleep 3600"]
init = true
logging = {{ driver = "{driver}", options = {{ tag = "{tag}" }} }}
"#
    )
}

fn container_id(t: &TestStack) -> String {
    let inspect: serde_json::Value = serde_json::from_str(&t.ok(&["inspect", "app"])).unwrap();
    inspect[0]["id"].as_str().unwrap().to_string()
}

#[test]
fn a_tag_template_sets_container_tag_and_syslog_identifier() {
    let t = TestStack::new(&tagged(
        "journald",
        "{{.ImageName}}|{{.Name}}|{{ .ID }}|{{.FullID}}|{{.DaemonName}}",
    ));
    let socket = t.dir.path().join("journal.sock");
    let sock = UnixDatagram::bind(&socket).unwrap();
    run_with_journal(&t, &socket, &["up", "-d"]);
    let entries = collect(&sock, |got| {
        got.iter().any(|e| e["MESSAGE"] == b"tagged-line")
    });
    let id = container_id(&t);
    let image = format!("oci:{}:latest", common::stack::image().display());
    let want = format!("{image}|{}|{}|{id}|stack", t.container("app", 1), &id[..12]);
    let e = entries
        .iter()
        .find(|e| e["MESSAGE"] == b"tagged-line")
        .unwrap();
    assert_eq!(text(e, "CONTAINER_TAG"), want);
    assert_eq!(text(e, "SYSLOG_IDENTIFIER"), want);
    assert_eq!(text(e, "CONTAINER_ID"), id[..12], "the id fields stay");
    t.down_and_check();
}

#[test]
fn json_file_records_carry_the_tag_in_attrs_and_logs_shows_the_lines() {
    let t = TestStack::new(&tagged("json-file", "web/{{.Name}}"));
    t.ok(&["up", "-d"]);
    let name = t.container("app", 1);
    let log = t
        .root()
        .join("lib/containers")
        .join(&name)
        .join("container.log");
    t.wait_for(20, "the line in container.log", || {
        std::fs::read_to_string(&log).is_ok_and(|s| s.contains("tagged-line"))
    });
    let text = std::fs::read_to_string(&log).unwrap();
    let record: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(record["log"], "tagged-line\n");
    assert_eq!(record["stream"], "stdout");
    assert_eq!(record["attrs"]["tag"], format!("web/{name}"), "{text}");
    assert!(record["time"].as_str().unwrap().ends_with('Z'), "{text}");
    // `logs` shows the lines as for any service: the tag is for other readers
    let out = t.ok(&["logs", "--no-color", "--no-log-prefix"]);
    assert_eq!(out, "tagged-line\n");
    t.down_and_check();
}

#[test]
fn without_a_tag_json_file_records_have_no_attrs() {
    let t = TestStack::new(
        r#"
[services.app]
image = "{IMAGE}"
command = ["sh", "-c", "echo plain-line; exec sleep 3600"]
init = true
"#,
    );
    t.ok(&["up", "-d"]);
    let log = t
        .root()
        .join("lib/containers")
        .join(t.container("app", 1))
        .join("container.log");
    t.wait_for(20, "the line in container.log", || {
        std::fs::read_to_string(&log).is_ok_and(|s| s.contains("plain-line"))
    });
    let text = std::fs::read_to_string(&log).unwrap();
    let record: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(record["log"], "plain-line\n");
    assert!(record.get("attrs").is_none(), "{text}");
    t.down_and_check();
}
