//! `outbound check FILE [--secrets]`: see [`outbound::cli`].

fn main() -> std::process::ExitCode {
    outbound::cli::main()
}
