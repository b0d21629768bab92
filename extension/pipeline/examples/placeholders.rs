//! `placeholders DIR [SEED]`: writes each generated default at 128 px, to look at.

use avatar_pipeline::placeholder::render;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let dir = std::path::Path::new(args.get(1).map_or("placeholders", String::as_str));
    let seed = args.get(2).map_or("someone@example.org", String::as_str);
    std::fs::create_dir_all(dir).unwrap();
    for (name, kind) in avatar_contract::placeholder::NAMES {
        let file = format!("{name}.{}", kind.format().name());
        std::fs::write(dir.join(file), render(kind, seed, 128, 90).unwrap()).unwrap();
    }
}
