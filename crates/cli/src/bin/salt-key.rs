fn main() {
    std::process::exit(salt_pki::salt_key::run(std::env::args().collect()));
}
