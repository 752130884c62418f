//! The `serf` command line: the command list, mitchellh/cli-style dispatch, `version`
//! and `keygen`.

/// The usage list (mitchellh/cli `BasicHelpFunc`); printed with one more newline.
const USAGE: &str = "Usage: serf [--version] [--help] <command> [<args>]

Available commands are:
    agent           Runs a Serf agent
    event           Send a custom event through the Serf cluster
    force-leave     Forces a member of the cluster to enter the \"left\" state
    info            Provides debugging information for operators
    join            Tell Serf agent to join cluster
    keygen          Generates a new encryption key
    keys            Manipulate the internal encryption keyring used by Serf
    leave           Gracefully leaves the Serf cluster and shuts down
    members         Lists the members of a Serf cluster
    monitor         Stream logs from a Serf agent
    query           Send a query to the Serf cluster
    reachability    Test network reachability
    rtt             Estimates network round trip time between nodes
    tags            Modify tags of a running Serf agent
    version         Prints the Serf version
";

/// Runs a client command on a small single-threaded runtime.
fn client_runtime<F: std::future::Future<Output = i32>>(f: F) -> i32 {
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt.block_on(f),
        Err(e) => {
            println!("Error starting the runtime: {e}");
            1
        }
    }
}

/// Runs `serf` with `args` (without the program name) and returns the exit code.
///
/// mitchellh/cli's dispatch: help flags anywhere (before `--`), flags before the command,
/// the usage list for no or an unknown command.
pub fn dispatch(args: &[String]) -> i32 {
    let mut is_help = false;
    let mut top_flags = false;
    let mut sub = None;
    for (i, a) in args.iter().enumerate() {
        if a == "--" {
            break;
        }
        if a == "-h" || a == "-help" || a == "--help" {
            is_help = true;
            continue;
        }
        if sub.is_none() {
            if a == "-v" || a == "-version" || a == "--version" {
                continue;
            }
            if a.starts_with('-') {
                top_flags = true;
            } else if !a.is_empty() {
                sub = Some(i);
            }
        }
    }
    if is_help && sub.is_none() {
        eprintln!("{USAGE}");
        return 0;
    }
    let Some(i) = sub else {
        eprintln!("{USAGE}");
        return 127;
    };
    let cmd = args[i].as_str();
    let rest = &args[i + 1..];
    let Some(help) = super::help_for(cmd) else {
        eprintln!("{USAGE}");
        return 127;
    };
    if is_help {
        eprintln!("{help}");
        return 0;
    }
    if top_flags {
        eprint!(
            "Invalid flags before the subcommand. If these flags are for\n\
             the subcommand, please put them after the subcommand.\n\n{help}\n"
        );
        return 1;
    }
    match cmd {
        "agent" => {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    println!("==> Failed to start the runtime: {e}");
                    return 1;
                }
            };
            let code = rt.block_on(crate::agent::run(rest));
            rt.shutdown_timeout(std::time::Duration::from_millis(200));
            code
        }
        "keygen" => super::keygen::keygen(),
        "version" => super::version::version(),
        _ => client_runtime(async { super::run(cmd, rest).await.unwrap_or(127) }),
    }
}

/// Go programs die quietly from SIGPIPE when their output is closed (`serf members | head`).
/// Rust ignores SIGPIPE and `println!` panics instead; without `unsafe` we cannot restore
/// the signal, so a write to a closed pipe ends the process the same way: silently, 141.
pub fn exit_quietly_on_broken_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let msg = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("");
        if msg.contains("failed printing to stdout") && msg.contains("Broken pipe") {
            std::process::exit(141);
        }
        default(info);
    }));
}
