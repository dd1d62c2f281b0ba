//! The repository's example suite, run on a copy: it passes, is deterministic, and its gate
//! bites when an input changes.

use crate::support::{Project, require_servers};

#[test]
fn example_suite_passes_and_leaves_goldens_untouched() {
    require_servers();
    let p = Project::example();
    let before = p.goldens();
    assert!(!before.is_empty(), "the example suite has goldens");
    for _ in 0..2 {
        let r = p.run(&["run"]);
        assert_eq!(r.code, 0, "{}", r.all());
        assert_eq!(
            p.goldens(),
            before,
            "a passing run must not write goldens or pending files"
        );
    }
}

#[test]
fn changed_dictionary_row_fails_the_example_with_a_diff() {
    require_servers();
    let p = Project::example();
    let csv = p.read("fixtures/hydramatrices/monetization_types.csv");
    let changed = csv.replace("Subscription", "Subscription plus");
    assert_ne!(csv, changed, "fixture has the row this test edits");
    p.file("fixtures/hydramatrices/monetization_types.csv", &changed);
    let r = p.run(&["run", "monetization_to_redis"]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(
        r.stdout.contains("+  \"title\": \"Subscription plus\""),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("+id=2 | code=\"svod\" | title=\"Subscription plus\""),
        "{}",
        r.stdout
    );
    let r = p.run(&["run", "monetization_to_redis", "--update"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(
        p.read("scenarios/monetization_to_redis/golden/monetization_keys.snap")
            .contains("Subscription plus")
    );
}
