//! Verbs that change containers go through the root's daemon (started when
//! none runs), so one process supervises them: these print what it streams.
use std::process::ExitCode;

use serde::Serialize;

use crate::daemon::autostart;
use crate::daemon::proto::Line;
use crate::reconcile::Event;
use crate::reconcile::plan::Action;
use crate::state::Roots;

/// Data from the root's daemon when one answers (when a daemon runs, every
/// verb goes through it: that is also how members of the `stack` groups read
/// a root they cannot read themselves), else computed here.
pub fn read<T: serde::de::DeserializeOwned>(
    roots: &Roots,
    path: &str,
    local: impl FnOnce() -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    match crate::daemon::client::Client::connect(roots) {
        Some(client) => match client.get(path) {
            Ok(v) => Ok(v),
            // A refusal says so; other statuses carry a message of their own.
            Err(crate::daemon::client::Error::Status { status, body })
                if status != hyper::StatusCode::FORBIDDEN =>
            {
                anyhow::bail!("{body}")
            }
            Err(e) => Err(e.into()),
        },
        None => local(),
    }
}

/// What came back from one streamed call.
pub struct Outcome {
    pub code: ExitCode,
    pub nothing_to_do: bool,
    pub orphans: Vec<String>,
}

/// POST `body` to `path` on the root's daemon, printing progress as Compose
/// does; errors the daemon reports are printed and make the exit code 1.
pub fn call(roots: &Roots, path: &str, body: &impl Serialize) -> anyhow::Result<Outcome> {
    let client = autostart::client(roots)?;
    let last = client.stream(path, body, &mut print_line)?;
    Ok(match last {
        Line::Done {
            failed,
            orphans,
            nothing_to_do,
        } => {
            for (what, why) in &failed {
                eprintln!("error: {what}: {why}");
            }
            Outcome {
                code: if failed.is_empty() {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::FAILURE
                },
                nothing_to_do,
                orphans,
            }
        }
        _ => Outcome {
            code: ExitCode::FAILURE,
            nothing_to_do: false,
            orphans: Vec::new(),
        },
    })
}

fn print_line(line: &Line) {
    match line {
        Line::Progress { event } => print_event(event),
        Line::Container { name, verb, error } => match error {
            None => eprintln!(" Container {name}  {verb}"),
            Some(e) => eprintln!(" Container {name}  Error: {e}"),
        },
        // The CLI loaded the files itself and printed their warnings.
        Line::Warning { .. } | Line::Done { .. } => {}
        Line::Error { message } => eprint!(
            "{}{}",
            if message.starts_with("error") {
                ""
            } else {
                "error: "
            },
            ensure_newline(message)
        ),
    }
}

fn ensure_newline(s: &str) -> String {
    if s.ends_with('\n') {
        s.to_string()
    } else {
        format!("{s}\n")
    }
}

/// One line per step, as Compose prints them.
pub fn print_event(e: &Event) {
    let (what, verb, tail) = match e {
        Event::Begin(a) => (a, verb(a).0, String::new()),
        Event::Done(a) => (a, verb(a).1, String::new()),
        Event::Failed(a, why) => (a, "Error", format!(": {why}")),
        Event::Skipped(a, why) => (a, "Skipped", format!(": {why}")),
    };
    eprintln!(" Container {}  {verb}{tail}", what.name());
}

fn verb(a: &Action) -> (&'static str, &'static str) {
    match a {
        Action::Create { .. } => ("Creating", "Started"),
        Action::Recreate { .. } => ("Recreating", "Started"),
        Action::Start { .. } => ("Starting", "Started"),
        Action::Remove { .. } => ("Removing", "Removed"),
    }
}
