fn main() {
    std::process::exit(saltrs::schema::main(std::env::args().collect()));
}
