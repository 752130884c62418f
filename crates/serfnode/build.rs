//! Link options for this package's binaries (see `build/relr.rs` at the repository root).

#[path = "../../build/relr.rs"]
mod relr;

fn main() {
    relr::emit();
}
