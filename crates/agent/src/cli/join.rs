//! `serf join`.

use super::{connect, out, parse_flags, usage_error, with_rpc};
use crate::flags::{FlagSet, Kind};
use crate::help::JOIN_HELP;

/// `serf join [-replay] address ...`.
pub(super) async fn join(args: &[String]) -> i32 {
    let fs = with_rpc(FlagSet::new().add("replay", Kind::Bool));
    let Some(p) = parse_flags(fs, args, JOIN_HELP) else {
        return 1;
    };
    if p.args.is_empty() {
        return usage_error("At least one address to join must be specified.", JOIN_HELP);
    }
    let Some(mut c) = connect(&p).await else {
        return 1;
    };
    let res = c.join(&p.args, p.bool("replay")).await;
    c.close().await;
    let n = match res {
        Ok(n) => n,
        Err(e) => {
            out(&format!("Error joining the cluster: {e}"));
            return 1;
        }
    };
    out(&format!(
        "Successfully joined cluster by contacting {n} nodes."
    ));
    0
}
