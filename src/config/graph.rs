//! The shape of a task graph: cycles are found while the pipeline is loaded, so the
//! executor only ever sees a DAG.

/// Finds one cycle in a graph given as adjacency lists (`edges[i]` = nodes `i` depends on).
/// Returns the nodes on the cycle in dependency order, or `None` when the graph is acyclic.
pub fn find_cycle(edges: &[Vec<usize>]) -> Option<Vec<usize>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        OnStack,
        Done,
    }
    let mut mark = vec![Mark::New; edges.len()];
    for start in 0..edges.len() {
        if mark[start] != Mark::New {
            continue;
        }
        // Iterative DFS: (node, index of the next edge to follow).
        let mut stack: Vec<(usize, usize)> = vec![(start, 0)];
        mark[start] = Mark::OnStack;
        while let Some(&mut (node, ref mut next)) = stack.last_mut() {
            if let Some(&dep) = edges[node].get(*next) {
                *next += 1;
                match mark.get(dep) {
                    Some(Mark::New) => {
                        mark[dep] = Mark::OnStack;
                        stack.push((dep, 0));
                    }
                    Some(Mark::OnStack) => {
                        let from = stack.iter().position(|&(n, _)| n == dep).unwrap_or(0);
                        return Some(stack[from..].iter().map(|&(n, _)| n).collect());
                    }
                    _ => {}
                }
            } else {
                mark[node] = Mark::Done;
                stack.pop();
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acyclic_graph_has_no_cycle() {
        assert_eq!(find_cycle(&[vec![], vec![0], vec![0, 1]]), None);
    }

    #[test]
    fn finds_the_nodes_of_a_cycle() {
        // 0 -> 1 -> 2 -> 0, with 3 hanging off it.
        let cycle = find_cycle(&[vec![1], vec![2], vec![0], vec![0]]).expect("cycle");
        assert_eq!(cycle, vec![0, 1, 2]);
    }

    #[test]
    fn finds_a_cycle_not_reachable_from_the_first_node() {
        let cycle = find_cycle(&[vec![], vec![2], vec![1]]).expect("cycle");
        assert_eq!(cycle, vec![1, 2]);
    }
}
