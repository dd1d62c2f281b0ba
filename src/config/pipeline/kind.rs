//! The kind of a `pipeline.toml` task (`command`, `python`, `sql`, `spark`): only the keys of
//! its kind, each checked, and the files it names found inside the project.

use std::path::{Path, PathBuf};

use toml::Spanned;

use super::{PythonTarget, RawTask, SparkApp, SqlSource, TaskKind};
use crate::config::rules::Rules;
use crate::config::{
    Checker, PathProblem, ServiceKind, Settings, SparkMode, display_path, memory_size,
    resolve_inside,
};
use crate::diagnostic::{ConfigError, Origin, did_you_mean};

/// Checks that only the keys of the task's kind are present and builds its `TaskKind`.
pub(super) fn task_kind(
    root: &Path,
    settings: &Settings,
    dir: &Path,
    id: &str,
    task: &Spanned<RawTask>,
    rules: Rules<'_>,
    check: &mut Checker<'_>,
) -> Option<TaskKind> {
    let t = task.get_ref();
    let Some(kind_key) = &t.kind else {
        check.error_help(
            task.span(),
            format!("task `{id}` has no `kind`"),
            "add kind = \"spark\" (or \"python\", \"command\", \"sql\"); tables without a kind belong to pipelines whose tasks come from an [airflow] DAG",
        );
        return None;
    };
    let kind = kind_key.get_ref().as_str();
    let present: [(&str, Option<std::ops::Range<usize>>); 12] = [
        ("jar", t.jar.as_ref().map(Spanned::span)),
        ("main_class", t.main_class.as_ref().map(Spanned::span)),
        ("conf", t.conf.as_ref().map(Spanned::span)),
        ("driver_memory", t.driver_memory.as_ref().map(Spanned::span)),
        ("spark_mode", t.spark_mode.as_ref().map(Spanned::span)),
        ("argv", t.argv.as_ref().map(Spanned::span)),
        ("script", t.script.as_ref().map(Spanned::span)),
        ("module", t.module.as_ref().map(Spanned::span)),
        ("args", t.args.as_ref().map(Spanned::span)),
        ("service", t.service.as_ref().map(Spanned::span)),
        ("sql", t.sql.as_ref().map(Spanned::span)),
        ("file", t.file.as_ref().map(Spanned::span)),
    ];
    let allowed: &[&str] = match kind {
        "command" => &["argv"],
        "python" => &["script", "module", "args"],
        "sql" => &["service", "sql", "file"],
        "spark" => &[
            "script",
            "jar",
            "main_class",
            "args",
            "conf",
            "driver_memory",
            "spark_mode",
        ],
        other => {
            let help = match did_you_mean(other, ["command", "python", "sql", "spark"]) {
                Some(b) => format!("did you mean `{b}`?"),
                None => "task kinds are `command`, `python`, `sql` and `spark`".to_string(),
            };
            check.error_help(
                kind_key.span(),
                format!("unknown task kind `{other}`"),
                help,
            );
            return None;
        }
    };
    let mut ok = true;
    for (key, span) in &present {
        if let Some(span) = span
            && !allowed.contains(key)
        {
            check.error_help(
                span.clone(),
                format!("`{key}` does not apply to a `{kind}` task"),
                format!("a `{kind}` task takes: {}", allowed.join(", ")),
            );
            ok = false;
        }
    }
    if !ok {
        return None;
    }
    let display = |p: &Path| display_path(root, p).display().to_string();
    match kind {
        "command" => match &t.argv {
            Some(argv) if !argv.get_ref().is_empty() && !argv.get_ref()[0].is_empty() => {
                Some(TaskKind::Command {
                    argv: argv.get_ref().clone(),
                })
            }
            Some(argv) => {
                check.error(
                    argv.span(),
                    format!("task `{id}`: `argv` must name a program"),
                );
                None
            }
            None => {
                check.error_help(
                    task.span(),
                    format!("task `{id}` of kind `command` has no `argv`"),
                    "add argv = [\"program\", \"arg\", ...]",
                );
                None
            }
        },
        "python" => {
            let args = t
                .args
                .as_ref()
                .map(|a| a.get_ref().clone())
                .unwrap_or_default();
            let target = match (&t.script, &t.module) {
                (Some(s), None) => {
                    PythonTarget::Script(project_file(root, dir, s, "script", check)?)
                }
                (None, Some(m)) => PythonTarget::Module(m.get_ref().clone()),
                (Some(_), Some(m)) => {
                    check.error(
                        m.span(),
                        format!("task `{id}` has both `script` and `module`; keep one"),
                    );
                    return None;
                }
                (None, None) => {
                    check.error_help(
                        task.span(),
                        format!("task `{id}` of kind `python` has neither `script` nor `module`"),
                        "add script = \"jobs/my_job.py\"",
                    );
                    return None;
                }
            };
            if !settings.python.exists() {
                check.error_help(
                    kind_key.span(),
                    format!("python task `{id}` needs the managed Python environment, but {} does not exist", settings.python.display()),
                    "run scripts/setup.sh, or set `python` in harness.toml",
                );
                return None;
            }
            Some(TaskKind::Python { target, args })
        }
        "spark" => {
            let args = t
                .args
                .as_ref()
                .map(|a| a.get_ref().clone())
                .unwrap_or_default();
            let app = match (&t.script, &t.jar, &t.main_class) {
                (Some(s), None, None) => {
                    SparkApp::Python(project_file(root, dir, s, "script", check)?)
                }
                (None, Some(j), Some(c)) => SparkApp::Jar {
                    jar: project_file(root, dir, j, "jar", check)?,
                    main_class: c.get_ref().clone(),
                },
                (None, Some(j), None) => {
                    check.error_help(
                        j.span(),
                        format!("task `{id}` runs a jar but has no `main_class`"),
                        "add main_class = \"com.example.Job\"",
                    );
                    return None;
                }
                (Some(_), Some(j), _) => {
                    check.error(
                        j.span(),
                        format!("task `{id}` has both `script` and `jar`; keep one"),
                    );
                    return None;
                }
                (Some(_), None, Some(c)) => {
                    check.error(
                        c.span(),
                        "`main_class` applies to a `jar`, not to a Python script",
                    );
                    return None;
                }
                (None, None, _) => {
                    check.error_help(
                        task.span(),
                        format!("task `{id}` of kind `spark` has neither `script` nor `jar`"),
                        "add script = \"jobs/my_job.py\"",
                    );
                    return None;
                }
            };
            let driver_memory = match &t.driver_memory {
                None => None,
                Some(m) => {
                    let v = m.get_ref();
                    if memory_size(v) {
                        Some(v.clone())
                    } else {
                        check.error_help(
                            m.span(),
                            format!("invalid driver memory `{v}`"),
                            "write it like \"1g\" or \"512m\"",
                        );
                        return None;
                    }
                }
            };
            let conf = t
                .conf
                .as_ref()
                .map(|c| c.get_ref().clone())
                .unwrap_or_default();
            let mode = match &t.spark_mode {
                None => None,
                Some(m) => match SparkMode::parse(m.get_ref()) {
                    Ok(SparkMode::Connect) if matches!(app, SparkApp::Jar { .. }) => {
                        check.error_help(
                            m.span(),
                            format!("task `{id}` runs a jar, which Spark Connect cannot run"),
                            "a jar task is always submitted: remove `spark_mode`",
                        );
                        return None;
                    }
                    Ok(mode) => Some(mode),
                    Err(msg) => {
                        check.error(m.span(), msg);
                        return None;
                    }
                },
            };
            Some(TaskKind::Spark {
                app,
                args,
                conf,
                driver_memory,
                mode,
            })
        }
        _ => {
            let service = match &t.service {
                None => ServiceKind::Postgres,
                Some(s) => match ServiceKind::parse(s.get_ref()) {
                    Ok(kind) if rules(kind).sql_tasks => kind,
                    Ok(other) => {
                        let on: Vec<&str> = ServiceKind::ALL
                            .iter()
                            .filter(|k| rules(**k).sql_tasks)
                            .map(|k| k.name())
                            .collect();
                        check.error(
                            s.span(),
                            format!("sql tasks run on {}, not on `{other}`", on.join(" or ")),
                        );
                        return None;
                    }
                    Err(msg) => {
                        check.error(s.span(), msg);
                        return None;
                    }
                },
            };
            let source = match (&t.sql, &t.file) {
                (Some(sql), None) => SqlSource {
                    text: sql.get_ref().clone(),
                    origin: inline_origin(check, &sql.span()),
                },
                (None, Some(f)) => match resolve_inside(root, dir, f.get_ref()) {
                    Ok(p) => match crate::diagnostic::read_text(&p) {
                        Ok(text) => SqlSource {
                            text,
                            origin: Origin::file(display_path(root, &p)),
                        },
                        Err((Some(line_col), message)) => {
                            check.push(ConfigError::at_origin(
                                Origin {
                                    file: display_path(root, &p),
                                    line_col: Some(line_col),
                                },
                                message,
                            ));
                            return None;
                        }
                        Err((None, message)) => {
                            check.error(f.span(), format!("`{}`: {message}", f.get_ref()));
                            return None;
                        }
                    },
                    Err(PathProblem::Missing(p)) => {
                        check.error(
                            f.span(),
                            format!(
                                "sql file `{}` not found (looked for {})",
                                f.get_ref(),
                                display(&p)
                            ),
                        );
                        return None;
                    }
                    Err(_) => {
                        check.error(
                            f.span(),
                            format!("sql file `{}` is outside the project", f.get_ref()),
                        );
                        return None;
                    }
                },
                (Some(_), Some(f)) => {
                    check.error(
                        f.span(),
                        format!("task `{id}` has both `sql` and `file`; keep one"),
                    );
                    return None;
                }
                (None, None) => {
                    check.error_help(
                        task.span(),
                        format!("task `{id}` of kind `sql` has neither `sql` nor `file`"),
                        "add file = \"sql/step.sql\" or sql = \"...\"",
                    );
                    return None;
                }
            };
            Some(TaskKind::Sql { service, source })
        }
    }
}

