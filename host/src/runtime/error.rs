//! The one error type of the plugin runtime.
//!
//! Every way a plugin can fail maps to exactly one variant, and every variant has a stable,
//! low-cardinality [`Error::reason`] usable as a metric label or a condition reason.

use std::time::Duration;

/// Why loading or calling a plugin failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The bytes are not a WebAssembly component this engine can compile.
    #[error("not a valid plugin component: {message}")]
    InvalidModule { message: String },

    /// The module is bigger than a plugin may be (it must fit a ConfigMap).
    #[error("plugin is {size} bytes, more than the limit of {limit} bytes")]
    ModuleTooLarge { size: usize, limit: usize },

    /// The component imports interfaces the host does not offer (all of them, comma-separated).
    #[error(
        "plugin imports {import}, which the host does not offer to plugins (allowed: wasi:io, wasi:cli, wasi:random 0.2.x)"
    )]
    ForbiddenImport { import: String },

    /// The component does not export the functions of a renderer or policy world.
    #[error(
        "component does not implement the renderer or policy world of the plugin contract: {message}"
    )]
    NotAPlugin { message: String },

    /// The plugin was built against a contract version this host cannot run.
    #[error(
        "plugin was built for contract {found}, this host speaks {expected} (the major version must match)"
    )]
    IncompatibleContract { found: String, expected: String },

    /// `info` returned something unusable (no name, no kinds, a role that does not match its exports).
    #[error("plugin info is invalid: {message}")]
    InvalidInfo { message: String },

    /// The call ran past its wall-clock deadline.
    #[error("plugin did not finish within {deadline:?}")]
    Timeout { deadline: Duration },

    /// The plugin tried to use more of a resource (memory, tables, instances) than allowed.
    #[error("plugin exceeded its {resource} limit: {message}")]
    ResourceLimitExceeded {
        resource: &'static str,
        message: String,
    },

    /// The call used up its fuel budget.
    #[error("plugin used up its fuel budget of {fuel}")]
    FuelExhausted { fuel: u64 },

    /// The guest overflowed its WebAssembly stack (e.g. runaway recursion).
    #[error("plugin overflowed its stack")]
    StackOverflow,

    /// The guest trapped (a panic, an `unreachable`, an out-of-bounds access...).
    #[error("plugin trapped: {message}")]
    Trap { message: String },

    /// The output is bigger than allowed; nothing of it may be applied.
    #[error("plugin output too large: {what} is {actual}, limit {limit}")]
    OutputTooLarge {
        what: &'static str,
        actual: usize,
        limit: usize,
    },

    /// The output is not what the contract promises (not JSON, not an object, too deep...).
    #[error("plugin output is invalid: {message}")]
    InvalidOutput { message: String },

    /// The plugin judged the user's input invalid; each entry is one problem.
    #[error("invalid input: {}", .0.join("; "))]
    Invalid(Vec<String>),

    /// The plugin reported a fault of its own.
    #[error("plugin internal error: {0}")]
    Internal(String),

    /// The plugin does not implement the requested call (e.g. `render` on a policy plugin).
    #[error("plugin is a {role}, it has no `{call}` function")]
    WrongRole {
        role: &'static str,
        call: &'static str,
    },

    /// The runtime itself failed (a wasmtime error that is not the plugin's fault, a host bug).
    #[error("plugin runtime failure: {message}")]
    Host { message: String },
}

impl Error {
    /// A stable label for metrics and condition reasons.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::InvalidModule { .. } => "InvalidModule",
            Error::ModuleTooLarge { .. } => "ModuleTooLarge",
            Error::ForbiddenImport { .. } => "ForbiddenImport",
            Error::NotAPlugin { .. } => "NotAPlugin",
            Error::IncompatibleContract { .. } => "IncompatibleContract",
            Error::InvalidInfo { .. } => "InvalidInfo",
            Error::Timeout { .. } => "PluginTimeout",
            Error::ResourceLimitExceeded { .. } => "ResourceLimitExceeded",
            Error::FuelExhausted { .. } => "FuelExhausted",
            Error::StackOverflow => "StackOverflow",
            Error::Trap { .. } => "PluginTrap",
            Error::OutputTooLarge { .. } => "OutputTooLarge",
            Error::InvalidOutput { .. } => "InvalidOutput",
            Error::Invalid(_) => "InvalidInput",
            Error::Internal(_) => "PluginInternalError",
            Error::WrongRole { .. } => "WrongRole",
            Error::Host { .. } => "RuntimeFailure",
        }
    }

    /// Whether the failure is attributable to the plugin's bytes (as opposed to the user's input
    /// or the host). A controller keeps the last applied objects either way; this only picks
    /// the wording of the condition.
    pub fn is_plugin_fault(&self) -> bool {
        !matches!(self, Error::Invalid(_) | Error::Host { .. })
    }
}

