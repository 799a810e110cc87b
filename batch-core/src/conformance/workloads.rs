//! Abstract container behaviours and the adapters that turn them into [`Container`]s.

use std::fmt;

use crate::model::Container;

/// What a container of a conformance case does, independent of how an executor runs it.
///
/// A [`Workloads`] adapter turns each behaviour into a [`Container`] the executor under test
/// can run: [`ShellWorkloads`] writes a POSIX `sh` script, an in-process executor names one
/// of its registered functions.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Behaviour {
    /// Exit at once with this code.
    Exit(i32),
    /// Sleep for `seconds` (real time), then exit with `code`.
    SleepThenExit {
        /// How long to sleep, in seconds.
        seconds: u32,
        /// The exit code afterwards.
        code: i32,
    },
    /// Write one line to stdout and one to stderr, then exit 0.
    Print {
        /// The line written to stdout (without its newline).
        stdout: String,
        /// The line written to stderr (without its newline); empty writes nothing.
        stderr: String,
    },
    /// Print `NAME=value` on its own line for each of these environment variables (empty
    /// value when unset), then exit 0. Names are plain identifiers.
    PrintEnv(Vec<String>),
    /// Print the hostname the container sees, then exit 0.
    PrintHostname,
    /// Kill itself with this signal number (`9`, `15`).
    KillSelf(i32),
    /// Print `ready`, then run until asked to stop (SIGTERM), then exit with `code`.
    RunUntilTerminated {
        /// The exit code after the stop request.
        code: i32,
    },
    /// Print `ready`, then ignore stop requests (SIGTERM) and run until killed.
    IgnoreTerm,
    /// A container whose program does not exist: it cannot start.
    MissingBinary,
    /// Allocate and touch this many bytes of memory, then exit 0.
    AllocateMemory(u64),
}

/// The marker line [`Behaviour::RunUntilTerminated`] and [`Behaviour::IgnoreTerm`] print
/// once they are ready for a stop request.
pub const READY_MARKER: &str = "ready";

/// Turns a [`Behaviour`] into a [`Container`] of the executor under test.
///
/// The suite sets the container's `name` itself and adds environment variables to it; the
/// adapter decides `image`, `command`, `args` and anything else the behaviour needs.
pub trait Workloads: Send + Sync + fmt::Debug + 'static {
    /// A container named `name` that behaves as `behaviour`.
    fn container(&self, name: &str, behaviour: &Behaviour) -> Container;
}

impl<W: Workloads + ?Sized> Workloads for std::sync::Arc<W> {
    fn container(&self, name: &str, behaviour: &Behaviour) -> Container {
        (**self).container(name, behaviour)
    }
}

/// The default adapter: `image: busybox`, `command: [sh, -c, <script>]`, with scripts in
/// POSIX `sh` that work with busybox `sh` and `dash`.
///
/// The container's command is `$(VAR)`-expanded as Kubernetes does it, so every `$` of the
/// script is written `$$` in the command (the executor turns it back into `$`).
///
/// A stop request is SIGTERM and a kill is SIGKILL, as with Kubernetes. The scripts do not
/// rely on the default action of SIGTERM (which a container's PID 1 does not get): the
/// behaviours that stop on SIGTERM install a `trap`.
#[derive(Debug, Clone)]
pub struct ShellWorkloads {
    image: String,
}

impl ShellWorkloads {
    /// The adapter with the `busybox` image.
    pub fn new() -> Self {
        ShellWorkloads {
            image: "busybox".to_owned(),
        }
    }

    /// The adapter with another image (it must have a POSIX `sh`, `sleep`, `head`, `tr`).
    pub fn with_image(image: impl Into<String>) -> Self {
        ShellWorkloads {
            image: image.into(),
        }
    }

    /// The `sh` script for a behaviour (`None` for [`Behaviour::MissingBinary`], which runs
    /// no shell), before `$` is escaped for the container's command.
    pub fn script(behaviour: &Behaviour) -> Option<String> {
        Some(match behaviour {
            Behaviour::Exit(code) => format!("exit {code}"),
            Behaviour::SleepThenExit { seconds, code } => format!("sleep {seconds}; exit {code}"),
            Behaviour::Print { stdout, stderr } => {
                let mut s = format!("printf '%s\\n' {}", quote(stdout));
                if !stderr.is_empty() {
                    s.push_str(&format!("; printf '%s\\n' {} >&2", quote(stderr)));
                }
                s
            }
            Behaviour::PrintEnv(names) => names
                .iter()
                .map(|n| format!("printf '%s=%s\\n' {} \"${{{n}}}\"", quote(n)))
                .collect::<Vec<_>>()
                .join("; "),
            Behaviour::PrintHostname => {
                "hostname 2>/dev/null || cat /proc/sys/kernel/hostname".to_owned()
            }
            // `exit 99` only runs when the signal did not end the shell (for example a PID 1
            // that ignores it), so the case reports a clear wrong code.
            Behaviour::KillSelf(signal) => format!("kill -{signal} $$; sleep 1; exit 99"),
            Behaviour::RunUntilTerminated { code } => {
                format!("trap 'exit {code}' TERM; echo {READY_MARKER}; while :; do sleep 1; done")
            }
            Behaviour::IgnoreTerm => {
                format!("trap '' TERM; echo {READY_MARKER}; while :; do sleep 1; done")
            }
            Behaviour::MissingBinary => return None,
            Behaviour::AllocateMemory(bytes) => format!(
                "x=$(head -c {bytes} /dev/zero | tr '\\000' x); echo allocated ${{#x}} bytes"
            ),
        })
    }
}

impl Default for ShellWorkloads {
    fn default() -> Self {
        ShellWorkloads::new()
    }
}

impl Workloads for ShellWorkloads {
    fn container(&self, name: &str, behaviour: &Behaviour) -> Container {
        let command = match ShellWorkloads::script(behaviour) {
            // `$$` is Kubernetes' escape for `$` in commands (see the type's docs).
            Some(script) => vec!["sh".to_owned(), "-c".to_owned(), script.replace('$', "$$")],
            None => vec!["/nonexistent/batch-conformance/missing-binary".to_owned()],
        };
        Container {
            name: name.to_owned(),
            image: self.image.clone(),
            command,
            ..Container::default()
        }
    }
}

/// Single-quotes a string for `sh`.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_scripts_quote_their_text() {
        let b = Behaviour::Print {
            stdout: "it's".to_owned(),
            stderr: String::new(),
        };
        assert_eq!(
            ShellWorkloads::script(&b).as_deref(),
            Some("printf '%s\\n' 'it'\\''s'")
        );
        let k = ShellWorkloads::new().container("main", &Behaviour::KillSelf(9));
        assert_eq!(k.command[2], "kill -9 $$$$; sleep 1; exit 99");
        let c = ShellWorkloads::new().container("main", &Behaviour::MissingBinary);
        assert_eq!(c.command.len(), 1);
        assert_eq!(c.image, "busybox");
    }
}
