//! `serf leave`.

use super::{connect, out, parse_flags, with_rpc};
use crate::flags::FlagSet;
use crate::help::LEAVE_HELP;

/// `serf leave`.
pub(super) async fn leave(args: &[String]) -> i32 {
    let Some(p) = parse_flags(with_rpc(FlagSet::new()), args, LEAVE_HELP) else {
        return 1;
    };
    let Some(mut c) = connect(&p).await else {
        return 1;
    };
    let res = c.leave().await;
    c.close().await;
    if let Err(e) = res {
        out(&format!("Error leaving: {e}"));
        return 1;
    }
    out("Graceful leave complete");
    0
}
