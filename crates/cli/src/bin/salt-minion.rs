fn main() {
    std::process::exit(saltrs::daemon::main(saltrs::daemon::Program::Minion, std::env::args().collect()));
}