/// What the limiter leaves in the error chain when it refuses a memory or table growth,
/// so the classification does not depend on wasmtime's message wording.
#[derive(Debug)]
pub(crate) struct LimitHit {
    pub resource: &'static str,
    pub desired: usize,
    pub limit: usize,
}

impl std::fmt::Display for LimitHit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} would grow to {} but the limit is {}",
            self.resource, self.desired, self.limit
        )
    }
}

impl std::error::Error for LimitHit {}

/// How a call ended, as the runtime saw it; the input of [`classify`].
pub(crate) struct CallFailure<'a> {
    pub error: &'a wasmtime::Error,
    pub deadline: Duration,
    pub fuel: Option<u64>,
    /// What the guest wrote to stderr before failing (a panic message, usually).
    pub stderr: &'a str,
}

/// Maps a wasmtime error to the runtime's own error. Pure: no I/O, no global state.
pub(crate) fn classify(failure: CallFailure<'_>) -> Error {
    let CallFailure {
        error,
        deadline,
        fuel,
        stderr,
    } = failure;
    if let Some(hit) = error.downcast_ref::<LimitHit>() {
        return Error::ResourceLimitExceeded {
            resource: hit.resource,
            message: hit.to_string(),
        };
    }
    if let Some(trap) = error.downcast_ref::<wasmtime::Trap>() {
        match trap {
            wasmtime::Trap::Interrupt => return Error::Timeout { deadline },
            wasmtime::Trap::OutOfFuel => {
                return Error::FuelExhausted {
                    fuel: fuel.unwrap_or(0),
                };
            }
            wasmtime::Trap::StackOverflow => return Error::StackOverflow,
            _ => {}
        }
        return Error::Trap {
            message: with_stderr(trap.to_string(), stderr),
        };
    }
    if let Some(exit) = error.downcast_ref::<wasmtime_wasi::I32Exit>() {
        return Error::Trap {
            message: with_stderr(format!("plugin called exit({})", exit.0), stderr),
        };
    }
    Error::Trap {
        message: with_stderr(format!("{error:#}"), stderr),
    }
}

fn with_stderr(message: String, stderr: &str) -> String {
    let stderr = stderr.trim();
    if stderr.is_empty() {
        message
    } else {
        format!("{message}; plugin stderr: {stderr}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_distinct_labels() {
        let all = [
            Error::InvalidModule {
                message: String::new(),
            },
            Error::ModuleTooLarge { size: 0, limit: 0 },
            Error::ForbiddenImport {
                import: String::new(),
            },
            Error::NotAPlugin {
                message: String::new(),
            },
            Error::IncompatibleContract {
                found: String::new(),
                expected: String::new(),
            },
            Error::InvalidInfo {
                message: String::new(),
            },
            Error::Timeout {
                deadline: Duration::ZERO,
            },
            Error::ResourceLimitExceeded {
                resource: "memory",
                message: String::new(),
            },
            Error::FuelExhausted { fuel: 0 },
            Error::StackOverflow,
            Error::Trap {
                message: String::new(),
            },
            Error::OutputTooLarge {
                what: "",
                actual: 0,
                limit: 0,
            },
            Error::InvalidOutput {
                message: String::new(),
            },
            Error::Invalid(vec![]),
            Error::Internal(String::new()),
            Error::WrongRole { role: "", call: "" },
            Error::Host {
                message: String::new(),
            },
        ];
        let mut labels: Vec<_> = all.iter().map(Error::reason).collect();
        labels.sort_unstable();
        labels.dedup();
        assert_eq!(labels.len(), all.len());
    }

    #[test]
    fn limiter_refusal_is_classified_as_resource_limit() {
        let error = wasmtime::Error::new(LimitHit {
            resource: "memory",
            desired: 2,
            limit: 1,
        });
        let got = classify(CallFailure {
            error: &error,
            deadline: Duration::ZERO,
            fuel: None,
            stderr: "",
        });
        assert_eq!(got.reason(), "ResourceLimitExceeded");
    }

    #[test]
    fn epoch_interrupt_is_classified_as_timeout() {
        let error = wasmtime::Error::new(wasmtime::Trap::Interrupt);
        let got = classify(CallFailure {
            error: &error,
            deadline: Duration::from_secs(1),
            fuel: None,
            stderr: "",
        });
        assert_eq!(
            got,
            Error::Timeout {
                deadline: Duration::from_secs(1)
            }
        );
    }

    #[test]
    fn trap_message_carries_guest_stderr() {
        let error = wasmtime::Error::new(wasmtime::Trap::UnreachableCodeReached);
        let got = classify(CallFailure {
            error: &error,
            deadline: Duration::ZERO,
            fuel: None,
            stderr: "thread panicked at src/lib.rs:1:1:\nboom\n",
        });
        let Error::Trap { message } = got else {
            panic!("expected a trap, got {got:?}")
        };
        assert!(message.contains("boom"), "{message}");
    }
}
