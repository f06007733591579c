//! 2. Switch time: uncordon one machine and cordon the other under load, and see when traffic moves.

use super::*;

/// One switch: `green` uncordoned, then `blue` cordoned.
pub(crate) struct Switch {
    pub(crate) green: u8,
    pub(crate) blue: u8,
    pub(crate) uncordon: (Instant, Instant),
    pub(crate) cordon: (Instant, Instant),
}

pub(crate) async fn switch_time(local: Arc<LocalPlatform>, proxy: SocketAddr, ids: [String; 2]) {
    let reps: usize = env_or("CUTOVER_BENCH_SWITCHES", 30).max(1);
    let conns = 8;
    let pause = Duration::from_millis(150);
    println!();
    println!(
        "== 2. switch time: 1 machine in rotation + 1 cordoned (passing), {conns} keep-alive connections \
         closed-loop through the proxy, {reps} switches =="
    );
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop = done.clone();
    let load = tokio::spawn(closed_loop(proxy, "/", conns, Arc::new(ids.to_vec()), move || {
        stop.load(std::sync::atomic::Ordering::Relaxed)
    }));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let start = Instant::now();
    let (mut blue, mut green) = (0u8, 1u8);
    let mut switches = Vec::new();
    for _ in 0..reps {
        tokio::time::sleep(pause).await;
        let u0 = Instant::now();
        local.uncordon(&ids[green as usize]).await.expect("uncordon");
        let u1 = Instant::now();
        tokio::time::sleep(pause).await;
        let c0 = Instant::now();
        local.cordon(&ids[blue as usize]).await.expect("cordon");
        let c1 = Instant::now();
        switches.push(Switch { green, blue, uncordon: (u0, u1), cordon: (c0, c1) });
        std::mem::swap(&mut blue, &mut green);
    }
    tokio::time::sleep(pause).await;
    let end = Instant::now();
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let hits = load.await.expect("load");

    let measured: Vec<&Hit> = hits.iter().filter(|h| h.sent >= start && h.sent < end).collect();
    let failed = measured.iter().filter(|h| !h.ok).count();
    let rate = measured.len() as f64 / (end - start).as_secs_f64();
    let mut uncordon_call = Vec::new();
    let mut in_from_call = Vec::new();
    let mut in_after_return = Vec::new();
    let mut cordon_call = Vec::new();
    let mut out_from_call = Vec::new();
    let mut out_after_return = Vec::new();
    let mut late = 0usize;
    for (i, s) in switches.iter().enumerate() {
        // This switch's requests: from its uncordon call to the next switch's.
        let from = s.uncordon.0;
        let to = switches.get(i + 1).map_or(end, |n| n.uncordon.0);
        // Green had been out of rotation since the previous switch's cordon returned.
        let green_since = if i == 0 { start } else { switches[i - 1].cordon.1 };
        let first_green = hits
            .iter()
            .filter(|h| h.machine == s.green && h.sent >= green_since && h.recv > from)
            .map(|h| h.recv)
            .min();
        // Requests answered before the next switch began (one sent just before it and answered after
        // may rightly go to this machine again: the next switch puts it back in rotation).
        let blue_hits = || hits.iter().filter(|h| h.machine == s.blue && h.sent >= from && h.recv < to);
        let last_blue = blue_hits().map(|h| h.sent).max();
        late += blue_hits().filter(|h| h.sent > s.cordon.1).count();
        uncordon_call.push(ms(s.uncordon.1 - s.uncordon.0));
        cordon_call.push(ms(s.cordon.1 - s.cordon.0));
        if let Some(t) = first_green {
            in_from_call.push(ms(t - s.uncordon.0));
            in_after_return.push(signed_ms(s.uncordon.1, t));
        }
        if let Some(t) = last_blue {
            out_from_call.push(signed_ms(s.cordon.0, t));
            out_after_return.push(signed_ms(s.cordon.1, t));
        }
    }
    println!(
        "load: {} requests in {:.1} s ({rate:.0} req/s, one every {:.0} µs on average), {failed} failed",
        measured.len(),
        (end - start).as_secs_f64(),
        1e6 / rate
    );
    let line = |what: &str, xs: &mut Vec<f64>| {
        let n = xs.len();
        xs.sort_by(f64::total_cmp);
        println!(
            "{what:<72} median {:>7.2} ms   max {:>7.2} ms   min {:>7.2} ms   (n={n})",
            quantile(xs, 0.5),
            xs.last().copied().unwrap_or(f64::NAN),
            xs.first().copied().unwrap_or(f64::NAN)
        );
    };
    line("uncordon API call (sent → answered)", &mut uncordon_call);
    line("green in: uncordon sent → first response from green received", &mut in_from_call);
    line(
        "green in: uncordon answered → first response from green received (<0: before)",
        &mut in_after_return,
    );
    line("cordon API call (sent → answered)", &mut cordon_call);
    line("blue out: cordon sent → last request blue answered was sent", &mut out_from_call);
    line(
        "blue out: cordon answered → last request blue answered was sent (<0: before)",
        &mut out_after_return,
    );
    println!("requests sent after a cordon call was answered and still answered by that machine: {late}");
}
