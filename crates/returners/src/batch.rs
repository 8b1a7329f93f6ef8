//! Writing a batch: each record prepared on its own (a bad one is rejected alone, by its place
//! in the batch), rows split into statements of a bounded size, and when one bad row makes the
//! store refuse a whole statement, the bad row found without losing the good ones.

use std::future::Future;

use crate::{Rejection, Result, ReturnerError};

/// Splits rows into runs of at most `max_bytes` by `size` (at least one row each, so a row
/// bigger than `max_bytes` goes alone).
pub(crate) fn by_size<T>(rows: &[T], max_bytes: usize, size: impl Fn(&T) -> usize) -> Vec<&[T]> {
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, row) in rows.iter().enumerate() {
        let n = size(row);
        if i > start && bytes + n > max_bytes {
            out.push(&rows[start..i]);
            start = i;
            bytes = 0;
        }
        bytes += n;
    }
    if start < rows.len() {
        out.push(&rows[start..]);
    }
    out
}

/// A row bound for the store, with the place of its record in the batch (for a [`Rejection`]).
#[derive(Debug, Clone)]
pub(crate) struct Indexed<T> {
    pub index: usize,
    pub row: T,
}

/// Turns each record of a batch into a row: a record `prepare` refuses is rejected alone, one
/// it skips (`Ok(None)`) is left out.
pub(crate) fn prepare_all<R, T>(
    records: &[R],
    mut prepare: impl FnMut(&R) -> std::result::Result<Option<T>, String>,
) -> (Vec<Indexed<T>>, Vec<Rejection>) {
    let (mut rows, mut rejected) = (Vec::with_capacity(records.len()), Vec::new());
    for (index, record) in records.iter().enumerate() {
        match prepare(record) {
            Ok(Some(row)) => rows.push(Indexed { index, row }),
            Ok(None) => {}
            Err(reason) => rejected.push(Rejection { index, reason }),
        }
    }
    (rows, rejected)
}

/// Stores `rows` with one call of `insert`. When that is `Rejected` (one bad row sank the
/// batch), stores the rows one by one to find it: the good ones are kept, and each bad one
/// goes to `rejected` with its reason, named by `describe`. Any other error stops at once.
pub(crate) async fn insert_or_sift<'a, T, Fut>(
    rows: &'a [Indexed<T>],
    insert: impl Fn(&'a [Indexed<T>]) -> Fut,
    describe: impl Fn(&T) -> String,
    rejected: &mut Vec<Rejection>,
) -> Result<()>
where
    Fut: Future<Output = Result<()>>,
{
    if rows.is_empty() {
        return Ok(());
    }
    match insert(rows).await {
        Ok(()) => Ok(()),
        Err(ReturnerError::Rejected(_)) if rows.len() > 1 => {
            for row in rows {
                match insert(std::slice::from_ref(row)).await {
                    Ok(()) => {}
                    Err(ReturnerError::Rejected(why)) => {
                        rejected.push(Rejection { index: row.index, reason: format!("{}: {why}", describe(&row.row)) })
                    }
                    Err(e) => return Err(e),
                }
            }
            Ok(())
        }
        Err(ReturnerError::Rejected(why)) => {
            rejected.push(Rejection { index: rows[0].index, reason: format!("{}: {why}", describe(&rows[0].row)) });
            Ok(())
        }
        Err(e) => Err(e),
    }
}
