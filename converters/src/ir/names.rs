//! Fresh names for values and nodes: every name a graph already uses (node names, values, initializers, inputs)
//! is taken, and each name handed out is taken too, so edits never collide with what is there.

use std::collections::HashSet;

use crate::proto::GraphProto;

#[derive(Debug, Clone, Default)]
pub struct NameSet {
    used: HashSet<String>,
}

impl NameSet {
    /// Every name `g` uses at its top level.
    pub fn of(g: &GraphProto) -> Self {
        let mut used = HashSet::new();
        for n in &g.node {
            used.extend(n.output.iter().filter(|o| !o.is_empty()).cloned());
            if let Some(name) = &n.name {
                used.insert(name.clone());
            }
        }
        used.extend(g.initializer.iter().filter_map(|t| t.name.clone()));
        used.extend(g.input.iter().filter_map(|v| v.name.clone()));
        used.extend(g.output.iter().filter_map(|v| v.name.clone()));
        NameSet { used }
    }

    pub fn contains(&self, name: &str) -> bool {
        self.used.contains(name)
    }

    /// Mark `name` as taken (a graph input the caller adds by hand, say).
    pub fn reserve(&mut self, name: &str) {
        self.used.insert(name.to_string());
    }

    /// `base` when it is free, else `base_1`, `base_2`, …; the result is taken from then on.
    pub fn fresh(&mut self, base: &str) -> String {
        if self.used.insert(base.to_string()) {
            return base.to_string();
        }
        let mut i = 1;
        loop {
            let cand = format!("{base}_{i}");
            if self.used.insert(cand.clone()) {
                return cand;
            }
            i += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::build::GraphBuilder;
    use crate::proto::tensor_proto::DataType;

    #[test]
    fn fresh_names_avoid_every_kind_of_existing_name() {
        let mut b = GraphBuilder::new("g");
        let x = b.input("x", DataType::Float, &[Some(1)]);
        b.init_f32("w", &[1], &[1.0]);
        let y = b.op("Relu", "y", &[&x], vec![]);
        b.output(&y, DataType::Float, &[Some(1)]);
        let g = b.finish();
        let mut names = NameSet::of(&g);
        assert_eq!(names.fresh("x"), "x_1");
        assert_eq!(names.fresh("w"), "w_1");
        assert_eq!(names.fresh("y"), "y_1");
        assert_eq!(names.fresh("y/Relu"), "y/Relu_1");
        assert_eq!(names.fresh("y"), "y_2");
        assert_eq!(names.fresh("new"), "new");
        assert!(names.contains("new"));
    }
}
