fn main() {
    std::process::exit(saltrs::call::main(std::env::args().collect()));
}
