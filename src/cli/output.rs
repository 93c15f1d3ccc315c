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
