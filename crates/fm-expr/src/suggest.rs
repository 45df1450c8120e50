//! "Did you mean" suggestions for misspelled names.

/// The candidate closest to `name` by edit distance, if close enough to be a
/// plausible typo (distance <= 2, and less than the name's length).
pub(crate) fn did_you_mean<'c>(
    name: &str,
    candidates: impl IntoIterator<Item = &'c str>,
) -> Option<&'c str> {
    candidates
        .into_iter()
        .map(|c| (levenshtein(name, c), c))
        .filter(|&(d, c)| d <= 2 && d < name.chars().count().max(c.chars().count()))
        .min_by_key(|&(d, _)| d)
        .map(|(_, c)| c)
}

/// " (did you mean 'x'?)" or "".
pub(crate) fn hint<'c>(name: &str, candidates: impl IntoIterator<Item = &'c str>) -> String {
    did_you_mean(name, candidates)
        .map(|c| format!(" (did you mean '{c}'?)"))
        .unwrap_or_default()
}

fn levenshtein(a: &str, b: &str) -> usize {
    // Names are short; bail out cheaply on long inputs instead of allocating.
    if a.len() > 64 || b.len() > 64 {
        return usize::MAX;
    }
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        assert_eq!(
            did_you_mean("outputs", ["output", "status"]),
            Some("output")
        );
        assert_eq!(did_you_mean("tojsn", ["tojson", "join"]), Some("tojson"));
        assert_eq!(did_you_mean("zzzzzz", ["output"]), None);
    }
}
