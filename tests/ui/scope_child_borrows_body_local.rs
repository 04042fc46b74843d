// A child may not borrow the body's locals: the body can finish (and its
// locals go) while the child still runs.
fn main() {
    futures_lite::future::block_on(portasync::scope(async |s| {
        let local = String::from("body's own");
        let _ = s.spawn(async {
            let _ = local.len();
        });
    }));
}
