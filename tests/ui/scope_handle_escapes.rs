// A handle cannot leave its scope.
fn main() {
    let escaped = futures_lite::future::block_on(portasync::scope(async |s| s.spawn(async { 1 })));
    drop(escaped);
}
