//! `serf tags`.

use super::{connect, out, parse_flags, unmarshal_tags, with_rpc};
use crate::flags::{FlagSet, Kind};
use crate::help::TAGS_HELP;
use serf_rpc::TagsRequest;

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
