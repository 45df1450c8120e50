//! The happens-before graph of a pipeline: two nodes per stage (start, end) so that trycatch
//! scopes can be expressed exactly: try stages start after their trycatch *starts*, and the
//! trycatch *ends* after its whole scope. Used for cycle detection, ancestry checks of template
//! references (reading a stage that is not guaranteed to have finished is a race) and the
//! execution order.

use crate::model::pipeline::{Control, Stage};

pub struct Graph {
    n: usize,
    /// Successors per node; node `2*i` = start of stage i, `2*i+1` = end of stage i.
    succ: Vec<Vec<usize>>,
}

pub fn start(i: usize) -> usize {
    2 * i
}
pub fn end(i: usize) -> usize {
    2 * i + 1
}

impl Graph {
    pub fn build(stages: &[Stage]) -> Graph {
        let n = stages.len() * 2;
        let mut succ = vec![Vec::new(); n];
        for (i, s) in stages.iter().enumerate() {
            succ[start(i)].push(end(i));
            for &d in &s.depends_on {
                succ[end(d)].push(start(i));
            }
            match &s.control {
                Control::Router { targets } => {
                    for &t in targets {
                        succ[end(i)].push(start(t));
                    }
                }
                Control::TryCatch {
                    try_stages,
                    catch_stages,
                    finally_stages,
                } => {
                    for &t in try_stages {
                        succ[start(i)].push(start(t));
                        for &c in catch_stages.iter().chain(finally_stages) {
                            succ[end(t)].push(start(c));
                        }
                    }
                    for &c in catch_stages {
                        succ[start(i)].push(start(c));
                        for &f in finally_stages {
                            succ[end(c)].push(start(f));
                        }
                    }
                    for &f in finally_stages {
                        succ[start(i)].push(start(f));
                    }
                    for &m in try_stages.iter().chain(catch_stages).chain(finally_stages) {
                        succ[end(m)].push(end(i));
                    }
                }
                Control::None => {}
            }
        }
        Graph { n, succ }
    }

    /// A topological order of nodes, or a cycle (as node list) if there is one.
    pub fn topo_order(&self) -> Result<Vec<usize>, Vec<usize>> {
        // Iterative DFS with colours; deterministic (lowest index first).
        let mut colour = vec![0u8; self.n]; // 0 white, 1 grey, 2 black
        let mut order = Vec::with_capacity(self.n);
        let mut parent = vec![usize::MAX; self.n];
        for root in 0..self.n {
            if colour[root] != 0 {
                continue;
            }
            let mut stack = vec![(root, 0usize)];
            colour[root] = 1;
            while let Some(&mut (node, ref mut next)) = stack.last_mut() {
                if let Some(&child) = self.succ[node].get(*next) {
                    *next += 1;
                    match colour[child] {
                        0 => {
                            colour[child] = 1;
                            parent[child] = node;
                            stack.push((child, 0));
                        }
                        1 => {
                            let mut cycle = vec![child];
                            let mut cur = node;
                            while cur != child && cur != usize::MAX {
                                cycle.push(cur);
                                cur = parent[cur];
                            }
                            cycle.reverse();
                            return Err(cycle);
                        }
                        _ => {}
                    }
                } else {
                    colour[node] = 2;
                    order.push(node);
                    stack.pop();
                }
            }
        }
        order.reverse();
        Ok(order)
    }

    /// For each stage, the set of stages whose end happens before its start, as bitsets.
    pub fn ancestors(&self, topo: &[usize], stages: usize) -> Vec<Vec<u64>> {
        let words = stages.div_ceil(64);
        let mut reach: Vec<Vec<u64>> = vec![vec![0; words]; self.n];
        for &node in topo {
            if node % 2 == 1 {
                let stage = node / 2;
                reach[node][stage / 64] |= 1 << (stage % 64);
            }
            let here = std::mem::take(&mut reach[node]);
            for &s in &self.succ[node] {
                for (w, bits) in reach[s].iter_mut().zip(&here) {
                    *w |= bits;
                }
            }
            reach[node] = here;
        }
        (0..stages)
            .map(|i| std::mem::take(&mut reach[start(i)]))
            .collect()
    }
}

pub fn has_bit(set: &[u64], i: usize) -> bool {
    set.get(i / 64).is_some_and(|w| w & (1 << (i % 64)) != 0)
}
