//! Salt's terminal colours (`salt/utils/color.py::get_colors`).
//!
//! Salt builds each colour with `TextFormat`, which always prepends a reset
//! code, so green is `ESC[0;32m` and the end marker is `ESC[0;0m`. With colour
//! off every entry is the empty string, which is why the outputters can
//! always interleave them.

/// The palette the outputters use; all empty when colour is off.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Colors {
    pub red: &'static str,
    pub light_red: &'static str,
    pub green: &'static str,
    pub light_green: &'static str,
    pub light_yellow: &'static str,
    pub blue: &'static str,
    pub light_blue: &'static str,
    pub magenta: &'static str,
    pub light_magenta: &'static str,
    pub cyan: &'static str,
    pub endc: &'static str,
}

impl Colors {
    pub fn new(enabled: bool) -> Self {
        if enabled {
            Colors {
                red: "\x1b[0;31m",
                light_red: "\x1b[0;1;31m",
                green: "\x1b[0;32m",
                light_green: "\x1b[0;1;32m",
                light_yellow: "\x1b[0;1;33m",
                blue: "\x1b[0;34m",
                light_blue: "\x1b[0;1;34m",
                magenta: "\x1b[0;35m",
                light_magenta: "\x1b[0;1;35m",
                cyan: "\x1b[0;36m",
                endc: "\x1b[0;0m",
            }
        } else {
            Colors {
                red: "",
                light_red: "",
                green: "",
                light_green: "",
                light_yellow: "",
                blue: "",
                light_blue: "",
                magenta: "",
                light_magenta: "",
                cyan: "",
                endc: "",
            }
        }
    }
}

/// Replace ESC so returned text cannot drive the terminal
/// (`salt.output.strip_esc_sequence`).
pub(crate) fn strip_esc_sequence(s: &str) -> String {
    s.replace('\x1b', "?")
}
