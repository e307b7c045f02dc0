//! How a command's failure reaches the person and the script that ran it: one line that says
//! each cause once, and an exit status a script can act on.

use std::process::ExitCode;

/// Exit status when the run itself went through but a notification is dead (the endpoint gave
/// a permanent answer or the retries ran out): it waits for `stephook deliveries redeliver`.
pub const EXIT_NOTIFICATION_DEAD: u8 = 3;

/// A command that ran but whose outcome a script should see in the exit status.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ExitWith {
    pub code: u8,
    pub message: String,
}

/// The error and its causes, each said once: a cause whose text the message already contains
/// (many errors repeat their source in their own message) is left out.
pub fn chain(error: &anyhow::Error) -> String {
    let mut shown = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if text.is_empty() || shown.contains(&text) {
            continue;
        }
        if !shown.is_empty() {
            shown.push_str(": ");
        }
        shown.push_str(&text);
    }
    shown
}

/// 1 for an error, or the code the command chose ([`ExitWith`]).
pub fn exit_code(error: &anyhow::Error) -> ExitCode {
    match error.downcast_ref::<ExitWith>() {
        Some(exit) => ExitCode::from(exit.code),
        None => ExitCode::FAILURE,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot listen on 127.0.0.1:8283: {source} (--api-addr)")]
    struct Bind {
        #[source]
        source: std::io::Error,
    }

    #[test]
    fn each_cause_is_said_once() {
        let io = std::io::Error::new(std::io::ErrorKind::AddrInUse, "Address already in use");
        let error = anyhow::Error::new(Bind { source: io }).context("STEPHOOK_API_ADDR");
        assert_eq!(
            chain(&error),
            "STEPHOOK_API_ADDR: cannot listen on 127.0.0.1:8283: Address already in use (--api-addr)"
        );
    }
}
