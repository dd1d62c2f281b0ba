//! End-to-end tests of the `harness` binary: a project tree in, arguments and environment in,
//! exit code, output and the resulting files checked. Runs real PostgreSQL and Redis servers.

mod support;

mod airflow;
mod bench;
mod capture;
mod clickhouse;
mod compare;
mod completions;
mod config_errors;
mod config_fuzz;
mod connect_session;
mod docker;
mod doctor;
mod example;
mod faults;
mod faults_update;
mod hive_direct;
mod interrupt;
mod kept_env;
mod layers;
mod loopback;
mod nested;
mod ranking;
mod report_html;
mod reported_errors;
mod run;
mod secrets;
mod spark;
mod spark_cluster;
mod steps;
mod workflow;
