fn main() {
    std::process::exit(saltrs::run::main(std::env::args().collect()));
}
