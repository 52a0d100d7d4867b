//! Body of `ratio eval --json` records (owned by the data/eval work; filled in there).
