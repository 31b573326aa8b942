//! Closest-name suggestions for unknown instance, accelerator, provider, model and column names.
//!
//! Names are compared after folding case and dropping spaces and punctuation, so `h100sxm`,
//! `H100 SXM` and `h100-sxm` are the same name; the distance is plain Levenshtein over chars.

/// Case- and punctuation-insensitive form used for comparisons.
pub fn fold(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// Levenshtein distance (insertions, deletions, substitutions), over chars.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// The candidate closest to `query`, when one is close enough to be a plausible typo or
/// abbreviation: a candidate containing the query (or contained in it) wins, otherwise the
/// smallest edit distance within about a third of the name's length.
pub fn closest_name<'a>(
    query: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let q = fold(query);
    if q.is_empty() {
        return None;
    }
    let mut best: Option<(usize, usize, &'a str)> = None;
    for cand in candidates {
        let c = fold(cand);
        if c.is_empty() {
            continue;
        }
        // Containment ranks before any edit distance; among those, the closest length wins.
        let score = if c.contains(&q) || q.contains(&c) {
            (0, c.len().abs_diff(q.len()))
        } else {
            let d = edit_distance(&q, &c);
            if d > (q.len().max(c.len()) / 3).max(2) {
                continue;
            }
            (1, d)
        };
        if best.is_none_or(|(k, d, _)| (score.0, score.1) < (k, d)) {
            best = Some((score.0, score.1, cand));
        }
    }
    best.map(|(_, _, c)| c)
}

/// The text for a fix: "Did you mean `x`? Known: a, b, c" (the list capped so it stays readable).
pub fn suggestion<'a>(
    query: &str,
    candidates: impl IntoIterator<Item = &'a str> + Clone,
) -> String {
    let mut all: Vec<&str> = candidates.clone().into_iter().collect();
    all.sort_unstable_by_key(|s| s.to_ascii_lowercase());
    all.dedup();
    const SHOWN: usize = 40;
    let mut list = all
        .iter()
        .take(SHOWN)
        .copied()
        .collect::<Vec<_>>()
        .join(", ");
    if all.len() > SHOWN {
        list.push_str(&format!(" and {} more", all.len() - SHOWN));
    }
    match closest_name(query, candidates) {
        Some(c) => format!("Did you mean `{c}`? Known: {list}"),
        None => format!("Known: {list}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distance_by_hand() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("abc", "abc"), 0);
    }

    #[test]
    fn closest_handles_typos_case_and_punctuation() {
        let names = [
            "p5.48xlarge",
            "p4d.24xlarge",
            "g5.xlarge",
            "H100 SXM",
            "H100 PCIe",
        ];
        assert_eq!(closest_name("p5.48xlarg", names), Some("p5.48xlarge"));
        assert_eq!(closest_name("P5-48XLARGE", names), Some("p5.48xlarge"));
        assert_eq!(closest_name("h100sxm", names), Some("H100 SXM"));
        assert_eq!(closest_name("pcie", names), Some("H100 PCIe"));
        assert_eq!(closest_name("completely-different", names), None);
        assert!(suggestion("g5.xlarg", names).starts_with("Did you mean `g5.xlarge`?"));
    }
}
