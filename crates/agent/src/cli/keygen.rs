//! `serf keygen`.

use base64::Engine;

/// Prints a new random 32-byte key in base64.
pub(super) fn keygen() -> i32 {
    let mut key = [0u8; 32];
    if let Err(e) = getrandom::getrandom(&mut key) {
        println!("Error reading random data: {e}");
        return 1;
    }
    println!("{}", base64::engine::general_purpose::STANDARD.encode(key));
    0
}
