//! `outbound check FILE [--secrets]`, the profile checker for CI (feature `cli`), as a function
//! a service's own test can call as well as the `outbound` binary.
//!
//! It validates every profile of the file (all of them, not only up to the first error), prints
//! each valid profile's effective settings as TOML (defaults included, secrets shown only as
//! their sources, URLs masked), and with `--secrets` also checks that every environment
//! variable and file a profile names exists and is not empty, never printing a value. Problems
//! go to standard error with the library's own messages. Exit status: 0 when everything is
//! valid, 1 on any problem, 2 on a usage error.
//!
//! ```
//! let dir = std::env::temp_dir().join(format!("outbound-doc-check-{}", std::process::id()));
//! std::fs::create_dir_all(&dir)?;
//! let file = dir.join("integrations.toml");
//! std::fs::write(&file, "[crm]\nbase_url = \"https://api.crm.example\"\n")?;
//!
//! let (mut out, mut err) = (Vec::new(), Vec::new());
//! let status = outbound::cli::run(["outbound".as_ref(), "check".as_ref(), file.as_os_str()], &mut out, &mut err);
//! assert_eq!(status, 0);
//! assert!(String::from_utf8(out)?.contains("[crm.timeouts]"));
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Arg, ArgAction, Command, value_parser};

use crate::Profiles;

/// Everything valid.
pub const OK: u8 = 0;
/// A profile or a secret has a problem (or the file cannot be read).
pub const PROBLEMS: u8 = 1;
/// The command line was wrong.
pub const USAGE: u8 = 2;

fn command() -> Command {
    Command::new("outbound")
        .about("Checks outbound integration profiles")
        .subcommand_required(true)
        .arg_required_else_help(true)
        .subcommand(
            Command::new("check")
                .about(
                    "Validates every profile of FILE and prints its effective settings, \
                     secrets masked (environment overrides are not applied); exits non-zero \
                     on any problem",
                )
                .arg(
                    Arg::new("file")
                        .value_name("FILE")
                        .required(true)
                        .value_parser(value_parser!(PathBuf)),
                )
                .arg(
                    Arg::new("secrets")
                        .long("secrets")
                        .action(ArgAction::SetTrue)
                        .help(
                            "Also check that every environment variable and file a profile \
                             names exists and is not empty (values are never printed)",
                        ),
                ),
        )
}

/// The `outbound` binary: [`run`] over the process's arguments, standard output and error.
pub fn main() -> ExitCode {
    let status = run(
        std::env::args_os(),
        &mut std::io::stdout().lock(),
        &mut std::io::stderr().lock(),
    );
    ExitCode::from(status)
}

/// Runs the command line `args` (the program name first), writing the effective settings to
/// `out` and problems to `err`; returns the exit status ([`OK`], [`PROBLEMS`] or [`USAGE`]).
pub fn run<I, T>(args: I, out: &mut impl Write, err: &mut impl Write) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let matches = match command().try_get_matches_from(args) {
        Ok(matches) => matches,
        Err(e) => {
            // `--help` and `--version` are answers, not errors.
            if e.use_stderr() {
                let _ = write!(err, "{}", e.render());
                return USAGE;
            }
            let _ = write!(out, "{}", e.render());
            return OK;
        }
    };
    let Some(("check", check)) = matches.subcommand() else {
        return USAGE;
    };
    let file = check.get_one::<PathBuf>("file").expect("required");
    let secrets = check.get_flag("secrets");
    let text = match std::fs::read_to_string(file) {
        Ok(text) => text,
        Err(e) => {
            let _ = writeln!(err, "error: cannot read {}: {}", file.display(), e.kind());
            return PROBLEMS;
        }
    };
    let (profiles, problems) = match Profiles::parse_each(&text) {
        Ok(parsed) => parsed,
        Err(e) => {
            let _ = writeln!(err, "error: {e}");
            return PROBLEMS;
        }
    };
    let mut failed = !problems.is_empty();
    if !failed && profiles.names().next().is_none() {
        // A file without a single profile is most likely the wrong file.
        let _ = writeln!(err, "error: {} defines no profile", file.display());
        return PROBLEMS;
    }
    for problem in problems {
        let _ = writeln!(err, "error: {problem}");
    }
    for name in profiles.names() {
        let profile = profiles.get(name).expect("listed");
        if secrets {
            for problem in profile.secret_problems() {
                failed = true;
                let _ = writeln!(err, "error: {problem}");
            }
        }
        let _ = writeln!(out, "{}", profile.effective_toml());
    }
    if failed { PROBLEMS } else { OK }
}
