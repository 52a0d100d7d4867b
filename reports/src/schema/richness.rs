//! Body of `ratio richness --json` records (owned by the richness work; filled in there).
