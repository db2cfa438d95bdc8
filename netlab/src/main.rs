fn main() {
    let mut ebpf = aya::Ebpf::load(netlab::EBPF_OBJECT).expect("load");
    for (name, _) in ebpf.programs_mut() {
        println!("{name}");
    }
}
