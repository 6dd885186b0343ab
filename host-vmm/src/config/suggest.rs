//! "Did you mean ...?" for misspelt keys.

/// Edit distance (insertions, deletions, substitutions, adjacent swaps).
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // d[i][j] = distance between a[..i] and b[..j]
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
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

/// The known key nearest to `unknown`, if it is near enough to be a typo.
pub fn nearest<'a>(unknown: &str, known: &[&'a str]) -> Option<&'a str> {
    let limit = (unknown.chars().count() / 3).clamp(1, 4);
    known
        .iter()
        .map(|k| (distance(unknown, k), *k))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::fields::KNOWN_KEYS;

    #[test]
    fn test_nearest_swapped_letters_suggests_key() {
        assert_eq!(
            nearest("default_memroy", KNOWN_KEYS),
            Some("default_memory")
        );
    }

    #[test]
    fn test_nearest_missing_letter_suggests_key() {
        assert_eq!(nearest("defaul_vcpus", KNOWN_KEYS), Some("default_vcpus"));
        assert_eq!(nearest("memory_slot", KNOWN_KEYS), Some("memory_slots"));
    }

    #[test]
    fn test_nearest_unrelated_key_suggests_nothing() {
        assert_eq!(nearest("shared_fs", KNOWN_KEYS), None);
        assert_eq!(nearest("x", KNOWN_KEYS), None);
    }

    #[test]
    fn test_distance_basic() {
        assert_eq!(distance("", "abc"), 3);
        assert_eq!(distance("abc", "abc"), 0);
        assert_eq!(distance("ab", "ba"), 1);
        assert_eq!(distance("kitten", "sitting"), 3);
    }
}
