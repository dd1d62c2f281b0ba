//! The names every layer speaks of: scenarios, tasks and service kinds. Parsed once, at the edge,
//! into types that cannot be invalid; nothing here knows what a service does (that is
//! `crate::services`, one file per kind).

use crate::diagnostic::did_you_mean;

/// Name of a scenario (its folder name).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ScenarioName(pub String);

impl std::fmt::Display for ScenarioName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Name of a task, unique within its pipeline.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TaskId(pub String);

impl std::fmt::Display for TaskId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Declares the service kinds: one line per kind, `Variant => "name"`. What a kind does is
/// described in `src/services/<name>.rs` and registered in `crate::services::REGISTRY`.
macro_rules! service_kinds {
    ($($(#[$doc:meta])* $variant:ident => $name:literal,)+) => {
        /// A kind of service a pipeline can talk to.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum ServiceKind {
            $($(#[$doc])* $variant,)+
        }

        impl ServiceKind {
            /// Every kind, in start order of independent services.
            pub const ALL: &'static [ServiceKind] = &[$(ServiceKind::$variant,)+];

            /// The name used in configuration files.
            pub fn name(self) -> &'static str {
                match self {
                    $(ServiceKind::$variant => $name,)+
                }
            }
        }
    };
}

service_kinds! {
    /// PostgreSQL.
    Postgres => "postgres",
    /// Redis.
    Redis => "redis",
    /// The HDFS namespace jobs see (a local folder behind the Hadoop client).
    Hdfs => "hdfs",
    /// A Hive metastore with its warehouse.
    Hive => "hive",
    /// Local Spark: the generated Spark configuration (and the harness's own Spark session).
    Spark => "spark",
    /// A ClickHouse server.
    ClickHouse => "clickhouse",
}

impl ServiceKind {
    /// Parses a service name, with an explanation (and a did-you-mean) when it is not one.
    pub fn parse(name: &str) -> Result<Self, String> {
        if let Some(kind) = Self::ALL.iter().find(|k| k.name() == name) {
            return Ok(*kind);
        }
        let names: Vec<&str> = Self::ALL.iter().map(|k| k.name()).collect();
        let hint = did_you_mean(name, names.iter().copied())
            .map(|b| format!("; did you mean `{b}`?"))
            .unwrap_or_default();
        Err(format!(
            "unknown service `{name}`; expected one of {}{hint}",
            names.join(", ")
        ))
    }
}

impl std::fmt::Display for ServiceKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_parses_back_from_its_name() {
        for kind in ServiceKind::ALL {
            assert_eq!(ServiceKind::parse(kind.name()), Ok(*kind));
        }
    }

    #[test]
    fn an_unknown_service_name_suggests_the_closest_kind() {
        let err = ServiceKind::parse("clickhose").expect_err("unknown");
        assert!(err.contains("did you mean `clickhouse`"), "{err}");
    }
}
