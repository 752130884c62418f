//! Positional command-line arguments of the examples.

/// Argument `i` (0-based) parsed as `T`, or `default` when absent. Exits with a message
/// naming the argument when it does not parse.
pub(crate) fn arg<T: std::str::FromStr>(args: &[String], i: usize, default: T) -> T {
    match args.get(i) {
        Some(s) => s.parse().unwrap_or_else(|_| {
            eprintln!("argument {}: cannot parse {s:?}", i + 1);
            std::process::exit(2)
        }),
        None => default,
    }
}
