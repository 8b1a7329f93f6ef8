//! Where rendered output goes (stdout or `--out-file`) and which outputter a return gets.

use std::io::Write;
use std::path::PathBuf;

use salt_output::{OutputIndent, OutputOptions, Outputter};
use serde_json::Value;

/// The output flags every program shares.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct OutputFlags {
    /// Print the output using the specified outputter: nested, json, yaml, raw, txt, quiet, pprint.
    #[arg(long = "out", visible_alias = "output")]
    pub out: Option<String>,
    /// Write the output to the specified file.
    #[arg(long = "out-file", visible_alias = "output-file")]
    pub out_file: Option<PathBuf>,
    /// Append the output to --out-file instead of replacing it.
    #[arg(long = "out-file-append", visible_alias = "output-file-append")]
    pub out_file_append: bool,
    /// Print the output indented by the provided value in spaces (json, nested).
    #[arg(long = "out-indent", visible_alias = "output-indent", allow_negative_numbers = true)]
    pub out_indent: Option<i64>,
    /// Disable all colored output.
    #[arg(long = "no-color", visible_alias = "no-colour")]
    pub no_color: bool,
    /// Force colored output.
    #[arg(long = "force-color", visible_alias = "force-colour")]
    pub force_color: bool,
}

pub struct Printer {
    flags: OutputFlags,
    chosen: Option<Outputter>,
    /// `--out-file`, opened at the first write and kept: a job's returns are printed one by
    /// one, 50,000 of them at times.
    file: Option<std::fs::File>,
    /// Whether stdout is a terminal, asked once.
    tty: bool,
}

impl Printer {
    pub fn new(flags: OutputFlags) -> Result<Printer, String> {
        let chosen = match &flags.out {
            Some(name) => Some(name.parse::<Outputter>().map_err(|e| e.to_string())?),
            None => None,
        };
        let tty = flags.out_file.is_none() && is_stdout_tty();
        Ok(Printer { flags, chosen, file: None, tty })
    }

    /// The outputter: `--out` if given, else the return's own `out`, else `fallback`.
    pub fn outputter(&self, returned_out: Option<&str>, fallback: Outputter) -> Outputter {
        self.chosen.unwrap_or_else(|| returned_out.and_then(|o| o.parse().ok()).unwrap_or(fallback))
    }

    pub fn options(&self) -> OutputOptions {
        OutputOptions {
            color: salt_output::should_color(self.flags.force_color, self.flags.no_color, self.tty),
            indent: OutputIndent::from(self.flags.out_indent),
            ..Default::default()
        }
    }

    /// Renders `data`; `retcode` colours a failed return as Salt does.
    pub fn print(&mut self, out: Outputter, data: &Value, retcode: i64) {
        let text = salt_output::render(out, data, &OutputOptions { retcode, ..self.options() });
        self.write(&text);
    }

    pub fn write(&mut self, text: &str) {
        match &self.flags.out_file {
            Some(path) => {
                if self.file.is_none() {
                    let append = self.flags.out_file_append;
                    match std::fs::OpenOptions::new().create(true).write(true).append(append).truncate(!append).open(path) {
                        Ok(f) => self.file = Some(f),
                        Err(e) => {
                            eprintln!("ERROR: cannot write to {}: {e}", path.display());
                            return;
                        }
                    }
                }
                if let Some(f) = &mut self.file {
                    if let Err(e) = f.write_all(text.as_bytes()) {
                        eprintln!("ERROR: cannot write to {}: {e}", path.display());
                    }
                }
            }
            None => {
                let mut stdout = std::io::stdout().lock();
                let _ = stdout.write_all(text.as_bytes());
                let _ = stdout.flush();
            }
        }
    }
}

pub fn is_stdout_tty() -> bool {
    // SAFETY: isatty has no preconditions.
    unsafe { libc::isatty(1) == 1 }
}
