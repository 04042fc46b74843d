// `scope_blocking` children run on other threads: they may not borrow the
// body's locals either.
fn main() {
    portasync::scope_blocking(&portasync::rt::Smol::global(), |s| {
        let local = vec![1, 2, 3];
        let _ = s.spawn(async {
            let _ = local.len();
        });
    });
}
