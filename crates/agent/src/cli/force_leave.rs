//! `serf force-leave`.

use super::{connect, out, parse_flags, usage_error, with_rpc};
use crate::flags::{FlagSet, Kind};
use crate::help::FORCE_LEAVE_HELP;

/// `serf force-leave [-prune] name`.
pub(super) async fn force_leave(args: &[String]) -> i32 {
    let fs = with_rpc(FlagSet::new().add("prune", Kind::Bool));
    let Some(p) = parse_flags(fs, args, FORCE_LEAVE_HELP) else {
        return 1;
    };
    if p.args.len() != 1 {
        return usage_error(
            "A node name must be specified to force leave.",
            FORCE_LEAVE_HELP,
        );
    }
    let Some(mut c) = connect(&p).await else {
        return 1;
    };
    let res = c.force_leave(&p.args[0], p.bool("prune")).await;
    c.close().await;
    if let Err(e) = res {
        out(&format!("Error force leaving: {e}"));
        return 1;
    }
    0
}
