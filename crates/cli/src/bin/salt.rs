fn main() {
    std::process::exit(saltrs::salt::main(std::env::args().collect()));
}
