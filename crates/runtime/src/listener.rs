//! The TCP listener: inbound streams (push/pull, fallback pings, user messages) with
//! bounded concurrency, each read, handed to the core and answered.

use crate::driver::Shared;
use crate::net::{read_label, read_stream, ReadError};
use crate::{MAX_INBOUND_PUSH_PULL, MAX_INBOUND_STREAMS};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::timeout;
use tracing::{debug, warn};

/// Accepts stream connections until shutdown.
pub(crate) async fn serve_streams(shared: Arc<Shared>, listener: TcpListener) {
    let conns = Arc::new(Semaphore::new(MAX_INBOUND_STREAMS));
    let push_pulls = Arc::new(Semaphore::new(MAX_INBOUND_PUSH_PULL));
    let mut shutdown = shared.shutdown.subscribe();
    loop {
        let (sock, peer) = tokio::select! {
            _ = shutdown.changed() => {
                if *shutdown.borrow() { return; }
                continue;
            }
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    debug!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        metrics::counter!("memberlist.tcp.accept").increment(1);
        debug!("Stream connection from={peer}");
        let Ok(permit) = conns.clone().try_acquire_owned() else {
            debug!(%peer, "too many streams, closing");
            continue;
        };
        let shared = shared.clone();
        let push_pulls = push_pulls.clone();
        tokio::spawn(async move {
            let _permit = permit;
            handle_conn(shared, sock, peer, push_pulls).await;
        });
    }
}

async fn handle_conn(
    shared: Arc<Shared>,
    mut sock: TcpStream,
    peer: SocketAddr,
    push_pulls: Arc<Semaphore>,
) {
    let opts = shared.stream_opts();
    // A push/pull (or an encrypted or compressed message, which may be one) takes a permit
    // as soon as its first byte arrives, before up to 20 MiB are buffered.
    let mut pp_permit = None;
    let read = async {
        read_label(&mut sock, &opts.label).await?;
        read_stream(&mut sock, &opts, |first| {
            if matches!(first, 6 | 9 | 10) {
                match push_pulls.clone().try_acquire_owned() {
                    Ok(p) => pp_permit = Some(p),
                    Err(_) => {
                        warn!(%peer, "too many pending push/pull requests");
                        return Err(ReadError::Closed);
                    }
                }
            }
            Ok(())
        })
        .await
    };
    let msg = match timeout(opts.tcp_timeout, read).await {
        Err(_) => {
            debug!(%peer, "stream read timed out");
            return;
        }
        Ok(Err(ReadError::Closed)) | Ok(Err(ReadError::Io(_))) => return,
        Ok(Err(ReadError::Wire(e))) => {
            warn!(%peer, error = %e, "failed to read stream");
            let reply = {
                let mut s = shared.lock();
                s.encode_stream_error(&e.to_string())
            };
            let _ = timeout(opts.tcp_timeout, sock.write_all(&reply)).await;
            return;
        }
        Ok(Ok(m)) => m,
    };
    let _pp = pp_permit;
    let reply = {
        let mut s = shared.lock();
        let now = shared.now();
        let r = s.handle_stream(now, peer, msg);
        shared.flush(&mut s);
        r
    };
    shared.wake.notify_one();
    if let Some(r) = reply {
        if let Ok(Ok(())) = timeout(opts.tcp_timeout, sock.write_all(&r)).await {
            metrics::counter!("memberlist.tcp.sent").increment(r.len() as u64);
        }
        let _ = sock.shutdown().await;
    }
}
