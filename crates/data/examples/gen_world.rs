//! Time world generation without building the whole CLI:
//! `cargo run -p sdvp-data --release --example gen_world -- OUT_DIR [tiny|small|full] [seed]`.

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let out = std::path::PathBuf::from(args.get(1).map(String::as_str).unwrap_or("world"));
    let scale = args.get(2).map(String::as_str).unwrap_or("small");
    let scale = sdvp_data::world::Scale::parse(scale)
        .ok_or_else(|| anyhow::anyhow!("bad scale {scale}"))?;
    let seed = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(0);
    let cfg = sdvp_data::world::WorldConfig {
        seed,
        scale,
        size: 128,
        threads: 0,
    };
    let start = std::time::Instant::now();
    let s = sdvp_data::world::generate_world(&out, &cfg, &|_, _| {})?;
    for (t, sp, n) in &s.splits {
        println!("{t}/{sp}: {n}");
    }
    println!(
        "{} images, {:.2} s",
        s.images,
        start.elapsed().as_secs_f64()
    );
    Ok(())
}
