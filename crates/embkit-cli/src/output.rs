//! Results on stdout: aligned text for people, or one JSON object per
//! line with `--json`.

use std::io::{self, Write};

use anyhow::Result;
use serde_json::Value;

/// Where a command's results go.
pub struct Out {
    json: bool,
    stdout: io::StdoutLock<'static>,
}

impl Out {
    /// Results on stdout; JSON lines when `json`.
    pub fn new(json: bool) -> Self {
        Self { json, stdout: io::stdout().lock() }
    }

    /// Prints a line of text (only in text mode).
    pub fn text(&mut self, line: impl AsRef<str>) -> Result<()> {
        if !self.json {
            writeln!(self.stdout, "{}", line.as_ref())?;
        }
        Ok(())
    }

    /// Prints a JSON object on one line (only in JSON mode).
    pub fn record(&mut self, value: Value) -> Result<()> {
        if self.json {
            serde_json::to_writer(&mut self.stdout, &value)?;
            writeln!(self.stdout)?;
        }
        Ok(())
    }
}

/// Formats a matrix as aligned rows, one line per row.
pub fn matrix_lines<'a>(
    rows: impl IntoIterator<Item = (String, &'a [f32])>,
    decimals: usize,
) -> Vec<String> {
    rows.into_iter()
        .map(|(label, row)| {
            let width = if decimals == 0 { 1 } else { decimals + 3 };
            let cells: Vec<String> = row.iter().map(|x| format!("{x:>width$.decimals$}")).collect();
            format!("  {label:<8} [{}]", cells.join(" "))
        })
        .collect()
}
