fn main() {
    std::process::exit(saltrs::swarm::main(std::env::args().collect()));
}
