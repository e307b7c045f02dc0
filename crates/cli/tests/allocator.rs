//! The binary runs on jemalloc with the settings `.cargo/config.toml` builds in: without them it
//! would still work, only with 2.5 to 5.5 MB more at the worker's peak (docs/benchmarks.md), so
//! nothing else would notice if they were lost.

// Linux only: elsewhere jemalloc is prefixed and reads _RJEM_MALLOC_CONF instead.
#![cfg(target_os = "linux")]

use std::process::Command;

#[test]
fn the_binary_allocates_with_jemalloc_and_its_built_in_settings() {
    // Arrange: jemalloc prints its figures at exit when asked to.
    let mut command = Command::new(env!("CARGO_BIN_EXE_stephook"));
    command
        .arg("--version")
        .env("MALLOC_CONF", "stats_print:true");

    // Act
    let output = command.output().expect("stephook --version runs");

    // Assert
    assert!(output.status.success(), "{output:?}");
    let stats = String::from_utf8_lossy(&output.stderr);
    assert!(
        stats.contains("jemalloc statistics"),
        "not jemalloc's statistics: {stats}"
    );
    assert!(
        stats.contains(r#"config.malloc_conf: "dirty_decay_ms:1000,muzzy_decay_ms:0""#),
        "jemalloc runs without the settings .cargo/config.toml builds in: {stats}"
    );
}
