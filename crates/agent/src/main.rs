//! `serf`: a drop-in replacement for HashiCorp's `serf` binary. Everything lives in the
//! `serf_agent` library; this collects the arguments and hands them to
//! `serf_agent::cli::dispatch`.
#![forbid(unsafe_code)]

fn main() {
    serf_agent::cli::exit_quietly_on_broken_pipe();
    // Go takes arguments as bytes; a non-UTF-8 argument must not crash us.
    let mut args: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    // Go's main turns `-v`/`--version` anywhere into the `version` command.
    if args.iter().any(|a| a == "-v" || a == "--version") {
        args.insert(0, "version".to_string());
    }
    let code = serf_agent::cli::dispatch(&args);
    let _ = std::io::Write::flush(&mut std::io::stdout());
    std::process::exit(code);
}
