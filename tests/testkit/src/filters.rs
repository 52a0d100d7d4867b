//! Redactions applied to command output before it is compared with expected text: what differs between runs
//! (temp folders, durations, rates) becomes a fixed placeholder, everything else must match exactly.

use regex::Regex;

#[derive(Debug, Clone, Default)]
pub struct Filters {
    rules: Vec<(Regex, String)>,
}

impl Filters {
    /// Replace every occurrence of the literal `text` (e.g. a temp folder's path) by `placeholder`.
    pub fn literal(mut self, text: &str, placeholder: &str) -> Self {
        let re = Regex::new(&regex::escape(text)).expect("an escaped literal is a valid regex");
        self.rules.push((re, placeholder.to_string()));
        self
    }

    /// Replace matches of `pattern` by `placeholder` (`$1`-style groups allowed).
    pub fn pattern(mut self, pattern: &str, placeholder: &str) -> Self {
        let re = Regex::new(pattern).unwrap_or_else(|e| panic!("bad filter pattern {pattern:?}: {e}"));
        self.rules.push((re, placeholder.to_string()));
        self
    }

    /// Durations and rates: `12.3s`, `4 ms`, `850 img/s`, `[00:01<00:02]` progress timers.
    pub fn timings(self) -> Self {
        self.pattern(r"\[\d+:\d+(:\d+)?<\d+:\d+(:\d+)?\]", "[TIME]")
            .pattern(r"\b\d+(\.\d+)?\s?(ms|µs|us|ns|s)\b", "[DURATION]")
            .pattern(r"\b\d+(\.\d+)?\s?(img|images|samples|steps)/s\b", "[RATE]")
    }

    pub fn apply(&self, text: &str) -> String {
        self.rules.iter().fold(text.to_string(), |t, (re, rep)| {
            re.replace_all(&t, rep.as_str()).into_owned()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_paths_and_timings_only() {
        let f = Filters::default().literal("/tmp/x.1", "[TMP]").timings();
        assert_eq!(
            f.apply("wrote /tmp/x.1/m.onnx in 1.25s (850 img/s), 3 steps, top-1 0.9906"),
            "wrote [TMP]/m.onnx in [DURATION] ([RATE]), 3 steps, top-1 0.9906"
        );
        assert_eq!(f.apply("epoch 1/2 [00:03<00:10]"), "epoch 1/2 [TIME]");
    }
}
