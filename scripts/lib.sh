# Sourced by the other scripts (from the workspace root): where cargo puts what it builds.
# The workspace builds for the machine's own target triple (.cargo/config.toml, so that the
# binaries can be linked statically), which puts them in target/<triple>/<profile>/.
target_dir="${CARGO_TARGET_DIR:-target}"
case "$target_dir" in /*) ;; *) target_dir="$PWD/$target_dir" ;; esac
host_triple=$(rustc -vV | sed -n 's/^host: //p')
release_dir="$target_dir/$host_triple/release"
debug_dir="$target_dir/$host_triple/debug"
