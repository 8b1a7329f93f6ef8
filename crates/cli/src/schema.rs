//! `salt-returner-schema`: print or create the tables a SQL returner writes to (Salt's
//! documented schema), using the returner's options from the master's (or minion's) config.
//!
//! ```text
//! salt-returner-schema -c /etc/salt mysql            # print the SQL
//! salt-returner-schema -c /etc/salt mysql --create   # create the missing tables
//! salt-returner-schema -c /etc/salt --minion pgjsonb --create
//! ```

use std::path::PathBuf;

use clap::Parser;
use salt_config::Role;

#[derive(Parser, Debug)]
#[command(name = "salt-returner-schema", disable_version_flag = true, about = "Print or create the tables of a SQL returner.")]
struct Flags {
    /// Configuration directory whose returner options (`mysql.host`, ...) are used.
    #[arg(short = 'c', long = "config-dir", default_value = "/etc/salt")]
    config_dir: PathBuf,
    /// Read the minion's config instead of the master's.
    #[arg(long = "minion")]
    minion: bool,
    /// Connect and create the tables that are missing, instead of printing the SQL.
    #[arg(long = "create")]
    create: bool,
    /// The returner: mysql, pgjsonb, postgres, sqlite3.
    returner: String,
}

pub fn main(argv: Vec<String>) -> i32 {
    let flags: Flags = match crate::common::parse(argv) {
        Ok(f) => f,
        Err(code) => return code,
    };
    let role = if flags.minion { Role::Minion } else { Role::Master };
    let config = match crate::common::load_config("salt-returner-schema", role, &flags.config_dir) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let runtime = match crate::common::runtime("salt-returner-schema", false) {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let entry = match salt_returners::entry(&flags.returner) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("salt-returner-schema: {e}");
            return 2;
        }
    };
    let Some(schema) = entry.schema else {
        eprintln!("salt-returner-schema: returner '{}' has no SQL schema", flags.returner);
        return 2;
    };
    if !flags.create {
        println!("{}", (schema.ddl)().trim_end());
        return 0;
    }
    runtime.block_on(async {
        let store = match salt_returners::open_job_cache(&flags.returner, config.as_map()).await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("salt-returner-schema: {e}");
                return 2;
            }
        };
        match store.create_schema().await {
            Ok(tables) if tables.is_empty() => {
                println!("All tables of returner '{}' exist already.", flags.returner);
                0
            }
            Ok(tables) => {
                println!("The tables of returner '{}' are in place (created where missing): {}", flags.returner, tables.join(", "));
                0
            }
            Err(e) => {
                eprintln!("salt-returner-schema: {e}");
                1
            }
        }
    })
}
