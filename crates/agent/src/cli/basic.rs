//! `serf join`, `leave`, `force-leave`, `event`, `tags`.

use super::help::{EVENT_HELP, FORCE_LEAVE_HELP, JOIN_HELP, LEAVE_HELP, TAGS_HELP};
use super::{connect, out, parse_flags, unmarshal_tags, with_rpc};
use crate::flags::{FlagSet, Kind};
use serf_rpc::{EventRequest, TagsRequest};

/// Prints a usage error: the message, an empty line and the help (all stdout).
fn usage_error(msg: &str, help: &str) -> i32 {
    out(msg);
    out("");
    out(help);
    1
}

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

/// `serf tags [-set key=value]... [-delete key]...`.
pub(super) async fn tags(args: &[String]) -> i32 {
    let fs = with_rpc(
        FlagSet::new()
            .add("set", Kind::Multi)
            .add("delete", Kind::Multi),
    );
    let Some(p) = parse_flags(fs, args, TAGS_HELP) else {
        return 1;
    };
    let set = p.all("set");
    let delete = p.all("delete");
    if set.is_empty() && delete.is_empty() {
        out(TAGS_HELP);
        return 1;
    }
    let Some(mut c) = connect(&p).await else {
        return 1;
    };
    let tags = match unmarshal_tags(&set) {
        Ok(t) => t,
        Err(e) => {
            out(&format!("Error: {e}"));
            c.close().await;
            return 1;
        }
    };
    let req = TagsRequest {
        tags,
        delete_tags: (!delete.is_empty()).then_some(delete),
    };
    let res = c.update_tags(&req).await;
    c.close().await;
    if let Err(e) = res {
        out(&format!("Error setting tags: {e}"));
        return 1;
    }
    out("Successfully updated agent tags");
    0
}
