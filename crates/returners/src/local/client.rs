//! Where `local` prints: the process's standard output (Salt's `print`), or any writer a test
//! hands it.

use std::io::{self, Write};

use crate::recent::Recent;

pub struct Printer {
    out: Box<dyn Write + Send>,
    /// The lines printed lately: a batch the spool hands again is not printed twice.
    recent: Recent,
}

impl Printer {
    pub fn new(out: Box<dyn Write + Send>) -> Printer {
        Printer { out, recent: Recent::default() }
    }

    /// Prints the lines not printed lately, in one write, and flushes. Returns how many.
    pub fn print(&mut self, lines: &[(u128, String)]) -> io::Result<usize> {
        let fresh = self.recent.fresh(lines);
        if fresh.is_empty() {
            return Ok(0);
        }
        let text: String = fresh.iter().map(|(_, line)| line.as_str()).collect();
        self.out.write_all(text.as_bytes())?;
        self.out.flush()?;
        for (print, _) in &fresh {
            self.recent.insert(*print);
        }
        Ok(fresh.len())
    }
}
