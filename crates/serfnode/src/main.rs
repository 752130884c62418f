//! The `serfnode` binary: see the `serfnode` library.
#![forbid(unsafe_code)]

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        None => {}
        Some("version" | "--version" | "-v") => {
            println!("serfnode {}", env!("CARGO_PKG_VERSION"));
            return;
        }
        Some(_) => {
            eprintln!(
                "usage: serfnode [--version]\n\
                 Configured by environment variables and /serfnode.yml (docs/serfnode.md)."
            );
            std::process::exit(2);
        }
    }
    let level = std::env::var("LOG_LEVEL").unwrap_or_else(|_| "info".to_string());
    let filter = tracing_subscriber::filter::LevelFilter::from_level(
        level.parse().unwrap_or(tracing::Level::INFO),
    );
    tracing_subscriber::fmt()
        .with_max_level(filter)
        .with_target(false)
        .with_ansi(false)
        .init();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("serfnode: cannot start the runtime: {e}");
            std::process::exit(1);
        }
    };
    let code = rt.block_on(serfnode::node::run());
    rt.shutdown_timeout(std::time::Duration::from_secs(1));
    std::process::exit(code);
}
