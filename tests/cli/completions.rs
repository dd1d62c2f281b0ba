//! Shell completions through a real bash: the script `harness completions bash` prints calls the
//! harness back, which answers with subcommands, flags and the project's own names.

use crate::support::Project;

/// What bash's completion function offers for `words`, the last one being completed.
fn complete(p: &Project, script: &str, words: &[&str]) -> Vec<String> {
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let program = format!(
        "{script}\ncd '{dir}'\nCOMP_WORDS=({words})\nCOMP_CWORD={cword}\nCOMP_TYPE=9\n\
         _clap_complete_harness harness '{cur}' '{prev}'\nprintf '%s\\n' \"${{COMPREPLY[@]}}\"\n",
        dir = p.path().display(),
        words = quoted.join(" "),
        cword = words.len() - 1,
        cur = words[words.len() - 1],
        prev = words[words.len().saturating_sub(2)],
    );
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg(program)
        .env_remove("HARNESS_COMPLETE")
        .output()
        .expect("bash");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

#[test]
fn bash_completes_subcommands_flags_and_the_projects_scenario_pipeline_and_sink_names() {
    let p = Project::new();
    p.file(
        "pipelines/daily/pipeline.toml",
        "[tasks.t]\nkind = \"command\"\nargv = [\"true\"]\n",
    );
    for (s, sink) in [
        ("alpha_one", "totals"),
        ("alpha_two", "keys"),
        ("beta", "totals"),
    ] {
        p.file(
            &format!("scenarios/{s}/scenario.toml"),
            &format!("pipeline = \"daily\"\n[[sink]]\nname = \"{sink}\"\nservice = \"hdfs\"\npath = \"/\"\n"),
        );
    }
    let out = p.run(&["completions", "bash"]);
    assert_eq!(out.code, 0, "{}", out.all());
    let script = out.stdout;
    assert!(script.contains("HARNESS_COMPLETE"), "{script}");

    assert_eq!(complete(&p, &script, &["harness", "di"]), ["diff"]);
    assert_eq!(
        complete(&p, &script, &["harness", "run", "alp"]),
        ["alpha_one", "alpha_two"]
    );
    assert_eq!(complete(&p, &script, &["harness", "review", "b"]), ["beta"]);
    assert_eq!(
        complete(&p, &script, &["harness", "run", "--pipeline", "d"]),
        ["daily"]
    );
    assert_eq!(
        complete(&p, &script, &["harness", "diff", "--sink", ""]),
        ["keys", "totals"]
    );
    assert!(
        complete(&p, &script, &["harness", "run", "--up"]).contains(&"--update".to_string()),
        "flags complete too"
    );

    for shell in ["zsh", "fish"] {
        let out = p.run(&["completions", shell]);
        assert_eq!(out.code, 0, "{}", out.all());
        assert!(
            out.stdout.contains("HARNESS_COMPLETE"),
            "{shell}: {}",
            out.stdout
        );
    }
    assert_eq!(p.run(&["completions", "tcsh"]).code, 2);
}