/// Where the first character of an inline string's content is: after its opening quote(s),
/// and on the next line for a multi-line string that starts with a newline (TOML drops it).
fn inline_origin(check: &Checker<'_>, span: &std::ops::Range<usize>) -> Origin {
    let token = &check.source.text[span.clone()];
    let mut origin = check.origin(span);
    let quotes = if token.starts_with("\"\"\"") || token.starts_with("\'\'\'") {
        3
    } else {
        1
    };
    let after = &token[quotes.min(token.len())..];
    if let Some((line, col)) = origin.line_col {
        origin.line_col = Some(
            if quotes == 3 && (after.starts_with('\n') || after.starts_with("\r\n")) {
                (line + 1, 1)
            } else {
                (line, col + quotes)
            },
        );
    }
    origin
}

/// A file of the project named in pipeline.toml, relative to the pipeline folder.
fn project_file(
    root: &Path,
    dir: &Path,
    value: &Spanned<String>,
    what: &str,
    check: &mut Checker<'_>,
) -> Option<PathBuf> {
    match resolve_inside(root, dir, value.get_ref()) {
        Ok(p) => Some(p),
        Err(PathProblem::Missing(p)) => {
            check.error(
                value.span(),
                format!(
                    "{what} `{}` not found (looked for {})",
                    value.get_ref(),
                    display_path(root, &p).display()
                ),
            );
            None
        }
        Err(_) => {
            check.error(
                value.span(),
                format!("{what} `{}` is outside the project", value.get_ref()),
            );
            None
        }
    }
}
