//! Runs `examples/embed.rs`, so the embedding example stays correct.

#[allow(dead_code)]
#[path = "../examples/embed.rs"]
mod embed;

#[tokio::test(flavor = "current_thread")]
async fn embedding_example_runs() {
    if let Err(e) = embed::run().await {
        panic!("examples/embed.rs failed: {e}");
    }
}
