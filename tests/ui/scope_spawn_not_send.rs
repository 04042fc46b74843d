// Children must be `Send`: the same scope runs inside spawned tasks
// (`scope_boxed`).
use std::rc::Rc;

fn main() {
    futures_lite::future::block_on(portasync::scope(async |s| {
        let _ = s.spawn(async {
            let shared = Rc::new(1);
            futures_lite::future::yield_now().await;
            drop(shared);
        });
    }));
}
