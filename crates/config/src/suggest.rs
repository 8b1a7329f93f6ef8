//! "Did you mean ...?" for misspelt option names.

/// The known name closest to `unknown`, if it is a plausible typo: edit distance (with
/// adjacent transpositions counting as one edit) at most 2, or at most 1 for names of four
/// characters or fewer, where two edits would make almost anything match. Ties go to the
/// first name in `known`.
///
/// The lengths are compared first: they differ by at least the distance, so a long key (a
/// config file can hold a 60 KB one) costs a length check per known name, not a full table.
pub fn closest<'a>(unknown: &str, known: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let len = unknown.chars().count();
    let limit = if len <= 4 { 1 } else { 2 };
    let mut best: Option<(usize, &str)> = None;
    for candidate in known {
        if candidate.chars().count().abs_diff(len) > limit {
            continue;
        }
        let d = distance(unknown, candidate);
        if d <= limit && best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, candidate));
        }
    }
    best.map(|(_, name)| name)
}

/// Optimal string alignment distance (Levenshtein plus adjacent transposition).
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[i - 1][j] + 1).min(d[i][j - 1] + 1).min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = v;
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances() {
        assert_eq!(distance("auto_acept", "auto_accept"), 1);
        assert_eq!(distance("ret_prot", "ret_port"), 1);
        assert_eq!(distance("abc", "abc"), 0);
        assert_eq!(distance("", "abc"), 3);
        assert_eq!(distance("kitten", "sitting"), 3);
    }

    #[test]
    fn closest_respects_limits() {
        let known = ["auto_accept", "autosign_file", "id", "user", "timeout"];
        assert_eq!(closest("auto_acept", known), Some("auto_accept"));
        assert_eq!(closest("timeuot", known), Some("timeout"));
        assert_eq!(closest("mysql", known), None);
        // Short names allow one edit only.
        assert_eq!(closest("usr", known), Some("user"));
        assert_eq!(closest("ab", known), None);
    }

    /// Found by salt-fuzz (config target): a 60 KB key in a config file took seconds, one
    /// full edit-distance table per known option. Now it is a length check per option.
    #[test]
    fn long_names_are_not_compared_cell_by_cell() {
        let long = "x".repeat(100_000);
        let known: Vec<String> = (0..1000).map(|i| format!("option_{i}")).collect();
        assert_eq!(closest(&long, known.iter().map(String::as_str)), None);
        let near = format!("{}y", "x".repeat(9));
        assert_eq!(closest(&near, ["xxxxxxxxxx"]), Some("xxxxxxxxxx"));
    }
}
