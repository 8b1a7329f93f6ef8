//! The SQL family: what the four SQL stores (`mysql`, `pgjsonb`, `postgres`, `sqlite3`) share,
//! with what differs per database written as a dialect. No store imports another; they all
//! import from here.
//!
//! - `get_jids` is the store-neutral walk in [`crate::paging`];
//! - [`listing`]: the chunk query over Salt's `jids(jid, load)` table, with a [`listing::Dialect`]
//!   for how a database quotes names and reads a JSON field (MySQL, SQLite);
//! - [`pg`]: the PostgreSQL stores' shared implementation (`pgjsonb` and `postgres` are two of
//!   Salt's modules on one database, differing in their column types);
//! - [`rejects_record`]: which server errors are about the record rather than the server.

use serde_json::{Map, Value};

use crate::json::{dumps, dumps_map};
use crate::{Event, Load, Result, ReturnerError};

#[cfg(any(feature = "mysql", feature = "sqlite3"))]
pub(crate) mod listing;
#[cfg(feature = "postgres")]
pub(crate) mod pg;

/// Whether a server's SQLSTATE says the record is at fault (class 22, data exception; class
/// 23, constraint violation): the record is rejected for good, where any other failure is the
/// server's and worth retrying.
#[cfg(any(feature = "mysql", feature = "postgres"))]
pub(crate) fn rejects_record(sqlstate: &str) -> bool {
    sqlstate.starts_with("22") || sqlstate.starts_with("23")
}

/// A stored load's JSON text as a load (`jids.load`); a non-object reads as an empty load.
pub(crate) fn load_from_text(store: &str, jid: &str, text: Option<String>) -> Result<Option<Load>> {
    match text {
        None => Ok(None),
        Some(text) => match serde_json::from_str(&text) {
            Ok(Value::Object(load)) => Ok(Some(load)),
            Ok(_) => Ok(Some(Map::new())),
            Err(e) => Err(ReturnerError::Unavailable(format!("{store}: stored load of {jid} is unreadable: {e}"))),
        },
    }
}

/// `{minion id: wrap(stored return)}` from (id, JSON text) rows: the first row of each minion
/// kept, ids in byte order (a column's collation may sort otherwise). A NULL text (old rows
/// of Salt's `postgres` schema) reads as null.
pub(crate) fn by_minion(
    store: &str,
    rows: impl IntoIterator<Item = (String, Option<String>)>,
    wrap: fn(Value) -> Value,
) -> Result<Map<String, Value>> {
    let mut pairs: Vec<(String, Value)> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (id, text) in rows {
        if !seen.insert(id.clone()) {
            continue;
        }
        let value = match text {
            None => Value::Null,
            Some(text) => serde_json::from_str(&text)
                .map_err(|e| ReturnerError::Unavailable(format!("{store}: stored return of {id} is unreadable: {e}")))?,
        };
        pairs.push((id, wrap(value)));
    }
    pairs.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(pairs.into_iter().collect())
}

/// Salt's SQL schemas: `salt_returns.fun` is `varchar(50)`, `salt_events.tag` `varchar(255)`.
const FUN_MAX_CHARS: usize = 50;
const TAG_MAX_CHARS: usize = 255;

/// A return's function, checked against `salt_returns.fun` (a longer one is refused alone,
/// rather than truncated or failing the whole batch).
pub(crate) fn fun_column<'a>(fun: &'a str, id: &str) -> std::result::Result<&'a str, String> {
    if fun.chars().count() > FUN_MAX_CHARS {
        return Err(format!("the function name of {id}'s return is longer than {FUN_MAX_CHARS} characters (salt_returns.fun)"));
    }
    Ok(fun)
}

/// An event as Salt's `salt_events` row: its tag (checked against the column) and its data as
/// Salt's JSON text, settings redacted.
pub(crate) fn event_row(ev: &Event) -> std::result::Result<(String, String), String> {
    if ev.tag.chars().count() > TAG_MAX_CHARS {
        return Err(format!("event tag longer than {TAG_MAX_CHARS} characters: {}...", ev.tag.chars().take(64).collect::<String>()));
    }
    let data = match &ev.data {
        Value::Object(m) => dumps_map(m),
        other => dumps(other),
    };
    Ok((ev.tag.clone(), data))
}
