//! Calls a bare `now` import `calls` times: the same loop as the `calls` guest, against a host function
//! that does nothing but return a number, to price cutover's dispatch point.
wit_bindgen::generate!({ path: "wit", world: "bare" });

struct Bare;
impl Guest for Bare {
    fn run(calls: u32) -> u64 {
        let mut sum = 0u64;
        for _ in 0..calls {
            sum = sum.wrapping_add(now());
        }
        std::hint::black_box(sum)
    }
}
export!(Bare);
