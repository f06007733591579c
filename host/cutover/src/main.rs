//! The `cutover` binary: everything lives in the library; see `cutover::cli`.

fn main() -> std::process::ExitCode {
    cutover::cli::main()
}
