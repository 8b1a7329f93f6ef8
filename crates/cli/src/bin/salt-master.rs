fn main() {
    std::process::exit(saltrs::daemon::main(saltrs::daemon::Program::Master, std::env::args().collect()));
}
