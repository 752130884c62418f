//! `serf event`.

use super::{connect, out, parse_flags, usage_error, with_rpc};
use crate::flags::{FlagSet, Kind};
use crate::help::EVENT_HELP;
use serf_rpc::EventRequest;

/// `serf event [-coalesce=true|false] name [payload]`.
pub(super) async fn event(args: &[String]) -> i32 {
    let fs = with_rpc(FlagSet::new().add("coalesce", Kind::Bool));
    let Some(p) = parse_flags(fs, args, EVENT_HELP) else {
        return 1;
    };
    if p.args.is_empty() {
        return usage_error("An event name must be specified.", EVENT_HELP);
    }
    if p.args.len() > 2 {
        return usage_error(
            "Too many command line arguments. Only a name and payload must be specified.",
            EVENT_HELP,
        );
    }
    let coalesce = p.bool_or("coalesce", true);
    let name = &p.args[0];
    let payload = p.args.get(1).map(|s| s.as_bytes().to_vec());
    let Some(mut c) = connect(&p).await else {
        return 1;
    };
    let res = c
        .user_event(&EventRequest {
            name: name.clone(),
            payload,
            coalesce,
        })
        .await;
    c.close().await;
    if let Err(e) = res {
        out(&format!("Error sending event: {e}"));
        return 1;
    }
    out(&format!(
        "Event '{name}' dispatched! Coalescing enabled: {coalesce}"
    ));
    0
}
