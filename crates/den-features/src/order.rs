//! The order Features are installed in, as the specification's
//! dependency algorithm gives it: rounds of Features whose hard
//! (`dependsOn`) and soft (`installsAfter`, when that Feature is installed
//! too) dependencies are in; in a round only those with the highest
//! `overrideFeatureInstallOrder` priority go, sorted by identity; no
//! candidate while some remain is a cycle.

/// What the algorithm needs of each Feature.
#[derive(Debug, Clone)]
pub struct Node {
    /// Shown in errors (the id as written).
    pub name: String,
    /// Sort key within a round (resource, tag, options, digest).
    pub key: String,
    pub hard: Vec<usize>,
    pub soft: Vec<usize>,
    pub priority: usize,
}

/// Indexes of `nodes` in install order, or the cycle that prevents one
/// (`a → b → a`).
pub fn install_order(nodes: &[Node]) -> Result<Vec<usize>, String> {
    let mut done = vec![false; nodes.len()];
    let mut order = Vec::with_capacity(nodes.len());
    while order.len() < nodes.len() {
        let candidates: Vec<usize> = (0..nodes.len())
            .filter(|&i| !done[i])
            .filter(|&i| nodes[i].hard.iter().chain(&nodes[i].soft).all(|&d| done[d]))
            .collect();
        if candidates.is_empty() {
            return Err(cycle(nodes, &done));
        }
        let top = candidates.iter().map(|&i| nodes[i].priority).max().unwrap_or(0);
        let mut round: Vec<usize> = candidates.into_iter().filter(|&i| nodes[i].priority == top).collect();
        round.sort_by(|&a, &b| nodes[a].key.cmp(&nodes[b].key));
        for i in round {
            done[i] = true;
            order.push(i);
        }
    }
    Ok(order)
}

/// A cycle among the Features not installed, for the error.
fn cycle(nodes: &[Node], done: &[bool]) -> String {
    let start = (0..nodes.len()).find(|&i| !done[i]).unwrap_or(0);
    let mut path = vec![start];
    let mut seen = vec![None; nodes.len()];
    seen[start] = Some(0);
    let mut at = start;
    // Every remaining node waits on a remaining node, so following the
    // first such edge must come back to a node already on the path.
    for _ in 0..=nodes.len() {
        let Some(&next) = nodes[at].hard.iter().chain(&nodes[at].soft).find(|&&d| !done[d]) else { break };
        if let Some(pos) = seen[next] {
            let mut names: Vec<&str> = path[pos..].iter().map(|&i| nodes[i].name.as_str()).collect();
            names.push(&nodes[next].name);
            return format!("the Features depend on each other in a circle: {}", names.join(" → "));
        }
        seen[next] = Some(path.len());
        path.push(next);
        at = next;
    }
    "the Features depend on each other in a circle".into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, hard: &[usize], soft: &[usize], priority: usize) -> Node {
        Node { name: name.into(), key: name.into(), hard: hard.to_vec(), soft: soft.to_vec(), priority }
    }

    fn names(nodes: &[Node]) -> Vec<String> {
        install_order(nodes).unwrap().into_iter().map(|i| nodes[i].name.clone()).collect()
    }

    #[test]
    fn rounds_sort_by_identity_and_dependencies_go_first() {
        let nodes = vec![node("c", &[2], &[], 0), node("a", &[], &[], 0), node("b", &[], &[], 0)];
        // Round 1: a, b (sorted); round 2: c.
        assert_eq!(names(&nodes), ["a", "b", "c"]);
        let nodes = vec![node("a", &[], &[1], 0), node("b", &[], &[], 0)];
        assert_eq!(names(&nodes), ["b", "a"]);
    }

    #[test]
    fn priority_holds_back_the_rest_of_a_round() {
        // z first (highest priority), then y, then the rest by identity.
        let nodes =
            vec![node("a", &[], &[], 0), node("y", &[], &[], 1), node("z", &[], &[], 2), node("b", &[], &[], 0)];
        assert_eq!(names(&nodes), ["z", "y", "a", "b"]);
        // A priority cannot jump a hard dependency.
        let nodes = vec![node("dep", &[], &[], 0), node("top", &[0], &[], 5), node("other", &[], &[], 0)];
        assert_eq!(names(&nodes), ["dep", "other", "top"]);
    }

    #[test]
    fn a_cycle_names_its_chain() {
        let nodes =
            vec![node("free", &[], &[], 0), node("a", &[2], &[], 0), node("b", &[3], &[], 0), node("c", &[], &[1], 0)];
        let e = install_order(&nodes).unwrap_err();
        assert!(e.contains("a → b → c → a"), "{e}");
    }
}
