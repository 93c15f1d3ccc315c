//! Shared output helpers: tables for people, JSON for programs.
use clap::ValueEnum;
use comfy_table::{Table, presets};

#[derive(ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ListFormat {
    #[default]
    Table,
    Json,
}

/// A borderless table like docker's listings.
pub fn table<const N: usize>(header: [&str; N]) -> Table {
    let mut t = Table::new();
    t.load_style(presets::NOTHING);
    t.set_header(header);
    for col in t.column_iter_mut() {
        col.set_padding((0, 3));
    }
    t
}

/// Print rows as a table or as JSON.
pub fn print_rows<T: serde::Serialize>(
    format: ListFormat,
    rows: &[T],
    table: impl FnOnce(&[T]) -> Table,
) -> anyhow::Result<()> {
    match format {
        ListFormat::Json => println!("{}", serde_json::to_string_pretty(rows)?),
        ListFormat::Table => {
            let t = table(rows);
            let text = t.to_string();
            for line in text.lines() {
                println!("{}", line.trim_end());
            }
        }
    }
    Ok(())
}

/// Time since `secs` (seconds since the epoch) in its largest unit: "5s", "3m", "2days".
pub fn since(secs: Option<u64>) -> String {
    let Some(then) = secs else {
        return String::new();
    };
    let now = crate::supervisor::record::now_secs();
    let d = std::time::Duration::from_secs(now.saturating_sub(then));
    let text = humantime::format_duration(d).to_string();
    text.split_whitespace().next().unwrap_or("0s").to_string()
}
