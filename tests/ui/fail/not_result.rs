use self_healing::self_healing;

#[self_healing]
fn no_return_type() {}

#[self_healing]
fn tuple() -> (u32, String) {
    (1, String::new())
}

#[self_healing]
fn option(id: u64) -> Option<u64> {
    Some(id)
}

#[self_healing]
fn boolean() -> bool {
    true
}

#[self_healing]
fn iterator() -> impl Iterator<Item = u8> {
    0..3
}

// An alias is accepted by the macro and checked by the type system.
type Count = u32;

#[self_healing]
fn alias() -> Count {
    3
}

fn main() {
    no_return_type();
    let _ = (tuple(), option(1), boolean(), iterator(), alias());
}
