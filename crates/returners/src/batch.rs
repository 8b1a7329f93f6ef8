//! Writing a batch of rows to an SQL store: split into statements of a bounded size, and when
//! one bad row makes the store refuse the whole batch, find it without losing the good rows.

use std::future::Future;

use crate::{Result, ReturnerError};

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

/// Stores `rows` with one call of `insert`. When that is `Rejected` (one bad row sank the
/// batch), stores the rows one by one to find it: the good ones are kept, and each bad one's
/// reason goes to `rejected`, named by `describe`. Any other error stops at once.
pub(crate) async fn insert_or_sift<'a, T, Fut>(
    rows: &'a [T],
    insert: impl Fn(&'a [T]) -> Fut,
    describe: impl Fn(&T) -> String,
    rejected: &mut Vec<String>,
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
                    Err(ReturnerError::Rejected(why)) => rejected.push(format!("{}: {why}", describe(row))),
                    Err(e) => return Err(e),
                }
            }
            Ok(())
        }
        Err(e) => Err(e),
    }
}
